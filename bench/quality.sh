#!/usr/bin/env bash
# quality.sh: what the dataset checks cost (docs/quality.md).
#
#   1. dmctl ingest of N orders into a fresh meshd, alternating a contract
#      without dataset checks and one with unique, not_null/range with rates,
#      freshness and row_count_delta (ROUNDS rounds each; best and all times);
#   2. dmctl quality --run on the product with checks after the ingest, and
#      after ingesting the same records again (2N rows): judging is
#      O(checks), so the time must not grow with the product.
#
# usage: bench/quality.sh [--records N] [--rounds R]
#   env: BUILD_DIR=build
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RECORDS=1000000
ROUNDS=2
QUALITY_RUNS=5
BIN=${BUILD_DIR:-build}/bin
POLL_S=0.05
ADDR_DEADLINE_S=15

while [[ $# -gt 0 ]]; do
    case $1 in
    --records) RECORDS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    *) echo "quality.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $RECORDS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] ||
    { echo "quality.sh: --records and --rounds want positive integers" >&2; exit 2; }

DATA=bench/data/orders-$RECORDS.ndjson
[[ $RECORDS -eq 1000000 ]] && DATA=bench/data/orders.ndjson
mkdir -p bench/data
[[ -s $DATA ]] || "$BIN/meshbench" gen orders "$RECORDS" --seed 1 -o "$DATA"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/qbench.XXXXXX")
MESHD_PID=
stop_node() {
    [[ -n $MESHD_PID ]] || return 0
    kill -TERM "$MESHD_PID" 2>/dev/null || true
    wait "$MESHD_PID" 2>/dev/null || true
    MESHD_PID=
}
trap 'stop_node; rm -rf "$WORK"' EXIT

contract() { # contract FILE CHECKS
    cat >"$1" <<YAML
apiVersion: datamesh.io/v1
kind: DataProduct
metadata: {name: orders, domain: commerce, version: 1.0.0,
           owner: {team: commerce, contact: c@company.com}}
spec:
  schema:
    primaryKey: orderId
    fields:
      - {name: orderId, type: uuid, required: true}
      - {name: customerId, type: string, required: true}
      - {name: amount, type: double, required: true, exclusiveMinimum: 0}
      - {name: status, type: enum, required: true, values: [created, paid, shipped, cancelled]}
      - {name: timestamp, type: timestamp, required: true}
  storage:
    partitioning: [{field: timestamp, granularity: day}]
  quality:
    checks:
$2
YAML
}
contract "$WORK/plain.yaml" "      - {rule: in_list, column: status, values: [created, paid, shipped, cancelled]}"
contract "$WORK/checks.yaml" "      - {rule: in_list, column: status, values: [created, paid, shipped, cancelled]}
      - {rule: unique, column: customerId}
      - {rule: unique, columns: [customerId, timestamp]}
      - {rule: not_null, column: amount, mostly: 99%}
      - {rule: range, column: amount, min: 0, max: 100000, warn: 1%, fail: 5%}
      - {rule: freshness, max_age: 1d}
      - {rule: row_count_delta, threshold: 20%}"

start_node() {
    rm -rf "$WORK/node"
    "$BIN/meshd" --data "$WORK/node" --domain commerce --listen 'tcp://127.0.0.1:*' \
        >"$WORK/meshd.log" 2>&1 &
    MESHD_PID=$!
    local deadline=$(($(date +%s) + ADDR_DEADLINE_S))
    while [[ ! -s $WORK/node/node.addr ]]; do
        [[ $(date +%s) -lt $deadline ]] || { echo "meshd did not start" >&2; exit 1; }
        sleep "$POLL_S"
    done
}

now() { date +%s.%N; }
ingest() { # ingest CONTRACT -> prints seconds
    "$BIN/dmctl" --data "$WORK/node" register "$1" >/dev/null
    local t0 t1
    t0=$(now)
    "$BIN/dmctl" --data "$WORK/node" ingest commerce/orders "$DATA" >/dev/null || [[ $? -eq 1 ]]
    t1=$(now)
    awk "BEGIN { printf \"%.3f\", $t1 - $t0 }"
}

echo "== $RECORDS records ($DATA), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in plain checks; do
        start_node
        s=$(ingest "$WORK/$kind.yaml")
        stop_node
        printf 'ingest %-7s round %d: %8s s  %10.0f records/s\n' "$kind" "$r" "$s" \
            "$(awk "BEGIN { print $RECORDS / $s }")"
    done
done

quality_ms() { # the best of QUALITY_RUNS dmctl quality --run, in ms
    local best=
    for ((i = 0; i < QUALITY_RUNS; i++)); do
        local t0 t1
        t0=$(now)
        "$BIN/dmctl" --data "$WORK/node" quality commerce/orders --run >/dev/null || true
        t1=$(now)
        local ms; ms=$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) * 1000 }")
        if [[ -z $best ]] || awk "BEGIN { exit !($ms < $best) }"; then best=$ms; fi
    done
    echo "$best"
}
start_node
ingest "$WORK/checks.yaml" >/dev/null
echo "dmctl quality --run, $RECORDS rows: best of $QUALITY_RUNS $(quality_ms) ms (process start included)"
"$BIN/dmctl" --data "$WORK/node" quality commerce/orders || true
sed 's/"orderId":"\(.\)/"orderId":"f/' "$DATA" > "$WORK/more.ndjson" # new keys: 2x rows
"$BIN/dmctl" --data "$WORK/node" ingest commerce/orders "$WORK/more.ndjson" >/dev/null || true
echo "dmctl quality --run, $((2 * RECORDS)) rows: best of $QUALITY_RUNS $(quality_ms) ms"
"$BIN/dmctl" --data "$WORK/node" status >/dev/null
t0=$(now); "$BIN/dmctl" --data "$WORK/node" status >/dev/null; t1=$(now)
echo "dmctl status (a round trip with no work, for reference): $(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) * 1000 }") ms"
stop_node
