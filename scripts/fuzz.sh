#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan in
# build-fuzz/ and runs each for SECONDS (default 25) from its seed corpus
# (fuzz/corpus/TARGET; inputs found are kept in build-fuzz/corpus/TARGET).
# Fails on the first crash, sanitizer report, leak, failed invariant or
# timeout; the input is saved as build-fuzz/artifacts/TARGET-crash-*.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 http_request
#
# fuzz/README.md says how to reproduce and minimize a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-25}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(http_request submit_options request_headers callback_url config)
fi
jobs=$(nproc)

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# -O1 and line tables only: a quick build, still fast to fuzz, readable stacks.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DACCEPTD_FUZZ=ON \
  -DACCEPTD_WERROR=ON -DACCEPTD_TESTS=OFF -DACCEPTD_BENCH=OFF -DACCEPTD_EXAMPLES=OFF \
  "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "== fuzz_$t: ${seconds}s"
  dict=()
  if [ -f "fuzz/$t.dict" ]; then dict=(-dict="fuzz/$t.dict"); fi
  # The first directory receives new inputs; the seeds stay untouched.
  if ! build-fuzz/fuzz/"fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" "${dict[@]}" \
    "build-fuzz/corpus/$t" "fuzz/corpus/$t" >"build-fuzz/fuzz_$t.log" 2>&1; then
    tail -n 60 "build-fuzz/fuzz_$t.log"
    echo "fuzz_$t FAILED: the input is in build-fuzz/artifacts/ (see fuzz/README.md)" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^Done' "build-fuzz/fuzz_$t.log" || true
done
