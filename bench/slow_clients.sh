#!/usr/bin/env bash
# The slow-client figure of issue 8: a normal client's submit and poll p99
# with 4,000 slowhttptest connections open, as a ratio to its unloaded p99
# in the same run. Runs tests/slow (both modes) RUNS times (default 5) and
# prints each run's ratios and their medians. The test itself asserts only
# correctness (deadlines kept, every probe served, RSS bounded); this script
# is where the ratio is measured, on a quiet machine.
#
#   bench/slow_clients.sh [RUNS]      uses build/ (scripts/test.sh's release build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-5}
BUILD=${BUILD_DIR:-$ROOT/build}
command -v slowhttptest >/dev/null || { echo "slowhttptest missing: scripts/install-deps.sh" >&2; exit 1; }
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" --target slow_client_tests acceptd >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq 1 "$RUNS"); do
  "$BUILD/tests/slow_client_tests" 2>&1 | grep '^SLOW-CLIENTS' | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import re, statistics, sys
ratios = {}
for line in open(sys.argv[1]):
    mode = re.search(r"mode=(\S+)", line).group(1)
    for what in ("submit", "poll"):
        a, b = map(float, re.search(what + r"_p99_ms=([\d.]+)->([\d.]+)", line).groups())
        ratios.setdefault((mode, what), []).append(b / max(a, 1e-9))
print("\nmode        probe   median p99 ratio (loaded/unloaded)   runs")
for (mode, what), r in sorted(ratios.items()):
    print(f"{mode:<11} {what:<7} {statistics.median(r):>6.2f}x   " + " ".join(f"{x:.2f}" for x in r))
PY
