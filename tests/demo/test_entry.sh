#!/usr/bin/env bash
# test_entry.sh BINDIR: scripts/container-entry.sh as the compose services
# run it, on this machine: nodes listen on 0.0.0.0 and advertise a host
# name (localhost standing in for a service name), the second joins the
# first by the address the first published, and each stops cleanly on
# SIGTERM. Also: a restart keeps the node's key (its data volume), and a
# node without the governance key gives up after MESH_WAIT naming what it
# waited for. demo.sh covers the loopback roles and the tour. Prints PASS
# or FAIL per check; exit status 1 if any failed.
set -uo pipefail
bin=$(cd "${1:?usage: test_entry.sh BINDIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
entry=$root/scripts/container-entry.sh
tmp=$(mktemp -d /tmp/test_entry.XXXXXX)
export MESH_BIN=$bin MESH_GOV_DIR=$tmp/governance MESH_ADDRS=$tmp/addrs MESH_WAIT=20
declare -A pid=()
cleanup() {
  local d
  for d in "${!pid[@]}"; do kill -TERM "${pid[$d]}" 2>/dev/null && wait "${pid[$d]}"; done
  rm -rf "$tmp"
}
trap cleanup EXIT

fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
# until_ok SECS CMD...: polls CMD until it succeeds or SECS pass.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
# Two free TCP ports, as fixed ports stand in for the services' 7400.
read -r p1 p2 < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# node DOMAIN PORT [JOIN]: the entry script's node role, container style.
node() {
  MESH_DATA=$tmp/data/$1 MESH_LISTEN=tcp://0.0.0.0:$2 MESH_ADVERTISE=tcp://localhost:$2 \
    MESH_JOIN=${3:-} "$entry" node "$1" >>"$tmp/$1.log" 2>&1 &
  pid[$1]=$!
}
alive2() { [ "$("$bin/meshq" --data "$tmp/data/$1" members | grep -cw alive)" -ge 2 ]; }
stop() { # stop DOMAIN: SIGTERM, then its exit status must be 0
  kill -TERM "${pid[$1]}"; local rc=0; wait "${pid[$1]}" || rc=$?; unset "pid[$1]"; return "$rc"
}

"$entry" --help | grep -q '^#   container-entry.sh node DOMAIN' && pass "--help lists the roles (the image's default command)" ||
  fail "--help does not list the roles"
"$entry" nonsense >/dev/null 2>&1; [ $? = 2 ] && pass "an unknown role is a usage error (status 2)" ||
  fail "an unknown role did not exit 2"

"$entry" governance >"$tmp/gov.out" 2>&1 && grep -Eq '^governance key: [0-9a-f]{64}$' "$tmp/gov.out" &&
  grep -Eqx '[0-9a-f]{64}' "$tmp/governance/governance.pub" &&
  pass "governance role makes the key and publishes its public half" ||
  fail "governance role: $(cat "$tmp/gov.out")"
gov1=$(cat "$tmp/governance/governance.pub")
"$entry" governance >/dev/null 2>&1
[ "$(cat "$tmp/governance/governance.pub")" = "$gov1" ] && pass "governance role keeps the key on a rerun" ||
  fail "governance role made a new key on a rerun"

node commerce "$p1"
node logistics "$p2" commerce
until_ok 20 test -s "$tmp/addrs/logistics.addr" && pass "both nodes published their address" ||
  { fail "no published address; logs:"; cat "$tmp"/*.log; }
grep -Eq "^[0-9a-f]{64}@tcp://localhost:$p1\$" "$tmp/addrs/commerce.addr" &&
  pass "commerce advertises its host name, not 0.0.0.0" ||
  fail "commerce published '$(cat "$tmp/addrs/commerce.addr" 2>/dev/null)'"
until_ok 20 alive2 commerce && until_ok 20 alive2 logistics &&
  pass "logistics joined commerce by its published address: two members alive on both" ||
  fail "the two nodes do not see each other alive: $("$bin/meshq" --data "$tmp/data/commerce" members 2>&1)"
grep -q -- "$gov1" "$tmp/commerce.log" && pass "the node runs with the governance key" ||
  fail "the governance key is not in commerce's log"

key1=$(cut -d@ -f1 "$tmp/addrs/commerce.addr")
stop commerce && pass "SIGTERM stops the commerce node cleanly (status 0)" || fail "commerce exited non-zero"
[ ! -e "$tmp/addrs/commerce.addr" ] && pass "a stopped node withdraws its published address" ||
  fail "commerce.addr left behind"
node commerce "$p1"
until_ok 20 test -s "$tmp/addrs/commerce.addr" &&
  [ "$(cut -d@ -f1 "$tmp/addrs/commerce.addr")" = "$key1" ] &&
  pass "a restarted node keeps its key (its data directory)" || fail "the restarted node has another key"
stop commerce && stop logistics && pass "both stop cleanly" || fail "a node exited non-zero"

rm -rf "$tmp/nogov"
start=$SECONDS
MESH_WAIT=1 MESH_GOV_DIR=$tmp/nogov MESH_DATA=$tmp/data/x "$entry" node identity >"$tmp/nogov.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "no governance key" "$tmp/nogov.out" && [ $((SECONDS - start)) -le 5 ] &&
  pass "without the governance key a node gives up after MESH_WAIT, saying so" ||
  fail "no-governance start: status $rc, '$(cat "$tmp/nogov.out")'"

if [ "$fails" -gt 0 ]; then echo "test_entry: $fails check(s) failed"; exit 1; fi
echo "test_entry: every check passed"
