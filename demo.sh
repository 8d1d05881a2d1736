#!/usr/bin/env bash
# demo.sh: installs missing packages, builds, then runs a three-domain mesh
# on loopback and takes you through it (scripts/tour.sh): three meshd nodes,
# commerce (orders), logistics (inventory, shipments) and identity
# (customers), joined by gossip and governed by one governance identity
# that certifies the domains and masks pii; each team registers its
# contracts and ingests records (invalid ones quarantined); a consumer joins
# orders with customers at the logistics node, which owns neither, sees the
# email hashed and is refused a private product; then the mesh's members,
# products and the owner's audit. Every node is stopped on the way out.
# The nodes start through scripts/container-entry.sh, as the containers of
# docker-compose.yml do.
#   ./demo.sh               build, then the tour
#   ./demo.sh --bin DIR     no install or build: use DIR's meshd, dmctl, meshq
#                           (tests/demo/test_demo.sh does)
# Exit status: the tour's (0: every step did what it says).
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
bin=
case "${1:-}" in
  --bin) bin=$(cd "${2:?--bin DIR}" && pwd) ;;
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  "") ;;
  *) echo "demo.sh: unknown argument '$1' (--bin DIR, --help)" >&2; exit 2 ;;
esac
if [ -z "$bin" ]; then
  . scripts/deps.sh
  dm_install_deps
  # The configuration test.sh builds and CI proves: the two commands share
  # build/ and a warning that only one optimisation level shows cannot
  # break the demo while the tests pass.
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
  bin=$root/build/bin
fi

data=$(mktemp -d /tmp/meshdemo.XXXXXX)
export MESH_BIN=$bin MESH_GOV_DIR=$data/governance MESH_ADDRS=$data/addrs MESH_WAIT=30
# Loopback, ports chosen by the OS: each node advertises what it bound.
export MESH_LISTEN='tcp://127.0.0.1:*' MESH_ADVERTISE=
declare -A pid=()
stop_nodes() {
  local d
  for d in identity logistics commerce; do
    [ -n "${pid[$d]:-}" ] && kill -TERM "${pid[$d]}" 2>/dev/null || true
  done
  for d in identity logistics commerce; do
    if [ -n "${pid[$d]:-}" ]; then
      if wait "${pid[$d]}"; then echo "$d node stopped cleanly"
      else echo "$d node exited with status $?; its log: $data/$d.log" >&2; fi
    fi
  done
  [ -n "${DEMO_KEEP:-}" ] || rm -rf "$data"
}
trap stop_nodes EXIT
trap 'exit 130' INT TERM

# start DOMAIN [JOIN...]: the node in the background, its log in DATA/DOMAIN.log.
start() {
  local d=$1; shift
  MESH_DATA=$data/$d MESH_JOIN="$*" scripts/container-entry.sh node "$d" >"$data/$d.log" 2>&1 &
  pid[$d]=$!
}
# await WHAT SECS CMD...: polls CMD until it succeeds; fails naming WHAT.
await() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "demo.sh: not within $secs s: $what; the node logs:" >&2
      tail -n 20 "$data"/*.log >&2
      exit 1
    fi
    local d
    for d in "${!pid[@]}"; do
      kill -0 "${pid[$d]}" 2>/dev/null || { echo "demo.sh: the $d node exited:" >&2; cat "$data/$d.log" >&2; exit 1; }
    done
    sleep 0.1
  done
}
alive3() { [ "$("$bin/meshq" --data "$data/$1" members | grep -cw alive)" -ge 3 ]; }

bold=$'\033[1m' off=$'\033[0m'
[ -t 1 ] || { bold='' off=''; }
printf '%sStarting three domain nodes on loopback (data in %s)%s\n' "$bold" "$data" "$off"
scripts/container-entry.sh governance
start commerce
start logistics commerce
start identity commerce
for d in commerce logistics identity; do
  await "the $d node serving" 20 test -s "$data/addrs/$d.addr"
  echo "$d: $(cat "$data/addrs/$d.addr")"
done
for d in commerce logistics identity; do
  await "the $d node seeing three members alive" 20 alive3 "$d"
done
echo "gossip: every node sees three members alive"

# The tour through the entry script's tour role, as the compose client runs it.
rc=0
MESH_WORK=$data/work \
  MESH_NODES="commerce=$data/commerce logistics=$data/logistics identity=$data/identity" \
  scripts/container-entry.sh tour || rc=$?
printf '\n%sStopping the nodes%s\n' "$bold" "$off"
exit "$rc"
