#!/usr/bin/env bash
# tour.sh: the guided tour of a three-domain mesh, the same for ./demo.sh
# (three meshd on loopback) and for the compose file's client container.
#
#   tour.sh --bin DIR --governance KEYFILE --work DIR [--wait SECS] \
#           commerce=DATADIR logistics=DATADIR identity=DATADIR
#
# Each DATADIR is a running node's data directory: the tour reaches the node
# at DATADIR/node.addr and acts as that domain's admin with its key
# DATADIR/identity.key, as each team would on its own host. KEYFILE is the
# mesh's governance identity (the nodes run with --governance and its key).
# WORK receives the consumer's keys, the governance documents and the
# sample records (scripts/sample-data.sh).
#
# Steps: the governance identity certifies the domains and publishes the pii
# policy; each team registers its contracts and ingests records (invalid
# ones quarantined); a consumer, a key of its own in group:analysts, joins
# commerce.orders with identity.customers at the logistics node (which owns
# neither), sees the pii column hashed, is refused a private product;
# then members, products and the owner's audit. Every wait polls a
# condition until a deadline. A step that fails prints "TOUR STEP FAILED"
# and the tour goes on; the exit status is 1 if any step failed, 2 for a
# usage error.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

bin='' gov='' work='' wait_s=30
declare -A node=()
usage() { sed -n '2,8p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?}; shift 2 ;;
    --governance) gov=${2:?}; shift 2 ;;
    --work) work=${2:?}; shift 2 ;;
    --wait) wait_s=${2:?}; shift 2 ;;
    commerce=*|logistics=*|identity=*) node[${1%%=*}]=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "tour.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[ -n "$bin" ] && [ -n "$gov" ] && [ -n "$work" ] || usage
for d in commerce logistics identity; do
  [ -n "${node[$d]:-}" ] || { echo "tour.sh: $d=DATADIR is missing" >&2; usage; }
  [ -s "${node[$d]}/node.addr" ] || { echo "tour.sh: no ${node[$d]}/node.addr: is the $d node running?" >&2; exit 2; }
done
mkdir -p "$work"
C=${node[commerce]} L=${node[logistics]} I=${node[identity]}
ex=$root/docs/examples

# ---- presentation --------------------------------------------------------
failed=()
step_no=0
bold=$'\033[1m' red=$'\033[31m' off=$'\033[0m'
[ -t 1 ] || { bold='' red='' off=''; }
heading() { step_no=$((step_no + 1)); printf '\n%s== Step %d: %s%s\n' "$bold" "$step_no" "$*" "$off"; }
# The command as a reader would type it: the data directories as $COMMERCE,
# $LOGISTICS, $IDENTITY and the scratch folder as $WORK.
shown() {
  local a s=
  for a in "$@"; do
    case "$a" in *[\ \'\*\(]*) a="\"$a\"" ;; esac
    s+="${s:+ }$a"
  done
  s=${s//"$bin/"/}; s=${s//"$C"/\$COMMERCE}; s=${s//"$L"/\$LOGISTICS}
  s=${s//"$I"/\$IDENTITY}; s=${s//"$work"/\$WORK}; s=${s//"$ex"/docs/examples}
  printf '%s$ %s%s\n' "$bold" "$s" "$off"
}
note() { printf '   -> what you see: %s\n' "$*"; }
fail() { failed+=("step $step_no: $*"); printf '%sTOUR STEP FAILED (step %d): %s%s\n' "$red" "$step_no" "$*" "$off"; }

# run WANT CMD...: shows CMD, runs it with its output shown, and records a
# failure unless its exit status is WANT (ok = 0, refused = 1, any).
out=
run() {
  local want=$1; shift
  shown "$@"
  local rc=0
  out=$("$@" 2>&1) || rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  case "$want" in
    ok) [ "$rc" = 0 ] || { fail "exit status $rc, expected 0: $(shown "$@")"; return 1; } ;;
    refused) [ "$rc" = 1 ] || { fail "exit status $rc, expected 1 (refused): $(shown "$@")"; return 1; } ;;
    any) ;;
  esac
  return 0
}

# wait_until WHAT CMD...: polls CMD (quietly) until it succeeds or the
# deadline passes; a miss is a failed step naming WHAT.
wait_until() {
  local what=$1; shift
  local deadline=$((SECONDS + wait_s))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then fail "not within ${wait_s} s: $what"; return 1; fi
    sleep 0.2
  done
  printf '   (waited for: %s)\n' "$what"
}

# After a failed cross-domain query: says why it may fail (and returns 1).
fed_hint() {
  grep -Eq "unknown domain|unknown option '--explain'" <<<"$out" &&
    printf '%s   in this build a node answers only over its own products: federated SQL (issue 10) is not in it%s\n' "$red" "$off"
  return 1
}
dmctl() { "$bin/dmctl" "$@"; }
meshq() { "$bin/meshq" "$@"; }
key_of() { "$bin/dmctl" whoami --identity "$1" --json | sed -n 's/.*"key":"\([0-9a-f]\{64\}\)".*/\1/p'; }
node_key() { cut -d@ -f1 <"$1/node.addr"; }
# The hash mask's text: the first 16 bytes of SHA-256 of the value, in hex.
pii_hash() { printf '%s' "$1" | sha256sum | cut -c1-32; }

cat <<EOF2
${bold}A three-domain data mesh, step by step${off}
  COMMERCE  = $C  (node $(node_key "$C" | cut -c1-12)..., owns commerce.orders)
  LOGISTICS = $L  (node $(node_key "$L" | cut -c1-12)..., owns logistics.inventory, logistics.shipments)
  IDENTITY  = $I  (node $(node_key "$I" | cut -c1-12)..., owns identity.customers)
  WORK      = $work  (keys, governance documents, sample records)
EOF2

members_alive() {
  local d
  for d in commerce logistics identity; do
    [ "$("$bin/meshq" --data "${node[$d]}" members | grep -cw alive)" -ge 3 ] || return 1
  done
}
wait_until "every node sees the three members alive (gossip)" members_alive

# ---- 1. identities -------------------------------------------------------
heading "people: the governance identity, a consumer, a privacy officer"
run ok dmctl whoami --identity "$gov"
note "the platform team's key; every node was started with --governance and this key"
for who in consumer officer; do
  # A rerun (the compose client restarted) keeps the keys it made.
  if [ -s "$work/$who.key" ]; then run ok dmctl whoami --identity "$work/$who.key"
  else run ok dmctl keygen "$work/$who.key"; fi
done
consumer=$(key_of "$work/consumer.key") officer=$(key_of "$work/officer.key")
note "two new ed25519 identities: consumer ${consumer:0:12}..., officer ${officer:0:12}..."

# ---- 2. governance -------------------------------------------------------
heading "governance certifies the three domains and publishes the pii policy"
{
  for d in commerce logistics identity; do
    printf -- '---\napiVersion: datamesh.io/v1\nkind: DomainCertificate\nmetadata: {name: %s}\nspec: {domain: %s, node: "%s"}\n' \
      "$d" "$d" "$(node_key "${node[$d]}")"
  done
  printf -- '---\napiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: analysts}\nspec: {members: ["%s", "%s"]}\n' "$consumer" "$officer"
  printf -- '---\napiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: pii-readers}\nspec: {members: ["%s"]}\n' "$officer"
  printf -- '---\n'; grep -v '^#' "$ex/pii-policy.yaml"
} >"$work/governance.yaml"
run ok dmctl --identity "$gov" --data "$C" policy publish "$work/governance.yaml"
note "six signed documents: a DomainCertificate per domain, groups analysts (consumer, officer) and pii-readers (officer), policy pii-masked (docs/examples/pii-policy.yaml)"
for d in commerce logistics identity; do
  wait_until "the $d node holds policy pii-masked and group pii-readers" \
    bash -c '"$1/dmctl" --data "$2" policy show | grep -q pii-masked && "$1/dmctl" --data "$2" policy show | grep -q pii-readers' _ "$bin" "${node[$d]}"
done

# ---- 3. contracts and records --------------------------------------------
heading "each team registers its contracts"
run ok dmctl --data "$C" register "$ex/orders.yaml"
run ok dmctl --data "$L" register "$ex/inventory.yaml"
run ok dmctl --data "$L" register "$ex/shipments.yaml"
run ok dmctl --data "$I" register "$ex/customers.yaml"
note "commerce.orders (the seed contract: restricted, lineage to logistics.inventory and identity.customers), logistics.inventory (public), logistics.shipments (private), identity.customers (restricted, email classified pii)"

heading "each team ingests generated records, a few invalid on purpose"
"$root/scripts/sample-data.sh" "$work/data"
run refused dmctl --data "$C" ingest commerce/orders "$work/data/orders.ndjson"
run refused dmctl --data "$L" ingest logistics/inventory "$work/data/inventory.ndjson"
run refused dmctl --data "$L" ingest logistics/shipments "$work/data/shipments.ndjson"
run refused dmctl --data "$I" ingest identity/customers "$work/data/customers.ndjson"
note "exit status 1 = some records quarantined: 120 orders, 25 stock lines, 30 shipments and 40 customers stored"
run ok dmctl --data "$I" quarantine identity/customers
note "each invalid record kept with the reason it broke the contract"

heading "the owners let group:analysts read orders and customers"
run ok dmctl --data "$C" grant commerce/orders group:analysts
run ok dmctl --data "$I" grant identity/customers group:analysts
note "readers are the owner's call; governance decides who is in the group"
wait_until "the logistics node's catalog lists commerce.orders and identity.customers, certified" \
  bash -c 'p=$("$1/meshq" --data "$2" products) && grep -q "orders" <<<"$p" && grep -q "customers" <<<"$p" && ! grep -q UNCERTIFIED <<<"$p"' _ "$bin" "$L"
wait_until "the logistics node resolves both products to their owners (its directory follows the catalog)" \
  "$bin/meshq" --identity "$work/consumer.key" --data "$L" query "SELECT 1 FROM commerce.orders, identity.customers WHERE 0"

# ---- 4. the consumer -----------------------------------------------------
heading "the consumer joins two other domains' products at the logistics node"
join_sql="SELECT o.orderId, c.tier, c.email FROM commerce.orders o JOIN identity.customers c ON o.customerId = c.id WHERE o.status = 'paid' ORDER BY o.orderId LIMIT 5"
if run ok meshq --identity "$work/consumer.key" --data "$L" query "$join_sql" --format csv || fed_hint; then
  grep -q "^00000001-0000-4000-8000-000000000001,gold,$(pii_hash customer0008@example.com)\$" <<<"$out" ||
    fail "the join's first row is not order 00000001-... of cust-0008 (gold) with its email hashed"
fi
note "logistics owns neither table: the owners ran the scans for the consumer's identity, and the email column arrives hashed (customer0008@example.com -> $(pii_hash customer0008@example.com))"
count_sql="SELECT count(*) AS paid_orders FROM commerce.orders o JOIN identity.customers c ON o.customerId = c.id WHERE o.status = 'paid'"
if run ok meshq --identity "$work/consumer.key" --data "$L" query "$count_sql" --format csv || fed_hint; then
  grep -qx 30 <<<"$out" || fail "the join counted other than 30 paid orders"
fi
note "30 paid orders, every one with its customer"
if run ok meshq --identity "$work/consumer.key" --data "$L" query "$count_sql" --format csv --explain || fed_hint; then
  grep -q -- "-- explain --" <<<"$out" || fail "--explain printed no account of the remote scans"
fi
note "after the rows, per remote table: what was pushed to its owner, the round trips, the rows and bytes that moved"

heading "at the identity node, the same consumer and the privacy officer"
local_sql="SELECT id, tier, email FROM identity.customers ORDER BY id LIMIT 3"
if run ok meshq --identity "$work/consumer.key" --data "$I" query "$local_sql" --format csv; then
  grep -q "^cust-0001,silver,$(pii_hash customer0001@example.com)\$" <<<"$out" ||
    fail "the consumer saw cust-0001's email unmasked or not at all"
fi
note "email hashed for the consumer by policy pii-masked"
if run ok meshq --identity "$work/officer.key" --data "$I" query "$local_sql" --format csv; then
  grep -q "^cust-0001,silver,customer0001@example.com\$" <<<"$out" ||
    fail "the privacy officer did not see cust-0001's email in clear"
fi
note "the officer, an analyst too, is in group:pii-readers, the mask's exception: raw emails"

heading "the consumer is refused a private product"
run refused meshq --identity "$work/consumer.key" --data "$L" query "SELECT count(*) FROM logistics.shipments"
grep -q "access denied to logistics.shipments (private)" <<<"$out" || fail "the refusal does not name logistics.shipments (private)"
note "shipments are private to the logistics admins: refused, with the product, its level and the reason"
run refused meshq --identity "$work/consumer.key" --data "$C" query "SELECT s.carrier, count(*) FROM logistics.shipments s JOIN commerce.orders o ON o.orderId = s.orderId GROUP BY s.carrier"
grep -Eq "denied.*logistics\.shipments|logistics\.shipments.*denied" <<<"$out" ||
  { fail "asked through the commerce node, the answer is not an access denial of logistics.shipments"; fed_hint; }
note "asked through another node, the owner still decides on the consumer's own key: a relay cannot widen what it may read"

# ---- 5. the mesh ---------------------------------------------------------
heading "the mesh: members and products, seen from the logistics node"
run ok meshq --data "$L" members
note "three nodes alive, one per domain, found by gossip"
# Each owner publishes its products' health on its own tick; gossip brings it.
wait_until "the logistics node holds every product's health (each owner measures and publishes it)" \
  bash -c 'p=$("$1/meshq" --data "$2" products) && [ "$(grep -vE "^[^ ]+: " <<<"$p" | grep -cE " (pass|warn|fail|error|sla breached|upstream degraded)( |$)")" -ge 4 ]' _ "$bin" "$L"
run ok meshq --data "$L" products
if [ "$(date -u +%Y%m)" -ge 202612 ]; then # the sample orders' times are past
  grep -q "commerce.orders: breaches sla.freshness" <<<"$out" ||
    fail "commerce.orders (sample orders of November 2026, sla.freshness 5m) is not shown breaching its freshness"
  grep -q "logistics.shipments: upstream degraded: commerce.orders" <<<"$out" ||
    fail "logistics.shipments (downstream of commerce.orders) is not shown upstream degraded"
fi
note "every product of the mesh from the gossiped catalog, with the health its owner measured; records counted where they live. The sample orders are stamped November 2026, so commerce.orders breaches its sla.freshness (5m), measured on their event time; shipments names orders upstream, so it shows \"upstream degraded\": health flows along the lineage"

heading "the owner's audit: identity's record of who read customers"
run ok dmctl --data "$I" audit --since 10m
note "every decision about identity's data, allowed or denied: the admin's writes, each read with its caller (the consumer's own key, also when a relay asked: those rows say \"via relay KEY\", after the relay's fed_open), the deciding rule and the masks"

printf '\n'
if [ "${#failed[@]}" -gt 0 ]; then
  printf '%sTOUR FINISHED WITH %d FAILED STEP(S):%s\n' "$red" "${#failed[@]}" "$off"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
printf '%sTOUR COMPLETE: every step did what it says.%s\n' "$bold" "$off"
