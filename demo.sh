#!/usr/bin/env bash
# demo.sh: installs missing packages, builds, then shows one domain node at
# work: start meshd for the commerce domain, validate and register the
# example orders product, ingest sample records (two are invalid and get
# quarantined with their reasons), list products and the quarantine; then
# an analyst with an identity of their own (dmctl keygen, whoami) is refused
# the restricted product until the owner grants them; stop.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
dm_install_deps

# The configuration test.sh builds and CI proves: the two commands share
# build/ and a warning that only one optimisation level shows cannot
# break the demo while the tests pass.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
bin=build/bin

data=$(mktemp -d /tmp/meshdemo.XXXXXX)
node_pid=
stop_node() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid"; wait "$node_pid" || true
  fi
  rm -rf "$data"
}
trap stop_node EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "meshd --data $data/commerce --domain commerce --listen tcp://127.0.0.1:*"
"$bin/meshd" --data "$data/commerce" --domain commerce --listen 'tcp://127.0.0.1:*' \
  2>"$data/meshd.log" &
node_pid=$!
for _ in $(seq 1 500); do
  [ -s "$data/commerce/node.addr" ] && break
  kill -0 "$node_pid" 2>/dev/null || { cat "$data/meshd.log"; exit 1; }
  sleep 0.02
done
[ -s "$data/commerce/node.addr" ] || { echo "meshd did not come up" >&2; exit 1; }
echo "node address: $(cat "$data/commerce/node.addr")"

step dmctl validate docs/examples/orders.yaml
"$bin/dmctl" validate docs/examples/orders.yaml

step dmctl --data "$data/commerce" register docs/examples/orders.yaml
"$bin/dmctl" --data "$data/commerce" register docs/examples/orders.yaml

step dmctl --data "$data/commerce" ingest commerce/orders docs/examples/orders.ndjson
# Exit status 1 means "some records were quarantined", which this sample
# does on purpose.
"$bin/dmctl" --data "$data/commerce" ingest commerce/orders docs/examples/orders.ndjson || [ $? = 1 ]

step dmctl --data "$data/commerce" products
"$bin/dmctl" --data "$data/commerce" products

step dmctl --data "$data/commerce" quarantine commerce/orders
"$bin/dmctl" --data "$data/commerce" quarantine commerce/orders

# Who may read: --data acts with the node's own key (a domain admin);
# anyone else has an identity of their own. orders is `access: restricted`,
# so an analyst is refused until the owner grants them.
step dmctl keygen "$data/analyst.key"
"$bin/dmctl" keygen "$data/analyst.key" >/dev/null 2>"$data/keygen.err" ||
  { cat "$data/keygen.err" >&2; exit 1; }

step dmctl whoami --identity "$data/analyst.key"
"$bin/dmctl" whoami --identity "$data/analyst.key"
analyst=$("$bin/dmctl" whoami --identity "$data/analyst.key" --json |
  sed -n 's/.*"key":"\([0-9a-f]\{64\}\)".*/\1/p')
[ -n "$analyst" ] || { echo "dmctl whoami --json printed no key" >&2; exit 1; }

step "meshq --identity $data/analyst.key --data $data/commerce query 'SELECT count(*) FROM commerce.orders'"
# Exit status 1: the node refused, as it should.
"$bin/meshq" --identity "$data/analyst.key" --data "$data/commerce" \
  query "SELECT count(*) FROM commerce.orders" && { echo "not refused" >&2; exit 1; } || [ $? = 1 ]

step dmctl --data "$data/commerce" grant commerce/orders "$analyst"
"$bin/dmctl" --data "$data/commerce" grant commerce/orders "$analyst"

step "meshq --identity $data/analyst.key --data $data/commerce query 'SELECT count(*) FROM commerce.orders'"
"$bin/meshq" --identity "$data/analyst.key" --data "$data/commerce" \
  query "SELECT count(*) FROM commerce.orders"

step "kill -TERM meshd"
kill -TERM "$node_pid"; wait "$node_pid" || true
node_pid=
echo "node stopped cleanly"
