#!/usr/bin/env bash
# fed.sh: the federated SQL benchmark (issue 10, "Performance"). Starts a
# three-node mesh on loopback per build given (commerce owns orders, identity
# owns customers, logistics owns neither and is asked), then per round:
#   - point lookups of commerce.orders by primary key through the logistics
#     node (it relays each to commerce), and the same lookups at commerce
#     directly, one at a time (meshbench lookup --grant);
#   - the join of orders with customers filtered to ~1% of orders, asked at
#     logistics through meshq (whole process), against the sqlite3 shell with
#     both tables in one local database; rows and bytes moved (meshq
#     --explain) against the two tables' sizes.
#   bench/fed.sh [--bin DIR]... [--orders N] [--customers N] [--lookups N]
#                [--rounds R] [--no-join] [--dump DIR]
# --lookups 0 skips the lookups. --dump DIR keeps each lookup run's per-lookup
# times (meshbench lookup --dump) in DIR/ROUND-BUILD-NODE.txt. Each --bin (a
# build/bin folder with meshd, dmctl, meshq) starts its own mesh; the rounds
# alternate between them, so two builds are measured side by side under the
# same load (default: build/bin). The client (meshbench) is the last --bin's
# when it has one, else build/bin's, the same for all.
set -euo pipefail
cd "$(dirname "$0")/.."
bins=() orders=1000000 customers=100000 lookups=10000 rounds=3 join=1 dump=
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bins+=("$(cd "$2" && pwd)"); shift 2 ;;
    --orders) orders=$2; shift 2 ;;
    --customers) customers=$2; shift 2 ;;
    --lookups) lookups=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-join) join=0; shift ;;
    --dump) mkdir -p "$2"; dump=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "fed.sh: unknown argument '$1' (--bin DIR, --orders N, --customers N, --lookups N, --rounds R, --no-join, --dump DIR)" >&2; exit 2 ;;
  esac
done
[ ${#bins[@]} -gt 0 ] || bins=("$PWD/build/bin")
for b in "${bins[@]}"; do
  for t in meshd dmctl meshq; do
    [ -x "$b/$t" ] || { echo "fed.sh: $b/$t is missing (build first: cmake --build build)" >&2; exit 2; }
  done
done
mb=${bins[-1]}/meshbench
[ -x "$mb" ] || mb=$PWD/build/bin/meshbench
[ -x "$mb" ] || { echo "fed.sh: no meshbench (build first)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "fed.sh: needs the sqlite3 shell (apt-get install sqlite3)" >&2; exit 2; }

work=$(mktemp -d /tmp/meshfed.XXXXXX)
export XDG_CONFIG_HOME=$work/xdg
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Data: the orders of bench/query.sh and the customers they name.
mkdir -p bench/data
odata=bench/data/orders-$orders.ndjson
[ "$orders" = 1000000 ] && odata=bench/data/orders.ndjson
[ -s "$odata" ] || "$mb" gen orders "$orders" --seed 1 -o "$odata" -q
cdata=bench/data/customers-$customers.ndjson
[ -s "$cdata" ] || "$mb" gen customers "$customers" --seed 1 -o "$cdata" -q
# Public copies of the contracts (the consumer is the asking node's key, no
# domain's admin); customer ids with 7 digits, as meshbench gen writes them.
sed 's/access: restricted/access: public/' docs/examples/orders.yaml > "$work/orders.yaml"
sed -e 's/access: restricted/access: public/' -e 's/\^cust-\[0-9\]{4}\$/^cust-[0-9]{7}$/' \
  docs/examples/customers.yaml > "$work/customers.yaml"
grep -q 'cust-\[0-9\]{7}' "$work/customers.yaml" || { echo "fed.sh: customers.yaml's id pattern changed" >&2; exit 1; }

# await WHAT SECS CMD...: polls CMD until it succeeds or fails naming WHAT.
await() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "fed.sh: not within $secs s: $what" >&2; tail -n 5 "$work"/*/*.log >&2; exit 1; }
    sleep 0.1
  done
}
sees_both() { local p; p=$("$1/meshq" --data "$2" products) &&
              grep -Eq '^commerce +orders ' <<<"$p" && grep -Eq '^identity +customers ' <<<"$p"; }
# start_mesh I DIR: the three nodes of build bins[I] under DIR.
mesh_pids=()
start_mesh() {
  local b=${bins[$1]} w=$2 d
  mkdir -p "$w"
  for d in commerce identity logistics; do
    local join=()
    [ "$d" = commerce ] || join=(--join "$(cat "$w/commerce/node.addr")")
    "$b/meshd" --data "$w/$d" --domain "$d" --listen 'tcp://127.0.0.1:*' "${join[@]}" 2>"$w/$d.log" &
    pids+=($!) mesh_pids+=($!)
    await "meshd $d ($b) serving" 20 test -s "$w/$d/node.addr"
  done
  "$b/dmctl" --data "$w/commerce" register "$work/orders.yaml" >/dev/null
  "$b/dmctl" --data "$w/identity" register "$work/customers.yaml" >/dev/null
  "$b/dmctl" --data "$w/commerce" ingest commerce/orders "$odata" >/dev/null
  "$b/dmctl" --data "$w/identity" ingest identity/customers "$cdata" >/dev/null
  await "the logistics node ($b) seeing both products" 30 sees_both "$b" "$w/logistics"
}
stop_mesh() {
  local p
  for p in "${mesh_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${mesh_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  mesh_pids=()
}

sql="SELECT o.orderId, o.amount, c.tier FROM commerce.orders o JOIN identity.customers c ON o.customerId = c.id WHERE o.amount < 50"
if [ "$join" = 1 ]; then
  # The same rows in one local SQLite database (from the same NDJSON).
  ndjson_csv() { python3 -c 'import csv, json, sys
w = csv.writer(sys.stdout); cols = sys.argv[1].split(",")
w.writerow(cols)
for line in sys.stdin: r = json.loads(line); w.writerow([r[c] for c in cols])' "$1"; }
  ndjson_csv orderId,customerId,amount,status,timestamp <"$odata" > "$work/orders.csv"
  ndjson_csv id,email,tier,country,signedUp <"$cdata" > "$work/customers.csv"
  sqlite3 "$work/native.db" <<SQL
CREATE TABLE orders(orderId TEXT PRIMARY KEY, customerId TEXT, amount REAL, status TEXT, timestamp TEXT);
CREATE TABLE customers(id TEXT PRIMARY KEY, email TEXT, tier TEXT, country TEXT, signedUp TEXT);
.import --csv --skip 1 $work/orders.csv orders
.import --csv --skip 1 $work/customers.csv customers
SQL
  native_sql=${sql//commerce./}; native_sql=${native_sql//identity./}
  sqlite3 -csv "$work/native.db" "$native_sql" | sort > "$work/native.out"
fi

ms() { echo "scale=1; ($2 - $1) / 1000000" | bc -l; }
median() { grep . | sort -n | awk '{a[NR]=$1} END {if (NR) print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
field() { sed -E "s/.* $1 ([0-9.]+) us.*/\1/"; }
declare -A res=()
# Every round starts fresh meshes (one build after the other): a relay
# that served a scan of more than one batch refuses later queries "busy"
# on this code base (see bench/README.md), so nothing runs after the join.
for r in $(seq 1 "$rounds"); do
  for i in "${!bins[@]}"; do
    b=${bins[$i]} w=$work/$r-$i
    start_mesh "$i" "$w"
    for at in logistics commerce; do
      [ "$lookups" -gt 0 ] || break
      # The consumer is the logistics node's key at both, so the owner takes
      # the same access decision (and audit) for either path.
      dumpto=()
      [ -z "$dump" ] || dumpto=(--dump "$dump/$r-$i-$at.txt")
      if out=$("$mb" lookup --node "$(cat "$w/$at/node.addr")" --identity "$w/logistics/identity.key" \
                 --grant --file "$odata" --count "$lookups" "${dumpto[@]}" 2>&1); then
        res[$i,$at,p50]+="$(field p50 <<<"$out") " res[$i,$at,p99]+="$(field p99 <<<"$out") "
      else
        res[$i,$at,failed]="${res[$i,$at,failed]:-}${out##*$'\n'} "
      fi
      echo "round $r, build $i, at $at: $out"
    done
    if [ "$join" = 1 ]; then
      s=$(date +%s%N)
      if "$b/meshq" --data "$w/logistics" query "$sql" --format csv --explain >"$w/join.csv" 2>"$w/explain"; then
        e=$(date +%s%N)
        res[$i,join]+="$(ms "$s" "$e") "
        tail -n +2 "$w/join.csv" | sort > "$w/join.out"
        cmp -s "$w/join.out" "$work/native.out" && res[$i,same]=yes || res[$i,same]=NO
        cp "$w/explain" "$work/$i.explain.ok"; cp "$w/join.out" "$work/$i.join.out"
      else
        res[$i,joinfail]="$(tail -n 1 "$w/explain") "
      fi
      s=$(date +%s%N); sqlite3 "$work/native.db" "$native_sql" >/dev/null; e=$(date +%s%N)
      res[$i,native]+="$(ms "$s" "$e") "
    fi
    stop_mesh
  done
done

echo
echo "$(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); $orders orders, $customers customers; $rounds rounds, medians"
for i in "${!bins[@]}"; do
  echo "build $i: ${bins[$i]}"
  printf '  %-52s %9s %9s\n' "point lookup, $lookups one at a time" "p50 us" "p99 us"
  for at in logistics commerce; do
    [ "$lookups" -gt 0 ] || break
    label="at the owner directly (commerce)"
    [ "$at" = logistics ] && label="through a relaying node (logistics)"
    printf '  %-52s %9s %9s\n' "$label" \
      "$(tr ' ' '\n' <<<"${res[$i,$at,p50]:-}" | median)" "$(tr ' ' '\n' <<<"${res[$i,$at,p99]:-}" | median)"
    [ -z "${res[$i,$at,failed]:-}" ] || echo "    FAILED rounds: ${res[$i,$at,failed]}"
  done
  if [ "$lookups" -gt 0 ] && [ -n "${res[$i,logistics,p50]:-}" ] && [ -n "${res[$i,commerce,p50]:-}" ]; then
    # Relayed over direct, per round then the median: both ran in the same
    # mesh minutes apart, so the ratio carries less of the machine's load.
    ratio() { paste -d' ' <(tr ' ' '\n' <<<"${res[$i,logistics,$1]}") <(tr ' ' '\n' <<<"${res[$i,commerce,$1]}") |
              awk 'NF == 2 && $2 > 0 {printf "%.2f\n", $1 / $2}' | median; }
    printf '  %-52s %8sx %8sx\n' "relayed / direct (median of the rounds' ratios)" "$(ratio p50)" "$(ratio p99)"
  fi
  if [ "$join" = 1 ]; then
    j=$(tr ' ' '\n' <<<"${res[$i,join]:-}" | median) n=$(tr ' ' '\n' <<<"${res[$i,native]}" | median)
    printf '  %-52s %9s ms\n' "join ~1% of orders, meshq at logistics" "$j"
    [ -z "${res[$i,joinfail]:-}" ] || echo "    FAILED rounds: ${res[$i,joinfail]}"
    printf '  %-52s %9s ms' "the same in the sqlite3 shell, both tables local" "$n"
    [ -n "$j" ] && printf '  (meshq %.2fx)' "$(echo "$j / $n" | bc -l)"
    echo
    if [ -s "$work/$i.explain.ok" ]; then
      echo "  result rows $(wc -l <"$work/$i.join.out"), equal to sqlite3's: ${res[$i,same]}"
      echo "  moved (meshq --explain, last good round):"
      grep -v -- '-- explain --' "$work/$i.explain.ok" | sed 's/^/    /' || true
    fi
  fi
done
if [ "$join" = 1 ]; then
  echo "shipping both tables whole: $orders + $customers rows, NDJSON $(stat -c %s "$odata") + $(stat -c %s "$cdata") bytes"
fi
