#!/usr/bin/env bash
# test.sh: installs missing packages, builds, and runs every test:
# the layout rules (scripts/check_layout.py: call cycles, names, sizes,
# includes), the compose file (docker-compose config), the multi-node tests
# and the demo on a normal build (tests/perf benchmarks built, not run), the
# unit tests on an AddressSanitizer + UndefinedBehaviorSanitizer build, then
# every libFuzzer target for a bounded time (scripts/fuzz.sh; a crash fails).
#   ./test.sh            everything
#   ./test.sh --quick    unit and multi-node tests on the normal build only:
#                        no sanitizer build, no fuzzing
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
dm_install_deps test

jobs=$(nproc 2>/dev/null || echo 2)
s_at() { echo " [${SECONDS}s]"; } # seconds since the start, on each stage's line
quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (--quick, --help)" >&2; exit 2 ;;
  esac
done

echo "== build (RelWithDebInfo)$(s_at)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDM_PERF=ON >/dev/null
cmake --build build -j"$jobs"
# A layout breach fails the run, but at the end, so one run shows the tests too.
echo "== layout (scripts/check_layout.py)$(s_at)"
layout=0
python3 scripts/check_layout.py build || layout=1
# The compose file parses, its services, volumes and anchors resolve (no
# Docker engine is needed, nor started).
echo "== compose file (docker-compose config)$(s_at)"
compose=0
docker-compose -f docker-compose.yml config -q || compose=1
if [ "$quick" = 1 ]; then
  echo "== unit and multi-node tests$(s_at)"
  ctest --test-dir build --output-on-failure -j"$jobs"
else
  # The multi-node tests run one at a time and mostly wait on timers, so the
  # sanitizer and fuzzing builds run meanwhile at the lowest priority (nice
  # 19: they take only the CPU the tests leave; their output goes to a log,
  # shown if they fail).
  echo "== ASan + UBSan and fuzzing builds in the background (build/background.log)$(s_at)"
  # setsid: its own process group, so that an early exit stops the compilers too
  setsid bash -c "nice -n 19 cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDM_SANITIZE=ON >/dev/null &&
    nice -n 19 cmake --build build-asan -j$jobs --target unit_tests &&
    FUZZ_BUILD_JOBS=$jobs FUZZ_NICE=19 scripts/fuzz.sh --build" >build/background.log 2>&1 &
  bg_pid=$!
  trap 'kill -- "-$bg_pid" 2>/dev/null || true' EXIT
  # The unit tests run once, below, under the sanitizers (every test labelled
  # unit is built there); this build runs the multi-node tests and the demo.
  echo "== multi-node tests and the demo$(s_at)"
  ctest --test-dir build --output-on-failure -j"$jobs" -LE unit
fi

if [ "$quick" = 0 ]; then
  echo "== waiting for the background builds$(s_at)"
  if ! wait "$bg_pid"; then
    tail -n 60 build/background.log >&2
    echo "test.sh: the sanitizer or fuzzing build failed (the end of build/background.log is above)" >&2
    exit 1
  fi
  trap - EXIT
  echo "== unit tests under ASan + UBSan$(s_at)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit
  # Two targets at a time for FUZZ_CI_SECONDS each: 9 targets in about 5 x 8 s
  # after the clang build (a smoke run that keeps the whole run under 10
  # minutes on 2 cores; scripts/fuzz.sh TARGET 600 is the real search).
  echo "== fuzzing (libFuzzer, ASan + UBSan, ${FUZZ_CI_SECONDS:-8} s per target)$(s_at)"
  FUZZ_JOBS=2 FUZZ_BUILD_JOBS="$jobs" scripts/fuzz.sh --all "${FUZZ_CI_SECONDS:-8}"
fi
if [ "$compose" != 0 ]; then
  echo "test.sh: docker-compose config refused docker-compose.yml (its errors are above under '== compose file')" >&2
  exit 1
fi
if [ "$layout" != 0 ]; then
  echo "test.sh: the layout check failed (breaches listed above under '== layout')" >&2
  exit 1
fi
echo "== done$(s_at)"
