#!/usr/bin/env bash
# sample-data.sh OUTDIR: writes the three-domain demo's records, the same
# bytes on every run (no clock, no randomness), as NDJSON:
#   customers.ndjson  identity/customers   40 valid + 2 invalid
#   orders.ndjson     commerce/orders     120 valid + 3 invalid
#   inventory.ndjson  logistics/inventory  25 valid + 1 invalid
#   shipments.ndjson  logistics/shipments  30 valid + 1 invalid
# Order i (1..120) belongs to customer cust-NNNN with NNNN = (7*i mod 40)+1
# and has status created, paid, shipped, cancelled for i mod 4 = 0..3, so 30
# orders are paid and every one joins a customer. The invalid records break
# the contracts in docs/examples/ on purpose: ingest quarantines them with
# their reasons.
set -euo pipefail
out=${1:?usage: sample-data.sh OUTDIR}
mkdir -p "$out"

awk 'BEGIN {
  split("bronze silver gold", tier, " ")
  split("nl de es fr it", country, " ")
  for (i = 1; i <= 40; i++)
    printf "{\"id\":\"cust-%04d\",\"email\":\"customer%04d@example.com\",\"tier\":\"%s\",\"country\":\"%s\",\"signedUp\":\"2026-%02d-%02dT08:00:00Z\"}\n",
      i, i, tier[i % 3 + 1], country[i % 5 + 1], i % 12 + 1, i % 28 + 1
  print "{\"id\":\"cust-0041\",\"email\":\"no-at-sign\",\"tier\":\"gold\",\"country\":\"nl\",\"signedUp\":\"2026-01-01T08:00:00Z\"}"
  print "{\"id\":\"cust-0042\",\"email\":\"c42@example.com\",\"tier\":\"platinum\",\"country\":\"de\",\"signedUp\":\"2026-01-01T08:00:00Z\"}"
}' >"$out/customers.ndjson"

awk 'BEGIN {
  split("created paid shipped cancelled", status, " ")
  for (i = 1; i <= 120; i++)
    printf "{\"orderId\":\"%08x-0000-4000-8000-%012x\",\"customerId\":\"cust-%04d\",\"amount\":%d.%02d,\"status\":\"%s\",\"timestamp\":\"2026-11-%02dT%02d:%02d:00Z\"}\n",
      i, i, (7 * i) % 40 + 1, 5 + (i * 37) % 200, (i * 13) % 100, status[i % 4 + 1], i % 28 + 1, i % 24, i % 60
  print "{\"orderId\":\"000000f1-0000-4000-8000-0000000000f1\",\"customerId\":\"cust-0001\",\"amount\":-5,\"status\":\"paid\",\"timestamp\":\"2026-11-30T10:00:00Z\"}"
  print "{\"orderId\":\"000000f2-0000-4000-8000-0000000000f2\",\"customerId\":\"cust-0002\",\"amount\":12.5,\"status\":\"lost\",\"timestamp\":\"2026-11-30T10:00:00Z\"}"
  print "{\"orderId\":\"000000f3-0000-4000-8000-0000000000f3\",\"amount\":12.5,\"status\":\"paid\",\"timestamp\":\"2026-11-30T10:00:00Z\"}"
}' >"$out/orders.ndjson"

awk 'BEGIN {
  split("ams ber mad", wh, " ")
  for (i = 1; i <= 25; i++)
    printf "{\"sku\":\"sku-%04d\",\"warehouse\":\"%s\",\"quantity\":%d,\"updatedAt\":\"2026-11-30T%02d:00:00Z\"}\n",
      i, wh[i % 3 + 1], (i * 17) % 90, i % 24
  print "{\"sku\":\"sku-0026\",\"warehouse\":\"ams\",\"quantity\":-3,\"updatedAt\":\"2026-11-30T10:00:00Z\"}"
}' >"$out/inventory.ndjson"

awk 'BEGIN {
  split("dhl ups postnl", carrier, " ")
  n = 0
  for (i = 1; i <= 120; i++) {
    if (i % 4 != 2) continue
    n++
    printf "{\"shipmentId\":\"%08x-5000-4000-8000-%012x\",\"orderId\":\"%08x-0000-4000-8000-%012x\",\"carrier\":\"%s\",\"shippedAt\":\"2026-11-%02dT18:00:00Z\"}\n",
      n, n, i, i, carrier[n % 3 + 1], i % 28 + 1
  }
  print "{\"shipmentId\":\"000000f1-5000-4000-8000-0000000000f1\",\"orderId\":\"00000001-0000-4000-8000-000000000001\",\"carrier\":\"fedex\",\"shippedAt\":\"2026-11-30T18:00:00Z\"}"
}' >"$out/shipments.ndjson"
