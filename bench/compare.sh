#!/usr/bin/env bash
# compare.sh: two builds side by side on the same data, to show that a
# change does not slow the node's reads. Starts one meshd from each build
# (both up at once), ingests the same orders into each as the node's admin,
# then alternates: point lookups by primary key (meshbench lookup, as a
# reader that is not an admin, so every lookup goes through the access
# decision and the audit) and a GROUP BY through meshq.
#   bench/compare.sh BEFORE_BIN AFTER_BIN [--records N] [--rounds R]
# BEFORE_BIN and AFTER_BIN are build/bin folders (Release builds).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
declare -A BIN=([before]=$1 [after]=$2)
shift 2
records=1000000 rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (--records N, --rounds R)" >&2; exit 2 ;;
  esac
done
for v in before after; do
  for t in meshd dmctl meshq meshbench; do
    [ -x "${BIN[$v]}/$t" ] || { echo "compare.sh: ${BIN[$v]}/$t is missing" >&2; exit 2; }
  done
done
work=$(mktemp -d /tmp/meshcompare.XXXXXX)
export XDG_CONFIG_HOME=$work/xdg
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/data
data=bench/data/orders.ndjson
[ -s "$data" ] || "${BIN[after]}/meshbench" gen orders 1000000 --seed 1 -o "$data" -q
head -n "$records" "$data" > "$work/orders.ndjson"
# A public copy of the orders contract, so a non-admin identity may read it.
sed 's/access: restricted/access: public/' docs/examples/orders.yaml > "$work/orders.yaml"
for v in before after; do
  b=${BIN[$v]}
  "$b/meshd" --data "$work/$v" --domain commerce --listen 'tcp://127.0.0.1:*' 2>"$work/$v.log" &
  pids+=($!)
  for _ in $(seq 1 750); do [ -s "$work/$v/node.addr" ] && break; sleep 0.02; done
  [ -s "$work/$v/node.addr" ] || { echo "compare.sh: meshd ($v) did not start" >&2; exit 1; }
  "$b/dmctl" --data "$work/$v" register "$work/orders.yaml" >/dev/null
  "$b/dmctl" --data "$work/$v" ingest commerce/orders "$work/orders.ndjson" >/dev/null
done
sql="SELECT status, count(*), sum(amount) FROM commerce.orders GROUP BY status"
for r in $(seq 1 "$rounds"); do
  for v in before after; do
    b=${BIN[$v]}
    addr=$(cat "$work/$v/node.addr")
    echo "$v lookups: $("$b/meshbench" lookup --node "$addr" --file "$work/orders.ndjson" --count 5000)"
    s=$(date +%s%N)
    "$b/meshq" --node "$addr" query "$sql" >/dev/null
    e=$(date +%s%N)
    echo "$v group by: $(( (e - s) / 1000000 )) ms"
  done
done
