#!/usr/bin/env bash
# query.sh: the SQL benchmark. Ingests N generated orders into a live node,
# then measures, side by side in one run:
#   - the GROUP BY query through meshq (the virtual table over LMDB) against
#     the sqlite3 shell on a native table holding the same rows, and DuckDB
#     on the same NDJSON (best of 5 each);
#   - 10,000 point lookups by primary key through the client library;
#   - a full scan streamed as jsonl to /dev/null.
#   bench/query.sh [--records N]
set -euo pipefail
cd "$(dirname "$0")/.."
records=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "query.sh: unknown argument '$1' (--records N)" >&2; exit 2 ;;
  esac
done
BUILD_DIR=${BUILD_DIR:-build}
bin=$BUILD_DIR/bin
command -v sqlite3 >/dev/null || { echo "query.sh: needs the sqlite3 shell (apt-get install sqlite3)" >&2; exit 2; }
[ -d bench/node_modules/@duckdb ] || (cd bench && npm ci --silent)
if [ ! -x "$bin/meshq" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" >/dev/null
fi
mkdir -p bench/data
data=bench/data/orders-$records.ndjson
[ "$records" = 1000000 ] && data=bench/data/orders.ndjson
[ -s "$data" ] || "$bin/meshbench" gen orders "$records" --seed 1 -o "$data" -q

work=$(mktemp -d /tmp/meshquery.XXXXXX)
node_pid=
cleanup() {
  [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$bin/meshd" --data "$work/node" --domain commerce --listen 'tcp://127.0.0.1:*' 2>"$work/meshd.log" &
node_pid=$!
for _ in $(seq 1 500); do [ -s "$work/node/node.addr" ] && break; sleep 0.02; done
"$bin/dmctl" --data "$work/node" register docs/examples/orders.yaml >/dev/null
"$bin/dmctl" --data "$work/node" ingest commerce/orders "$data" >/dev/null

sql='SELECT status, count(*), sum(amount) FROM commerce.orders GROUP BY status'
best() { # best wall seconds of 5 runs of "$@"
  local b=999999 s e t
  for _ in 1 2 3 4 5; do
    s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l); (( $(echo "$t < $b" | bc -l) )) && b=$t
  done
  printf '%.4f' "$b"
}
mesh_s=$(best "$bin/meshq" --data "$work/node" query "$sql" --format csv)

# The same rows in a native table (exported through meshq, so identical).
"$bin/meshq" --data "$work/node" query 'SELECT * FROM commerce.orders' --format csv > "$work/rows.csv"
sqlite3 "$work/native.db" <<SQL
CREATE TABLE orders(orderId TEXT PRIMARY KEY, customerId TEXT, amount REAL, status TEXT, timestamp TEXT);
.import --csv --skip 1 $work/rows.csv orders
SQL
native_sql=${sql//commerce.orders/orders}
native_s=$(best sqlite3 "$work/native.db" "$native_sql")
diff <("$bin/meshq" --data "$work/node" query "$sql" --format csv | tail -n +2 | sort) \
     <(sqlite3 -csv "$work/native.db" "$native_sql" | sort) >/dev/null \
  && same=yes || same=NO
duck=$(node bench/duckdb_query.mjs "$data" 5)
duck_s=$(echo "$duck" | sed -E 's/.*best of 5 ([0-9.]+) s.*/\1/')

lookup=$("$bin/meshbench" lookup --data "$work/node" --file "$data" --count 10000)
s=$(date +%s.%N)
rows=$("$bin/meshq" --data "$work/node" query 'SELECT * FROM commerce.orders' --format jsonl | wc -l)
e=$(date +%s.%N)
scan_s=$(echo "$e - $s" | bc -l)

echo
echo "$records orders; $(nproc) cpus; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $duck"
printf '%-44s %10s %10s\n' "GROUP BY status (best of 5, whole process)" seconds "vs native"
printf '%-44s %10s %10s\n' "meshq -> meshd virtual table" "$mesh_s" "$(echo "$mesh_s / $native_s" | bc -l | xargs printf '%.2fx')"
printf '%-44s %10s %10s\n' "sqlite3 shell, native table" "$native_s" "1.00x"
printf '%-44s %10s %10s\n' "DuckDB (query only, table in memory)" "$duck_s" "$(echo "$duck_s / $native_s" | bc -l | xargs printf '%.2fx')"
echo "same result as native: $same"
echo "lookups: $lookup"
printf 'full scan as jsonl to /dev/null: %s rows in %.3f s = %.0f rows/s\n' "$rows" "$scan_s" "$(echo "$rows / $scan_s" | bc -l)"
