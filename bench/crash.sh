#!/usr/bin/env bash
# crash.sh: kill -9 during an ingest into a big product, at full size (issue 12's crash safety;
# tests/mesh/test_scale_crash.c checks the same at 200K records on every test run).
#
# On the node a `bench/scale.sh --keep` run left in WORK_DIR (its commerce/orders product),
# starts meshd, ingests FILE with dmctl, kills meshd with SIGKILL once AFTER more records are
# stored, restarts it and checks: count(*) is at least the records before plus the records
# dmctl saw acknowledged, and the first and the last acknowledged keys are found by primary
# key. Exit 0 when both hold, 1 otherwise.
#
# usage: WORK_DIR=DIR bench/crash.sh --file NDJSON [--after N]   (N default 300000)
#   env: BUILD_DIR (default build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${BUILD_DIR:-build}/bin
FILE= AFTER=300000 POLL_S=0.05 ADDR_DEADLINE_S=60
die() { echo "crash.sh: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --file) [[ $# -ge 2 ]] || die "--file needs a value"; FILE=$2; shift 2 ;;
    --after) [[ $# -ge 2 ]] || die "--after needs a value"; AFTER=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "crash.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n ${WORK_DIR:-} && -d $WORK_DIR/node/store ]] ||
    { echo "crash.sh: set WORK_DIR to the directory a 'bench/scale.sh --keep' run left" >&2; exit 2; }
[[ -s $FILE ]] || { echo "crash.sh: --file '$FILE': want an NDJSON slice (meshbench gen orders)" >&2; exit 2; }
[[ $AFTER =~ ^[1-9][0-9]*$ ]] || { echo "crash.sh: --after '$AFTER': want a positive integer" >&2; exit 2; }
for t in meshd dmctl meshq; do [[ -x $BIN/$t ]] || die "$BIN/$t is missing (build first)"; done
NODE=$WORK_DIR/node
MESHD_PID= ING_PID=
cleanup() {
    [[ -z $ING_PID ]] || kill "$ING_PID" 2>/dev/null || true
    if [[ -n $MESHD_PID ]]; then kill -TERM "$MESHD_PID" 2>/dev/null || true; wait "$MESHD_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
start() {
    rm -f "$NODE/node.addr"
    "$BIN/meshd" --data "$NODE" --domain commerce --listen 'tcp://127.0.0.1:*' 2>>"$WORK_DIR/crash.log" &
    MESHD_PID=$!
    local deadline=$(($(date +%s) + ADDR_DEADLINE_S))
    until [[ -s $NODE/node.addr ]]; do
        kill -0 "$MESHD_PID" 2>/dev/null || die "meshd exited: $(tail -n 3 "$WORK_DIR/crash.log")"
        [[ $(date +%s) -lt $deadline ]] || die "meshd wrote no node.addr within ${ADDR_DEADLINE_S}s"
        sleep "$POLL_S"
    done
}
count() { "$BIN/meshq" --data "$NODE" --timeout 900 query "$1" --format csv | tail -n 1; }
key_of() { sed -n "${1}p" "$FILE" | sed -E 's/.*"orderId":"([^"]+)".*/\1/'; }

start
before=$(count "SELECT count(*) FROM commerce.orders")
echo "before: $before records"
"$BIN/dmctl" --data "$NODE" --timeout 2 ingest commerce/orders "$FILE" --batch-bytes 65536 \
    >"$WORK_DIR/crash.out" 2>/dev/null &
ING_PID=$!
while :; do
    n=$(count "SELECT count(*) FROM commerce.orders" 2>/dev/null || true)
    [[ -n $n && $n -ge $((before + AFTER)) ]] && break
    kill -0 "$ING_PID" 2>/dev/null || die "the ingest ended before $AFTER records were stored"
    sleep "$POLL_S"
done
kill -KILL "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null || true
MESHD_PID=
wait "$ING_PID" 2>/dev/null || true
ING_PID=
line=$(tail -n 1 "$WORK_DIR/crash.out")
[[ $line =~ ^([0-9]+)\ accepted ]] || die "dmctl's last line is not a count: '$line'"
acked=${BASH_REMATCH[1]}
echo "killed meshd with SIGKILL; dmctl saw $acked records acknowledged"
start
after=$(count "SELECT count(*) FROM commerce.orders")
found=$(count "SELECT count(*) FROM commerce.orders WHERE orderId IN ('$(key_of 1)', '$(key_of "$acked")')")
echo "after the restart: $after records (want >= $((before + acked))); first and last acknowledged keys found: $found of 2"
[[ $after -ge $((before + acked)) && $found -eq 2 ]] || { echo "crash.sh: ACKNOWLEDGED RECORDS LOST" >&2; exit 1; }
echo "crash.sh: nothing acknowledged was lost"
