#!/bin/sh
# difftest.sh: the seeded differential tester (tests/difftest/README.md) run
# long: builds build/tests/difftest if needed and runs it over seeds.
#   scripts/difftest.sh --queries N --seed S [--seeds K] [--records R] [--classes a,b] [--show K]
# Defaults: 1000 queries, seed 1, 1 seed, 2000 records per product, all
# classes. Exit 1 on any mismatch or engine timeout (> 5 s), 2 on a setup error.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DM_BUILD_DIR:-$root/build}
queries=1000 seed=1 seeds=1 records=2000 classes=${DT_CLASSES:-all} show=10
while [ $# -gt 0 ]; do
    case "$1" in
    --queries) queries=$2 ;;
    --seed) seed=$2 ;;
    --seeds) seeds=$2 ;;
    --records) records=$2 ;;
    --classes) classes=$2 ;;
    --show) show=$2 ;;
    *) echo "difftest.sh: unknown option '$1' (valid: --queries N --seed S --seeds K --records R --classes a,b --show K)" >&2
       exit 2 ;;
    esac
    [ $# -ge 2 ] || { echo "difftest.sh: $1 needs a value" >&2; exit 2; }
    shift 2
done
if [ ! -d "$build" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target difftest >/dev/null
exec "$build/tests/difftest" --queries "$queries" --seed "$seed" --seeds "$seeds" \
    --records "$records" --classes "$classes" --show "$show"
