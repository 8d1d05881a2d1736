#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/
# and runs them.
#   scripts/fuzz.sh TARGET [SECONDS]     one target (default 60 s)
#   scripts/fuzz.sh --all SECONDS        every target, two at a time
#   scripts/fuzz.sh --list               the target names
#   scripts/fuzz.sh --build              only build them
# Each target starts from its seed corpus (tests/fuzz/corpus/TARGET) plus
# what earlier runs found (build-fuzz/corpus/TARGET). A crash stops the
# target, leaves crash-* in build-fuzz/artifacts/TARGET/ and makes the
# script exit 1: fix it, then keep the input as
# tests/fuzz/regressions/TARGET/NAME so every test run replays it.
# Environment: FUZZ_JOBS (parallel targets, default 2), FUZZ_LOG_DIR (one
# log per target, default build-fuzz/logs), FUZZ_NICE (default 0: the niceness
# of the build and the targets).
set -euo pipefail
cd "$(dirname "$0")/.."

# The targets are the ones tests/fuzz/CMakeLists.txt builds (one list to keep).
read -r -a TARGETS <<<"$(sed -n 's/^set(DM_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)"
[ ${#TARGETS[@]} -gt 0 ] || { echo "fuzz.sh: no DM_FUZZ_TARGETS in tests/fuzz/CMakeLists.txt" >&2; exit 2; }
FUZZ_RSS_MB=2048      # an input using more memory than this is a finding
FUZZ_TIMEOUT_S=10     # an input taking longer than this is a finding
FUZZ_MAX_LEN=65536    # bytes per input: beyond every decoder's interesting sizes

usage() { sed -n '2,15p' "$0"; exit 2; }

build() {
  if [ ! -f build-fuzz/CMakeCache.txt ]; then
    CC=clang cmake -S . -B build-fuzz -DDM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  nice -n "${FUZZ_NICE:-0}" cmake --build build-fuzz -j"${FUZZ_BUILD_JOBS:-2}" >/dev/null
}

# run_one TARGET SECONDS: runs one target; returns libFuzzer's status.
run_one() {
  local t=$1 secs=$2
  local bin=build-fuzz/fuzz/fuzz_$t corpus=build-fuzz/corpus/$t art=build-fuzz/artifacts/$t
  local logdir=${FUZZ_LOG_DIR:-build-fuzz/logs}
  mkdir -p "$corpus" "$art" "$logdir"
  local log=$logdir/$t.log
  local rc=0
  local dict=()   # tests/fuzz/TARGET.dict: the tokens of a text syntax, if it has one
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  nice -n "${FUZZ_NICE:-0}" "$bin" "$corpus" "tests/fuzz/corpus/$t" \
    -max_total_time="$secs" -timeout=$FUZZ_TIMEOUT_S -rss_limit_mb=$FUZZ_RSS_MB \
    -max_len=$FUZZ_MAX_LEN -print_final_stats=1 -artifact_prefix="$art/" ${dict[@]+"${dict[@]}"} \
    >"$log" 2>&1 || rc=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if [ "$rc" = 0 ]; then
    echo "fuzz $t: ${execs:-?} executions in ${secs}s, no crash (log $log)"
  else
    echo "fuzz $t: FAILED (status $rc) after ${execs:-?} executions; input in $art/, log $log" >&2
    grep -m3 -E 'ERROR: |SUMMARY: |fuzz invariant' "$log" >&2 || true
  fi
  return $rc
}

[ $# -ge 1 ] || usage
case "$1" in
  --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
  --build) build; exit 0 ;;
  -h|--help) usage ;;
  --all)
    [ $# -eq 2 ] || usage
    build
    jobs=${FUZZ_JOBS:-2}
    status_dir=$(mktemp -d)
    for t in "${TARGETS[@]}"; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      (run_one "$t" "$2" || touch "$status_dir/$t") &
    done
    wait
    failed=$(ls "$status_dir")
    rm -rf "$status_dir"
    [ -z "$failed" ] || { echo "fuzz: crashed: $failed" >&2; exit 1; }
    ;;
  *)
    t=$1
    printf '%s\n' "${TARGETS[@]}" | grep -qx "$t" || { echo "fuzz.sh: unknown target '$t' (--list)" >&2; exit 2; }
    build
    run_one "$t" "${2:-60}"
    ;;
esac
