#!/usr/bin/env bash
# scale.sh: ingest that stays fast as a product grows (issue 12). Ingests N random-uuid-keyed
# orders into ONE product of a live meshd in slices of S, each slice a separate durable
# `dmctl ingest`, and prints per slice:
#   records/s of the ingest, zod's check rate on the same slice file in the same run, their
#   ratio, the store's size (du DIR/store), meshd's RSS (VmHWM, VmRSS, RssAnon) and the bytes
#   meshd wrote during the slice (/proc/PID/io write_bytes);
# then, on the full product: a full scan (rows/s), GROUP BY against the sqlite3 shell on a
# native table of the same rows, point lookups by primary key (p50/p99) and a range scan on
# the primary key, the store's size after re-ingesting the first slice (upserts) and after
# deregistering the product and ingesting one slice again (free pages reused).
#
# usage: bench/scale.sh [--records N] [--slice S] [--keep] [--reads-only]
#   --keep: leave WORK_DIR (the node's data) in place and skip the upserts and the deregister,
#   which change the product; --reads-only (implies --keep): skip the ingest and measure the
#   reads on the node a --keep run left in WORK_DIR (WORK_DIR must be given)
#   env: STAT=1 adds mdb_stat's figures per slice (lmdb-utils); BUILD_DIR (default build,
#        built Release if missing); DATA_DIR (default bench/data; slice k is
#        `meshbench gen orders S --seed 1000+k`); WORK_DIR (default a mktemp dir under TMPDIR);
#        ADDR_DEADLINE_S (default 15)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RECORDS=10000000
SLICE=1000000
KEEP=0
READS_ONLY=0
BUILD_DIR=${BUILD_DIR:-build}
BIN=$BUILD_DIR/bin
DATA_DIR=${DATA_DIR:-bench/data}
CONTRACT=docs/examples/orders.yaml
PRODUCT=commerce/orders
TABLE=commerce.orders
ADDR_DEADLINE_S=${ADDR_DEADLINE_S:-15}
STOP_DEADLINE_S=30
POLL_S=0.05
SEED_BASE=1000 # slice k is `meshbench gen orders S --seed SEED_BASE+k`

usage() {
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
}
die() { echo "scale.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case $1 in
    --records) [[ $# -ge 2 ]] || die "--records needs a value"; RECORDS=$2; shift 2 ;;
    --slice) [[ $# -ge 2 ]] || die "--slice needs a value"; SLICE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --reads-only) READS_ONLY=1; KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scale.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $RECORDS =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: --records '$RECORDS': want a positive integer" >&2; exit 2; }
[[ $SLICE =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: --slice '$SLICE': want a positive integer" >&2; exit 2; }
((RECORDS % SLICE == 0)) || { echo "scale.sh: --records $RECORDS is not a multiple of --slice $SLICE" >&2; exit 2; }
SLICES=$((RECORDS / SLICE))

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

command -v node >/dev/null || die "node not found (zod's rate needs Node.js)"
command -v sqlite3 >/dev/null || die "needs the sqlite3 shell (apt-get install sqlite3)"
if [[ ! -d bench/node_modules/zod ]]; then
    (cd bench && npm ci --no-audit --no-fund) || die "npm ci in bench/ failed"
fi
if [[ ! -x $BIN/meshbench || ! -x $BIN/dmctl || ! -x $BIN/meshd || ! -x $BIN/meshq ]]; then
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" -j2 >/dev/null
fi
if command -v taskset >/dev/null; then PIN=(taskset -c 0); else PIN=(); fi

mkdir -p "$DATA_DIR"
slice_file() { echo "$DATA_DIR/scale-$SLICE-$((SEED_BASE + $1)).ndjson"; }

[[ $READS_ONLY -eq 0 || -d ${WORK_DIR:-}/node/store ]] ||
    die "--reads-only needs WORK_DIR set to the directory a --keep run left (no WORK_DIR/node/store)"
WORK=${WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/meshscale.XXXXXX")}
NODE_DIR=$WORK/node
mkdir -p "$NODE_DIR"
MESHD_PID=
stop_node() {
    if [[ -n $MESHD_PID ]] && kill -0 "$MESHD_PID" 2>/dev/null; then
        kill -TERM "$MESHD_PID" 2>/dev/null || true
        local deadline=$(($(date +%s) + STOP_DEADLINE_S))
        while kill -0 "$MESHD_PID" 2>/dev/null && [[ $(date +%s) -lt $deadline ]]; do sleep "$POLL_S"; done
        kill -0 "$MESHD_PID" 2>/dev/null && kill -KILL "$MESHD_PID" 2>/dev/null
        wait "$MESHD_PID" 2>/dev/null || true
    fi
    MESHD_PID=
}
cleanup() { stop_node; [[ $KEEP -eq 1 ]] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/meshd" --data "$NODE_DIR" --domain commerce --listen 'tcp://127.0.0.1:*' \
    --query-timeout 900 2>>"$WORK/meshd.log" &
MESHD_PID=$!
deadline=$(($(date +%s) + ADDR_DEADLINE_S))
while [[ ! -s $NODE_DIR/node.addr ]]; do
    kill -0 "$MESHD_PID" 2>/dev/null || die "meshd exited: $(tail -n 3 "$WORK/meshd.log")"
    [[ $(date +%s) -lt $deadline ]] || die "meshd wrote no node.addr within ${ADDR_DEADLINE_S}s"
    sleep "$POLL_S"
done
[[ $READS_ONLY -eq 1 ]] ||
    "$BIN/dmctl" --data "$NODE_DIR" register "$CONTRACT" >/dev/null || die "dmctl register failed"

# status_kb FIELD: a field of meshd's /proc status, in kB.
status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$MESHD_PID/status"; }
# io_write_bytes: bytes meshd has caused to be written to storage so far (/proc/PID/io).
io_write_bytes() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$MESHD_PID/io"; }
store_mb() { du -sm "$NODE_DIR/store" | cut -f1; }
# ingest FILE: one durable dmctl ingest; sets ING_S and ING_LAST.
ingest() {
    local rc=0 t0 t1 out
    t0=$(now)
    out=$("$BIN/dmctl" --data "$NODE_DIR" ingest "$PRODUCT" "$1") || rc=$?
    t1=$(now)
    ING_LAST=$(tail -n 1 <<<"$out")
    [[ $rc -le 1 && $ING_LAST =~ ^([0-9]+)\ accepted,\ 0\ quarantined$ ]] ||
        die "dmctl ingest $1: exit $rc, '$ING_LAST'; meshd: $(tail -n 3 "$WORK/meshd.log")"
    ING_S=$(calc "$t1 - $t0")
}

echo "== $RECORDS records in $SLICES slices of $SLICE into $PRODUCT; $(nproc) cpus; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   meshd pid $MESHD_PID, data $NODE_DIR, build $BUILD_DIR"
printf '%6s %10s %10s %10s %7s %9s %9s %9s %9s %9s %s\n' slice "held" "rec/s" "zod/s" "ratio" \
    "store MB" "HWM MB" "RSS MB" "anon MB" "wrote MB" "load"
FIRST_RATE=
LAST_RATE=
for ((k = 1; k <= SLICES && READS_ONLY == 0; k++)); do
    f=$(slice_file "$k")
    if [[ ! -s $f ]]; then
        "$BIN/meshbench" gen orders "$SLICE" --seed $((SEED_BASE + k)) -o "$f.tmp" -q
        mv "$f.tmp" "$f"
    fi
    zt0=$(now)
    zout=$("${PIN[@]}" node bench/zod_check.mjs "$f" 2>/dev/null) || die "zod on $f failed"
    zt1=$(now)
    [[ $(tail -n 1 <<<"$zout") == "$SLICE valid, 0 invalid" ]] || die "zod: '$zout' on $f"
    zod=$(calc "$SLICE / ($zt1 - $zt0)")
    w0=$(io_write_bytes)
    ingest "$f"
    w1=$(io_write_bytes)
    rate=$(calc "$SLICE / $ING_S")
    [[ -n $FIRST_RATE ]] || FIRST_RATE=$rate
    printf '%6d %10d %10.0f %10.0f %6.2fx %9d %9d %9d %9d %9d %s\n' "$k" $(((k - 1) * SLICE)) "$rate" \
        "$zod" "$(calc "$rate / $zod")" "$(store_mb)" $(($(status_kb VmHWM) / 1024)) \
        $(($(status_kb VmRSS) / 1024)) $(($(status_kb RssAnon) / 1024)) $(((w1 - w0) / 1048576)) \
        "$(cut -d' ' -f1 /proc/loadavg)"
    if [[ -n ${STAT:-} ]] && command -v mdb_stat >/dev/null; then
        for db in pk pk_big pk_recent rows; do
            { mdb_stat -s "$db" "$NODE_DIR/store" 2>/dev/null || true; } |
                awk -v db="$db" '/Tree depth/ {d=$3} /Branch pages/ {b=$3} /Leaf pages/ {l=$3}
                    /Overflow/ {o=$3} /Entries/ {e=$2} END {printf "       %-9s depth %s, %s branch + %s leaf pages, %s entries\n", db, d, b, l, e}'
        done
    fi
    LAST_RATE=$rate
done
[[ -z $FIRST_RATE ]] ||
    echo "last slice / first slice: $(calc "$LAST_RATE / $FIRST_RATE" | xargs printf '%.2f')"
ndjson_mb=$(($(cat "$(slice_file 1)" | wc -c) * SLICES / 1048576))
echo "store $(store_mb) MB for $RECORDS records ($ndjson_mb MB of NDJSON)"

# ---- reads on the full product ----
# anon: meshd's RssAnon after each read (the heap SQLite and the replies use; file-backed map
# pages are not in it).
anon() { echo "meshd RssAnon $(($(status_kb RssAnon) / 1024)) MB"; }
# cpu_s: meshd's user+system CPU seconds so far (less noisy than wall time on a loaded machine).
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$MESHD_PID/stat"; }
echo "before the reads: $(anon); load $(cut -d' ' -f1-3 /proc/loadavg)"
meshq() { "$BIN/meshq" --data "$NODE_DIR" --timeout 900 "$@"; }
t0=$(now)
c0=$(cpu_s)
rows=$(meshq query "SELECT * FROM $TABLE" --format jsonl | wc -l)
t1=$(now)
c1=$(cpu_s)
[[ $rows -eq $RECORDS ]] || die "full scan returned $rows rows, want $RECORDS"
printf 'full scan as jsonl to /dev/null: %d rows in %.2f s = %.0f rows/s; meshd CPU %.2f s; %s\n' \
    "$rows" "$(calc "$t1 - $t0")" "$(calc "$rows / ($t1 - $t0)")" "$(calc "$c1 - $c0")" "$(anon)"

sql="SELECT status, count(*), sum(amount) FROM $TABLE GROUP BY status"
best3() { # best wall seconds of 3 runs of "$@"
    local b=999999 s e t i
    for i in 1 2 3; do
        s=$(now); "$@" >/dev/null; e=$(now)
        t=$(calc "$e - $s"); awk "BEGIN { exit !($t < $b) }" && b=$t
    done
    printf '%.3f' "$b"
}
c0=$(cpu_s)
mesh_s=$(best3 meshq query "$sql" --format csv)
mesh_anon="meshd CPU $(calc "($(cpu_s) - $c0) / 3") s a run; $(anon)"
# The native copy takes minutes at 10M (the import's random-key index): a --keep run keeps it
# next to the node's data, for --reads-only runs on the same product.
if [[ $READS_ONLY -eq 0 || ! -s $WORK/native.db ]]; then
    rm -f "$WORK/native.db"
    meshq query "SELECT * FROM $TABLE" --format csv >"$WORK/rows.csv"
    # cache_size is the importing connection's own: the timed runs below use the default.
    sqlite3 "$WORK/native.db" <<SQL
PRAGMA cache_size=-1048576;
CREATE TABLE orders(orderId TEXT PRIMARY KEY, customerId TEXT, amount REAL, status TEXT, timestamp TEXT);
.import --csv --skip 1 $WORK/rows.csv orders
SQL
    rm -f "$WORK/rows.csv"
fi
native_sql=${sql//$TABLE/orders}
native_s=$(best3 sqlite3 "$WORK/native.db" "$native_sql")
diff <(meshq query "$sql" --format csv | tail -n +2 | sort) \
     <(sqlite3 -csv "$WORK/native.db" "$native_sql" | sort) >/dev/null && same=yes || same=NO
[[ $KEEP -eq 1 ]] || rm -f "$WORK/native.db"
printf 'GROUP BY status, best of 3: meshq %s s, sqlite3 native %s s = %.2fx (same result: %s); %s\n' \
    "$mesh_s" "$native_s" "$(calc "$mesh_s / $native_s")" "$same" "$mesh_anon"

echo "lookups: $("$BIN/meshbench" lookup --data "$NODE_DIR" --file "$(slice_file 1)" --count 10000); $(anon)"

# A primary-key range: the ids between two of the product's own keys, 1/1000 of the key space.
lo=$(head -c 200 "$(slice_file 1)" | sed -E 's/.*"orderId":"([0-9a-f-]+)".*/\1/' | head -n 1)
hi=$(awk -v lo="$lo" 'BEGIN { printf "%s", substr(lo, 1, 3) }')
next_hex() { printf '%03x' $((16#$1 + 1)); }
hi="$(next_hex "$hi")00000-0000-0000-0000-000000000000"
lo="${lo:0:3}00000-0000-0000-0000-000000000000"
rsql="SELECT count(*) FROM $TABLE WHERE orderId >= '$lo' AND orderId < '$hi'"
t0=$(now)
n=$(meshq query "$rsql" --format csv | tail -n 1)
t1=$(now)
printf 'PK range [%s, %s): %s rows in %.3f s (the full scan above walked %d)\n' "$lo" "$hi" "$n" \
    "$(calc "$t1 - $t0")" "$RECORDS"

# The upserts and the deregister change the product; a --keep run leaves it as ingested, so that
# --reads-only can be rerun (and by another build) on the same N records.
if [[ $KEEP -eq 1 ]]; then
    echo "meshd peak RSS (VmHWM) $(($(status_kb VmHWM) / 1024)) MB, RssAnon $(($(status_kb RssAnon) / 1024)) MB; load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "(--keep: no upserts and no deregister; the product stays at $RECORDS records in $WORK)"
    exit 0
fi

# ---- upserts: the same keys again ----
before=$(store_mb)
ingest "$(slice_file 1)"
printf 'upsert: re-ingest of slice 1 (%d existing keys) at %.0f rec/s: %s; store %d MB -> %d MB\n' \
    "$SLICE" "$(calc "$SLICE / $ING_S")" "$ING_LAST" "$before" "$(store_mb)"
echo "meshd peak RSS (VmHWM) $(($(status_kb VmHWM) / 1024)) MB, RssAnon $(($(status_kb RssAnon) / 1024)) MB; load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- deregister: LMDB keeps the file and reuses its free pages ----
before=$(store_mb)
"$BIN/dmctl" --data "$NODE_DIR" deregister "$PRODUCT" >/dev/null || die "dmctl deregister failed"
after=$(store_mb)
"$BIN/dmctl" --data "$NODE_DIR" register "$CONTRACT" >/dev/null || die "dmctl register failed"
ingest "$(slice_file 2)"
printf 'deregister: store %d MB -> %d MB (the file keeps its size; its pages are free); a fresh 1M ingest after it: %d MB\n' \
    "$before" "$after" "$(store_mb)"
