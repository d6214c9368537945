#!/usr/bin/env bash
# Builds acceptd twice (optimized with warnings as errors, and ASan+UBSan) and
# runs every test in both builds; then fuzzes (scripts/fuzz.sh) for ~75 s.
#
# The tests that need PostgreSQL (the store conformance suite's PostgreSQL run,
# every integration test a second time as pg.<name>, several nodes on one
# database) use a throw-away cluster this script starts (scripts/pg-cluster.sh)
# and stops, named to them by ACCEPTD_TEST_POSTGRES; set that to a server of
# your own to use it instead (the tests create and drop databases on it).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

if [ -z "${ACCEPTD_TEST_POSTGRES:-}" ]; then
  pg_dir=$(mktemp -d)
  chmod 711 "$pg_dir"  # as root, the server runs as the postgres user
  trap 'scripts/pg-cluster.sh stop "$pg_dir/pg"; rm -rf "$pg_dir"' EXIT
  ACCEPTD_TEST_POSTGRES=$(scripts/pg-cluster.sh start "$pg_dir/pg")
  export ACCEPTD_TEST_POSTGRES
  echo "== PostgreSQL test cluster: $ACCEPTD_TEST_POSTGRES =="
fi

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
# -g1 (functions, no line tables): a third less compile time than -g on the
# Beast-heavy sources; the ASan build below keeps full debug information.
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACCEPTD_WERROR=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
# The release pass ran the browser test (ctest label `browser`, tests/browser/); its screenshots:
if [ -d build/browser-screenshots ]; then
  echo "dashboard screenshots: $(cd build/browser-screenshots && ls *.png | tr '\n' ' ')(build/browser-screenshots/)"
fi
echo "== sanitizer build (ASan+UBSan) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DACCEPTD_SANITIZE=ON -DACCEPTD_BENCH=OFF
echo "== fuzzing (libFuzzer + ASan + UBSan, clang; 15 s per target) =="
scripts/fuzz.sh 15
passed=$((passed + 5))  # the five fuzz targets
echo "summary: $passed passed, 0 failed"
