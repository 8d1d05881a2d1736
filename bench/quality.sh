#!/usr/bin/env bash
# quality.sh: what the dataset checks cost (docs/quality.md).
#
#   1. dmctl ingest of N orders into a fresh meshd, alternating contracts:
#      plain (a record gate only), rates (not_null and range with rates,
#      freshness, row_count_delta), unique (rates and unique(customerId),
#      about N/10 distinct values) and unique2 (also unique(customerId,
#      timestamp), N distinct values); ROUNDS rounds, every time printed,
#      with meshd's CPU time, its writer thread's (the bottleneck), and the
#      bytes it wrote to disk per record (/proc/PID/io: steadier than time
#      on a shared box);
#   with --baseline DIR also "base": the plain contract ingested by the
#   build in DIR (one of the commit before the checks existed, cd5f318:
#   the ingest throughput the checks' target is measured against) in the
#   same rounds; then the medians and their ratios to plain and to base;
#   2. dmctl quality --run on the product with checks after the ingest, and
#      after ingesting the same records again (2N rows): judging is
#      O(checks), so the time must not grow with the product.
#
# usage: bench/quality.sh [--records N] [--rounds R] [--baseline BUILD_DIR]
#   env: BUILD_DIR=build
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RECORDS=1000000
ROUNDS=2
QUALITY_RUNS=10
BIN=${BUILD_DIR:-build}/bin
MAIN_BIN=$BIN
BASE_BIN=
POLL_S=0.05
ADDR_DEADLINE_S=15

while [[ $# -gt 0 ]]; do
    case $1 in
    --records) RECORDS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --baseline) BASE_BIN=$2/bin; shift 2 ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) echo "quality.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $RECORDS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] ||
    { echo "quality.sh: --records and --rounds want positive integers" >&2; exit 2; }
[[ -z $BASE_BIN || -x $BASE_BIN/meshd ]] ||
    { echo "quality.sh: --baseline wants a build directory with bin/meshd" >&2; exit 2; }

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
GATE="      - {rule: in_list, column: status, values: [created, paid, shipped, cancelled]}"
RATES="      - {rule: not_null, column: amount, mostly: 99%}
      - {rule: range, column: amount, min: 0, max: 100000, warn: 1%, fail: 5%}
      - {rule: freshness, max_age: 1d}
      - {rule: row_count_delta, threshold: 20%}"
contract "$WORK/plain.yaml" "$GATE"
contract "$WORK/rates.yaml" "$GATE
$RATES"
contract "$WORK/unique.yaml" "$GATE
$RATES
      - {rule: unique, column: customerId}"
contract "$WORK/unique2.yaml" "$GATE
$RATES
      - {rule: unique, column: customerId}
      - {rule: unique, columns: [customerId, timestamp]}"

start_node() {
    rm -rf "$WORK/node"
    "$BIN/meshd" --data "$WORK/node" --domain commerce --listen 'tcp://127.0.0.1:*' \
        --log-level debug >"$WORK/meshd.log" 2>&1 &
    MESHD_PID=$!
    local deadline=$(($(date +%s) + ADDR_DEADLINE_S))
    while [[ ! -s $WORK/node/node.addr ]]; do
        [[ $(date +%s) -lt $deadline ]] || { echo "meshd did not start" >&2; exit 1; }
        sleep "$POLL_S"
    done
}

now() { date +%s.%N; }
stat_cpu_s() { # stat_cpu_s DIR: the CPU seconds (user + system) /proc's DIR/stat counts
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "$1/stat"
}
cpu_s() { # meshd's CPU seconds so far: steadier than wall time on a busy box
    stat_cpu_s "/proc/$MESHD_PID"
}
writer_s() { # the writer thread's CPU seconds so far: it is the ingest's bottleneck
    local t
    for t in /proc/"$MESHD_PID"/task/*; do
        if [[ $(cat "$t/comm") == dm-writer ]]; then
            stat_cpu_s "$t"
            return 0
        fi
    done
    echo 0
}
disk_b() { # bytes meshd caused to be written to disk so far
    awk '/^write_bytes:/ { print $2 }' "/proc/$MESHD_PID/io"
}
ingest() { # ingest CONTRACT -> "wall-s meshd-cpu-s disk-bytes-per-record writer-cpu-s"
    "$BIN/dmctl" --data "$WORK/node" register "$1" >/dev/null
    local t0 t1 c0 c1 d0 d1 w0 w1
    c0=$(cpu_s)
    w0=$(writer_s)
    d0=$(disk_b)
    t0=$(now)
    "$BIN/dmctl" --data "$WORK/node" ingest commerce/orders "$DATA" >/dev/null || [[ $? -eq 1 ]]
    t1=$(now)
    c1=$(cpu_s)
    w1=$(writer_s)
    d1=$(disk_b)
    awk "BEGIN { printf \"%.3f %.2f %.0f %.2f\\n\", $t1 - $t0, $c1 - $c0, ($d1 - $d0) / $RECORDS, $w1 - $w0 }"
}

KINDS="plain rates unique unique2"
[[ -n $BASE_BIN ]] && KINDS="base $KINDS"
declare -A RATES_OF # kind -> its records/s, one per round
echo "== $RECORDS records ($DATA), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    for kind in $KINDS; do
        BIN=$MAIN_BIN
        file=$WORK/$kind.yaml
        [[ $kind == base ]] && BIN=$BASE_BIN file=$WORK/plain.yaml
        start_node
        read -r s cpu disk writer < <(ingest "$file")
        stop_node
        rate=$(awk "BEGIN { printf \"%.0f\", $RECORDS / $s }")
        RATES_OF[$kind]+="$rate "
        printf 'ingest %-8s round %d: %8s s wall %10.0f records/s, meshd cpu %6s s (writer %5s s), disk %5s B/record\n' \
            "$kind" "$r" "$s" "$rate" "$cpu" "$writer" "$disk"
    done
done
BIN=$MAIN_BIN
median() { # the middle value of the words on stdin (of an even count, the lower middle)
    tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
plain_m=$(median <<<"${RATES_OF[plain]}")
[[ -n $BASE_BIN ]] && base_m=$(median <<<"${RATES_OF[base]}")
for kind in $KINDS; do
    m=$(median <<<"${RATES_OF[$kind]}")
    line=$(printf 'median %-8s %10s records/s, %+6.1f%% against plain' "$kind" "$m" \
        "$(awk "BEGIN { print ($m / $plain_m - 1) * 100 }")")
    [[ -n $BASE_BIN ]] && line+=$(printf ', %+6.1f%% against base' \
        "$(awk "BEGIN { print ($m / $base_m - 1) * 100 }")")
    echo "$line"
done

judged_ms() { # dmctl quality --run QUALITY_RUNS times; the node's own judging times (its log)
    for ((i = 0; i < QUALITY_RUNS; i++)); do
        "$BIN/dmctl" --data "$WORK/node" quality commerce/orders --run >/dev/null || true
    done
    grep -o 'judged and stored in [0-9.]* ms ([0-9]* records)' "$WORK/meshd.log" |
        tail -n "$QUALITY_RUNS" | awk '{ print $5 }' | sort -n | tr '\n' ' '
}
start_node
ingest "$WORK/unique2.yaml" >/dev/null
echo "dmctl quality --run, $RECORDS rows: node-side ms, sorted: $(judged_ms)"
"$BIN/dmctl" --data "$WORK/node" quality commerce/orders || true
sed 's/"orderId":"\(.\)/"orderId":"f/' "$DATA" > "$WORK/more.ndjson" # new keys: ~2x rows
"$BIN/dmctl" --data "$WORK/node" ingest commerce/orders "$WORK/more.ndjson" >/dev/null || true
echo "dmctl quality --run, $("$BIN/dmctl" --data "$WORK/node" products --json |
    grep -o '"records":[0-9]*' | head -n 1) rows: node-side ms, sorted: $(judged_ms)"
stop_node
