#!/usr/bin/env bash
# run.sh: one-command benchmark of the mesh against its named peer (zod 4 on Node).
#
# Measures, on the same generated NDJSON file:
#   1. dmctl check (contract validation only), pinned to one core, best of 3;
#   2. node zod_check.mjs (the seed's zod schema), pinned to one core, best of 3;
#   3. dmctl ingest into a live meshd on loopback, end to end and durable, one run;
# then prints seconds, records/s and the ratio to zod's check rate.
#
# usage: bench/run.sh [--records N]
#   env: BUILD_DIR=build, CONTRACT=docs/examples/orders.yaml, ADDR_DEADLINE_S=15
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RECORDS=1000000
RUNS=3
BUILD_DIR=${BUILD_DIR:-build}
BIN=$BUILD_DIR/bin
CONTRACT=${CONTRACT:-docs/examples/orders.yaml}
DOMAIN=commerce
PRODUCT=commerce/orders
ADDR_DEADLINE_S=${ADDR_DEADLINE_S:-15}   # meshd must write node.addr within this
STOP_DEADLINE_S=10   # after SIGTERM, before SIGKILL
POLL_S=0.05
PORT_TRIES=5

usage() {
    echo "usage: bench/run.sh [--records N]"
    echo "  Builds what is missing, generates N orders (default 1000000) into bench/data/,"
    echo "  times dmctl check and zod (best of $RUNS, taskset -c 0) and dmctl ingest into a"
    echo "  local meshd, and prints records/s and ratios to zod."
    echo "  env: BUILD_DIR (default build), CONTRACT (default docs/examples/orders.yaml)"
}

die() { echo "run.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case $1 in
    --records) [[ $# -ge 2 ]] || { echo "run.sh: --records needs a value" >&2; exit 2; }
               RECORDS=$2; shift 2 ;;
    --records=*) RECORDS=${1#--records=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $RECORDS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --records '$RECORDS': want a positive integer" >&2; exit 2; }

if [[ $RECORDS -eq 1000000 ]]; then DATA=bench/data/orders.ndjson
else DATA=bench/data/orders-$RECORDS.ndjson; fi

if command -v taskset >/dev/null; then PIN=(taskset -c 0)
else PIN=(); echo "run.sh: taskset not found, check runs are not pinned" >&2; fi

# now: wall-clock seconds with nanoseconds.
now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# ---- (a) dependencies and build ----

command -v node >/dev/null || die "node not found (zod peer needs Node.js)"
if [[ ! -d bench/node_modules/zod ]]; then
    echo "== npm ci in bench/"
    (cd bench && npm ci --no-audit --no-fund) || die "npm ci in bench/ failed"
fi
if [[ ! -x $BIN/meshbench || ! -x $BIN/dmctl || ! -x $BIN/meshd ]]; then
    echo "== building into $BUILD_DIR/"
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
    cmake --build "$BUILD_DIR" -j2
fi
for b in meshbench dmctl meshd; do [[ -x $BIN/$b ]] || die "$BIN/$b missing after build"; done
[[ -f $CONTRACT ]] || die "$CONTRACT missing"

# ---- (b) data ----

mkdir -p bench/data
if [[ ! -f $DATA ]] || [[ $(wc -l <"$DATA") -ne $RECORDS ]]; then
    echo "== generating $RECORDS orders into $DATA"
    "$BIN/meshbench" gen orders "$RECORDS" --seed 1 -o "$DATA.tmp"
    mv "$DATA.tmp" "$DATA"
fi
BYTES=$(wc -c <"$DATA")

# ---- (c) check: dmctl vs zod, best of $RUNS each, same core ----

# best_of NAME CMD...: runs CMD $RUNS times, checks its last stdout line reads
# "N valid, M invalid" with N+M == RECORDS, and sets BEST_S to the fastest wall time.
best_of() {
    local name=$1; shift
    local i t0 t1 rc out last valid invalid
    BEST_S=
    for ((i = 1; i <= RUNS; i++)); do
        rc=0
        t0=$(now)
        out=$("$@") || rc=$?
        t1=$(now)
        last=$(tail -n 1 <<<"$out")
        if [[ $rc -gt 1 || ! $last =~ ^([0-9]+)\ valid,\ ([0-9]+)\ invalid$ ]]; then
            die "$name: exit $rc, last line '$last' (command: $*)"
        fi
        valid=${BASH_REMATCH[1]}; invalid=${BASH_REMATCH[2]}
        [[ $((valid + invalid)) -eq $RECORDS ]] ||
            die "$name: counted $valid valid + $invalid invalid, expected $RECORDS records"
        local s; s=$(calc "$t1 - $t0")
        printf '   %-12s run %d: %8.3f s  (%s)\n' "$name" "$i" "$s" "$last"
        if [[ -z $BEST_S ]] || awk "BEGIN { exit !($s < $BEST_S) }"; then BEST_S=$s; fi
    done
}

echo "== check, best of $RUNS, ${PIN[*]:-unpinned}: $RECORDS records, $BYTES bytes"
best_of "dmctl check" "${PIN[@]}" "$BIN/dmctl" check --config "$CONTRACT" "$DATA"
CHECK_S=$BEST_S
best_of "zod" "${PIN[@]}" node bench/zod_check.mjs "$DATA"
ZOD_S=$BEST_S
ZOD_RATE=$(calc "$RECORDS / $ZOD_S")

# ---- (d) ingest into a live node ----

NODE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/meshbench.XXXXXX")
MESHD_PID=

stop_node() {
    if [[ -n $MESHD_PID ]] && kill -0 "$MESHD_PID" 2>/dev/null; then
        kill -TERM "$MESHD_PID" 2>/dev/null || true
        local deadline=$(($(date +%s) + STOP_DEADLINE_S))
        while kill -0 "$MESHD_PID" 2>/dev/null && [[ $(date +%s) -lt $deadline ]]; do sleep "$POLL_S"; done
        if kill -0 "$MESHD_PID" 2>/dev/null; then
            echo "run.sh: meshd ignored SIGTERM for ${STOP_DEADLINE_S}s, killing it" >&2
            kill -KILL "$MESHD_PID" 2>/dev/null || true
        fi
        wait "$MESHD_PID" 2>/dev/null || true
    fi
    MESHD_PID=
}
cleanup() { stop_node; rm -rf "$NODE_DIR" "$NODE_DIR.log"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_node: starts meshd on a free loopback port, waits for node.addr; a lost race for the
# port (meshd exits early) is retried on another port.
start_node() {
    local try port deadline
    for ((try = 1; try <= PORT_TRIES; try++)); do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" && continue
        rm -f "$NODE_DIR/node.addr"
        "$BIN/meshd" --data "$NODE_DIR" --domain "$DOMAIN" --listen "tcp://127.0.0.1:$port" \
            >"$NODE_DIR.log" 2>&1 &
        MESHD_PID=$!
        deadline=$(($(date +%s) + ADDR_DEADLINE_S))
        while [[ ! -s $NODE_DIR/node.addr ]]; do
            if ! kill -0 "$MESHD_PID" 2>/dev/null; then
                wait "$MESHD_PID" 2>/dev/null || true
                MESHD_PID=
                break
            fi
            [[ $(date +%s) -lt $deadline ]] ||
                die "meshd wrote no $NODE_DIR/node.addr within ${ADDR_DEADLINE_S}s (log: $(tail -n 5 "$NODE_DIR.log"))"
            sleep "$POLL_S"
        done
        if [[ -n $MESHD_PID ]]; then NODE_PORT=$port; return 0; fi
        echo "run.sh: meshd exited on port $port: $(tail -n 3 "$NODE_DIR.log")" >&2
    done
    die "could not start meshd after $PORT_TRIES tries"
}

echo "== ingest into meshd (domain $DOMAIN), one run, unpinned"
start_node
echo "   meshd pid $MESHD_PID on tcp://127.0.0.1:$NODE_PORT, data $NODE_DIR"
"$BIN/dmctl" --data "$NODE_DIR" register "$CONTRACT" >/dev/null || die "dmctl register $CONTRACT failed"

rc=0
t0=$(now)
out=$("$BIN/dmctl" --data "$NODE_DIR" ingest "$PRODUCT" "$DATA") || rc=$?
t1=$(now)
last=$(tail -n 1 <<<"$out")
if [[ $rc -gt 1 || ! $last =~ ^([0-9]+)\ accepted,\ ([0-9]+)\ quarantined$ ]]; then
    kill -0 "$MESHD_PID" 2>/dev/null || echo "run.sh: meshd is no longer running" >&2
    die "dmctl ingest: exit $rc, last line '$last'; meshd log tail: $(tail -n 5 "$NODE_DIR.log")"
fi
[[ $((BASH_REMATCH[1] + BASH_REMATCH[2])) -eq $RECORDS ]] ||
    die "dmctl ingest: '$last' does not add up to $RECORDS records"
INGEST_S=$(calc "$t1 - $t0")
printf '   %-12s        %8.3f s  (%s)\n' "dmctl ingest" "$INGEST_S" "$last"
stop_node

# ---- results ----

row() {
    local rate; rate=$(calc "$RECORDS / $2")
    printf '%-34s %9.3f %14.0f %10.2fx\n' "$1" "$2" "$rate" "$(calc "$rate / $ZOD_RATE")"
}
echo
echo "$RECORDS records, $BYTES bytes ($DATA); $(nproc) cpus; node $(node --version)"
printf '%-34s %9s %14s %11s\n' "tool" "seconds" "records/s" "vs zod"
row "dmctl check (1 core)" "$CHECK_S"
row "zod 4 safeParse (1 core)" "$ZOD_S"
row "dmctl ingest -> meshd (durable)" "$INGEST_S"
