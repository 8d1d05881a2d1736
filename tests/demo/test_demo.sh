#!/usr/bin/env bash
# test_demo.sh BINDIR: runs ./demo.sh --bin BINDIR (three real meshd started
# through scripts/container-entry.sh, then scripts/tour.sh) under a 55 s
# deadline and checks the tour's key lines: gossip, governance, contracts,
# ingest with quarantine, the cross-domain join's rows with the email
# hashed, the local mask and its exception, the refusal of a private
# product, members, products (with the health their owners published),
# the owner's audit (the consumer's relayed,
# masked reads and the relay's accepted FedOpen among them), and a clean stop of every
# node. Each check prints PASS or FAIL; the exit status is 1 if any failed.
# Registered in tests/CMakeLists.txt as demo.tour.
set -uo pipefail
bindir=${1:?usage: test_demo.sh BINDIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
log=$(mktemp /tmp/test_demo.XXXXXX)
trap 'rm -f "$log"' EXIT

start=$SECONDS
rc=0
# timeout sends TERM to demo.sh, whose trap stops the nodes it started.
timeout --kill-after=10 55 "$root/demo.sh" --bin "$bindir" >"$log" 2>&1 || rc=$?
took=$((SECONDS - start))

fails=0
check() { # check DESCRIPTION PATTERN (an extended regex some line must match)
  if grep -Eq -- "$2" "$log"; then echo "PASS $1"
  else echo "FAIL $1 (no line matches /$2/)"; fails=$((fails + 1)); fi
}
check_after() { # check_after DESCRIPTION COMMAND PATTERN: the line after the command's
  if grep -EA1 -- "$2" "$log" | tail -n +2 | grep -Eq -- "$3"; then echo "PASS $1"
  else echo "FAIL $1 (after /$2/ no line matches /$3/)"; fails=$((fails + 1)); fi
}
hash() { printf '%s' "$1" | sha256sum | cut -c1-32; }

check "three nodes alive by gossip" '^gossip: every node sees three members alive$'
check "domain certificates published" '^published gov/doc/identity \(DomainCertificate\)'
check "the pii policy published" '^published gov/doc/pii-masked \(Policy\)'
for p in commerce/orders logistics/inventory logistics/shipments identity/customers; do
  check "$p registered" "^registered $p 1\.0\.0$"
done
check "orders ingested, 3 quarantined" '^120 accepted, 3 quarantined$'
check "customers ingested, 2 quarantined" '^40 accepted, 2 quarantined$'
check "a quarantined record with its reason" "customers\.ndjson:42: field 'tier': 'platinum' is not one of"
check "the cross-domain join's first row, email hashed" \
  "^00000001-0000-4000-8000-000000000001,gold,$(hash customer0008@example.com)$"
check "the join's fifth row" "^00000011-0000-4000-8000-000000000011,silver,$(hash customer0040@example.com)$"
check "--explain gives an account of the remote scans" '^-- explain --$'
check "the consumer sees the email hashed at the owner" "^cust-0001,silver,$(hash customer0001@example.com)$"
check "a pii reader sees it raw" '^cust-0001,silver,customer0001@example\.com$'
check "a private product refused" 'access denied to logistics\.shipments \(private\): [0-9a-f]{64} is not a logistics admin'
check_after "a private product refused through a relay" '^\$ meshq .*--data \$COMMERCE query "SELECT s\.carrier' \
  '^meshq: .*(denied.*logistics\.shipments|logistics\.shipments.*denied)'
for d in commerce logistics identity; do
  check "members: $d alive" "^[0-9a-f]{16} +$d +tcp://127\.0\.0\.1:[0-9]+ +alive"
done
check "products: the mesh's four" '^logistics +shipments +1\.0\.0 +logistics-ops +private'
check "products: commerce.orders seen at logistics" '^commerce +orders +1\.0\.0 +commerce-engineering +restricted'
if [ "$(date -u +%Y%m)" -ge 202612 ]; then # the sample orders (November 2026) are stale
  check "products: orders breaches its freshness SLA on the orders' event time" \
    '^commerce +orders .* sla breached$'
  check "products: shipments, downstream of orders, upstream degraded" \
    '^logistics\.shipments: upstream degraded: commerce\.orders breaches sla\.freshness'
fi
check "the owner's audit: the consumer's masked read" ' read +identity/customers +allow +owner: restricted, a reader; masks email=hash'
# The relayed reads: the owner audits them as the consumer (the same key as
# its own masked read), the relay named, the mask applied; and the relay's
# FedOpen that opened the session.
consumer=$(grep -E ' read +identity/customers +allow +owner: restricted, a reader; masks email=hash' \
  "$log" | awk '{print $2}' | head -n 1)
check "the owner's audit: a relayed read as the consumer, masked" \
  "^[^ ]+ +${consumer:-NO-CONSUMER} +read +identity/customers +allow +via relay [0-9a-f]{64}; owner: restricted, a reader; masks email=hash"
check "the owner's audit: the relay's FedOpen accepted" \
  "^[^ ]+ +${consumer:-NO-CONSUMER} +fed_open +- +allow +via relay [0-9a-f]{64}; grant accepted: session [0-9a-f]{16}"
check "no tour step failed" '^TOUR COMPLETE'
for d in commerce logistics identity; do
  check "the $d node stopped cleanly" "^$d node stopped cleanly$"
done
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "FAIL demo.sh did not finish within 55 s"; fails=$((fails + 1))
fi
echo "demo.sh exit status $rc after $took s"
if [ "$fails" -gt 0 ]; then
  echo "---- demo.sh output ----"
  cat "$log"
  echo "test_demo: $fails check(s) failed"
  exit 1
fi
echo "test_demo: every check passed"
