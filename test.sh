#!/usr/bin/env bash
# test.sh: installs missing packages, builds, and runs every test:
# the layout rules (scripts/check_layout.py: call cycles, names, sizes,
# includes), the compose file (docker-compose config), the multi-node tests
# and the demo on a normal build (tests/perf benchmarks built, not run) and,
# beside them at the lowest priority, the unit tests on an AddressSanitizer +
# UndefinedBehaviorSanitizer build, then every libFuzzer target for a
# bounded time (scripts/fuzz.sh; a crash fails).
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

if [ "$quick" = 0 ]; then
  mkdir -p build
  # The multi-node tests run one at a time and mostly wait on timers, so
  # from the start, at the lowest CPU and I/O priority (nice 19, ionice idle:
  # it takes only what the build and the tests leave), a background job builds and runs the
  # unit tests under ASan + UBSan, then builds and runs every libFuzzer
  # target for FUZZ_CI_SECONDS (a smoke run; scripts/fuzz.sh TARGET 600 is
  # the real search). Its stages are stamped in build/background.log, shown
  # if it fails.
  echo "== in the background (build/background.log): ASan + UBSan build and unit tests, fuzzing build and ${FUZZ_CI_SECONDS:-6} s per target$(s_at)"
  low="nice -n 19"
  command -v ionice >/dev/null && low="$low ionice -c 3"
  export DM_LOW="$low" DM_JOBS="$jobs" DM_T0=$SECONDS
  # setsid: its own process group, so that an early exit stops it all
  setsid bash -c '
    set -e
    # its own session is its own autogroup (when the kernel groups by
    # session), which nice alone does not lower: lower the group itself
    [ -w /proc/self/autogroup ] && { echo 19 >/proc/self/autogroup; } 2>/dev/null || true
    stage() { echo "== $1 [$(( SECONDS + DM_T0 ))s]"; }
    stage "ASan + UBSan build"
    $DM_LOW cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDM_SANITIZE=ON >/dev/null
    $DM_LOW cmake --build build-asan -j"$DM_JOBS" --target unit_tests
    stage "unit tests under ASan + UBSan"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      $DM_LOW ctest --test-dir build-asan --output-on-failure -j"$DM_JOBS" -L unit
    stage "fuzzing build"
    FUZZ_BUILD_JOBS=$DM_JOBS FUZZ_NICE=19 scripts/fuzz.sh --build
    stage "fuzzing (libFuzzer, ASan + UBSan)"
    FUZZ_JOBS=2 FUZZ_NICE=19 scripts/fuzz.sh --all "${FUZZ_CI_SECONDS:-6}"
    stage "background done"' >build/background.log 2>&1 &
  bg_pid=$!
  trap 'kill -- "-$bg_pid" 2>/dev/null || true' EXIT
fi

echo "== build (RelWithDebInfo)$(s_at)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDM_PERF=ON >/dev/null
if [ "$quick" = 1 ]; then
  cmake --build build -j"$jobs"
else
  # The unit executables are built (and run) only by the sanitizer job above.
  cmake --build build -j"$jobs" --target mesh_tests perf_benches
fi
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
  echo "== multi-node tests and the demo$(s_at)"
  ctest --test-dir build --output-on-failure -j"$jobs" -LE unit
  echo "== waiting for the background job$(s_at)"
  bg=0
  wait "$bg_pid" || bg=$?
  trap - EXIT
  # Its stage lines, the test summary and the fuzzing lines; all of it if it failed.
  grep -E '^== |tests passed|tests failed|^fuzz |Total Test' build/background.log || true
  if [ "$bg" != 0 ]; then
    tail -n 80 build/background.log >&2
    echo "test.sh: the sanitizer tests or fuzzing failed (build/background.log; its end is above)" >&2
    exit 1
  fi
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
