#!/usr/bin/env bash
# Installs the Debian 12 packages acceptd needs to build, test and benchmark.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libpq-dev libssl-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev
  slowhttptest  # tests/slow: the slow-client suite
  clang libclang-rt-dev  # scripts/fuzz.sh: libFuzzer and the sanitizers for clang
)
# Installed without their recommends (ImageMagick's pull in ghostscript and fonts).
LEAN_PACKAGES=(
  python3            # examples/workers/python_worker.py, examples/http-forward/slow_service.py
  python3-jsonschema # tests/openapi/check_openapi.py: live answers against docs/openapi.json
  imagemagick-6.q16  # examples/thumbnail: ImageMagick's convert
  postgresql-15 postgresql-client-15  # scripts/pg-cluster.sh: the tests' throw-away clusters
  nginx-light        # examples/load-balancer and its test; bench/run.sh's ceiling
  prometheus         # promtool: tests/integration/metrics_test.cc checks GET /metrics
  tzdata             # /usr/share/zoneinfo: schedules' time zones (src/cli/time_zone_files.h) and their tests
  chromium fonts-liberation  # tests/browser: the dashboard in headless Chromium (never a downloaded browser)
)
# Node.js and npm for tests/browser (playwright-core): Debian's, unless the machine has a node.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  LEAN_PACKAGES+=(nodejs npm)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
missing_lean=()
for p in "${LEAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_lean+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#missing_lean[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
fi
# Services that packages would start (PostgreSQL's main cluster, nginx on port 80) are kept
# from starting while we install, with the usual policy-rc.d: the tests start their own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && { [ ${#missing[@]} -gt 0 ] || [ ${#missing_lean[@]} -gt 0 ]; }; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ ${#missing_lean[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing_lean[@]}"
fi
# tests/browser: playwright-core from the npm registry, as package-lock.json pins it (it drives
# the chromium above; it never downloads a browser of its own).
(cd "$(dirname "$0")/../tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
