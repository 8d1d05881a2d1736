#!/usr/bin/env bash
# container-entry.sh ROLE: the one entry point of the three-domain mesh,
# run by the containers (docker-compose.yml) and by ./demo.sh on loopback.
#
#   container-entry.sh governance      make the governance identity once:
#                                      $MESH_GOV_DIR/governance.key (secret) and
#                                      $MESH_GOV_DIR/governance.pub (its key, hex)
#   container-entry.sh node DOMAIN     run meshd for DOMAIN until SIGTERM/SIGINT
#   container-entry.sh tour            wait for the three nodes, run scripts/tour.sh
#
# Environment (defaults are the containers'):
#   MESH_BIN       directory of meshd, dmctl, meshq   (/usr/local/bin)
#   MESH_GOV_DIR   the governance identity's folder   (/mesh/governance)
#   MESH_ADDRS     folder where each node publishes its address as
#                  DOMAIN.addr once it serves           (/mesh/addrs)
#   MESH_DATA      node: its data directory             (/mesh/data/DOMAIN)
#   MESH_LISTEN    node: where to listen                (tcp://0.0.0.0:7400)
#   MESH_ADVERTISE node: the endpoint peers dial        (tcp://DOMAIN:7400;
#                  empty: the bound one, for loopback)
#   MESH_JOIN      node: domains to join through, by their published address
#                  (space separated; empty for the first node)
#   MESH_NODES     tour: "commerce=DIR logistics=DIR identity=DIR", each
#                  node's data directory (its address and admin key)
#   MESH_WORK      tour: a scratch folder for keys and sample data (/mesh/work)
#   MESH_WAIT      seconds to wait for what a role needs (60)
# Every wait polls a condition until a deadline and fails naming what did
# not happen.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${MESH_BIN:-/usr/local/bin}
gov_dir=${MESH_GOV_DIR:-/mesh/governance}
addrs=${MESH_ADDRS:-/mesh/addrs}
wait_s=${MESH_WAIT:-60}

die() { echo "container-entry: $*" >&2; exit 1; }

# wait_file FILE WHAT: until FILE exists and is not empty, or the deadline.
wait_file() {
  local deadline=$((SECONDS + wait_s))
  until [ -s "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "no $2 after ${wait_s} s (waited for $1)"
    sleep 0.1
  done
}

role_governance() {
  mkdir -p "$gov_dir"
  if [ ! -s "$gov_dir/governance.key" ]; then
    "$bin/dmctl" keygen "$gov_dir/governance.key" >/dev/null
  fi
  local key
  key=$("$bin/dmctl" whoami --identity "$gov_dir/governance.key" --json |
    sed -n 's/.*"key":"\([0-9a-f]\{64\}\)".*/\1/p')
  [ -n "$key" ] || die "dmctl whoami printed no key for $gov_dir/governance.key"
  printf '%s\n' "$key" >"$gov_dir/governance.pub.tmp"
  mv "$gov_dir/governance.pub.tmp" "$gov_dir/governance.pub"
  echo "governance key: $key"
}

role_node() {
  local domain=${1:?usage: container-entry.sh node DOMAIN}
  local data=${MESH_DATA:-/mesh/data/$domain}
  local listen=${MESH_LISTEN:-tcp://0.0.0.0:7400}
  local advertise=${MESH_ADVERTISE-tcp://$domain:7400}
  local args=(--data "$data" --domain "$domain" --listen "$listen")
  [ -n "$advertise" ] && args+=(--advertise "$advertise")
  wait_file "$gov_dir/governance.pub" "governance key (run the governance role first)"
  args+=(--governance "$(cat "$gov_dir/governance.pub")")
  local peer
  for peer in ${MESH_JOIN:-}; do
    wait_file "$addrs/$peer.addr" "address of the $peer node"
    args+=(--join "$(cat "$addrs/$peer.addr")")
  done
  mkdir -p "$addrs"
  # A node.addr left by an earlier run names the old endpoint: publish only
  # the one this meshd writes.
  rm -f "$data/node.addr" "$addrs/$domain.addr"
  "$bin/meshd" "${args[@]}" &
  local pid=$!
  trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
  local deadline=$((SECONDS + wait_s))
  until [ -s "$data/node.addr" ]; do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; die "meshd for $domain exited before serving"; }
    [ "$SECONDS" -lt "$deadline" ] || { kill -TERM "$pid"; die "meshd for $domain wrote no node.addr in ${wait_s} s"; }
    sleep 0.05
  done
  cp "$data/node.addr" "$addrs/$domain.addr.tmp"
  mv "$addrs/$domain.addr.tmp" "$addrs/$domain.addr"
  echo "$domain node serving at $(cat "$addrs/$domain.addr")"
  # wait returns early when a trapped signal arrives: wait again for the
  # node's own clean exit, and exit with its status.
  local rc=0
  wait "$pid" || rc=$?
  if kill -0 "$pid" 2>/dev/null; then
    rc=0; wait "$pid" || rc=$?
  fi
  rm -f "$addrs/$domain.addr"
  exit "$rc"
}

role_tour() {
  local d
  for d in commerce logistics identity; do
    wait_file "$addrs/$d.addr" "address of the $d node"
  done
  wait_file "$gov_dir/governance.key" "governance identity"
  local nodes=${MESH_NODES:-commerce=/mesh/data/commerce logistics=/mesh/data/logistics identity=/mesh/data/identity}
  exec "$here/tour.sh" --bin "$bin" --governance "$gov_dir/governance.key" \
    --work "${MESH_WORK:-/mesh/work}" --wait "$wait_s" $nodes
}

case "${1:-}" in
  governance) role_governance ;;
  node) shift; role_node "$@" ;;
  tour) role_tour ;;
  -h|--help) sed -n '2,27p' "$0" ;;
  *) echo "usage: container-entry.sh governance | node DOMAIN | tour (see the file's opening comment)" >&2
     exit 2 ;;
esac
