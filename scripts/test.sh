#!/usr/bin/env bash
# Builds acceptd twice (optimized with warnings as errors, and ASan+UBSan) and
# runs every test in both builds; then fuzzes (scripts/fuzz.sh) for ~2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

passed=0
run_suite() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 300 | tee "$dir/ctest.log"
  # set -o pipefail has failed the script already if ctest failed.
  local n
  n=$(sed -n 's/^100% tests passed, 0 tests failed out of \([0-9]*\)$/\1/p' "$dir/ctest.log")
  passed=$((passed + ${n:-0}))
}

echo "== release build (RelWithDebInfo, -Werror) =="
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACCEPTD_WERROR=ON
echo "== sanitizer build (ASan+UBSan) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DACCEPTD_SANITIZE=ON -DACCEPTD_BENCH=OFF
echo "== fuzzing (libFuzzer + ASan + UBSan, clang; 25 s per target) =="
scripts/fuzz.sh 25
passed=$((passed + 5))  # the five fuzz targets
echo "summary: $passed passed, 0 failed"
