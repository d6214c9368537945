#!/usr/bin/env bash
# Where acceptd spends its CPU: profiles the server under the submit load
# (figure 1) and under the poll load (figure 2) and prints the top symbols,
# for bench/README.md's "top costs" section.
#
#   bench/profile.sh             perf record -g, 10 s per load
#
# Uses `perf record -g` (installs linux-perf when missing) on a Release build
# with frame pointers in build-bench-prof/, so call graphs are complete. When
# perf cannot record here (no perf events in the VM or container), falls back
# to valgrind --tool=callgrind at a lighter load (valgrind runs the server
# ~50x slower: its numbers are instruction counts, not time).
#
# Writes bench/results/profile-{submit,poll}.txt (and the perf.data files, for
# `perf report -i ...`). Options (environment):
#   BENCH_PROFILE_SECONDS (10)  BENCH_PROFILER (auto | perf | callgrind)
#   BENCH_BUILD_DIR (build-bench-prof)  BENCH_NO_BUILD=1  BENCH_CONNECTIONS (64)
#   BENCH_SERVER_CPUS (0)  BENCH_CLIENT_CPUS (1)  BENCH_SERVER_THREADS (1)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
export BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-$ROOT/build-bench-prof}
case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "profile.sh: no arguments (see --help)" >&2; exit 2 ;;
esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"
SECONDS_PER_LOAD=${BENCH_PROFILE_SECONDS:-10}
PROFILER=${BENCH_PROFILER:-auto}

bench_init
ensure_commands wrk:wrk taskset:util-linux
if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
  if [ ! -x "$ACCEPTD" ] || [ ! -x "$LOADGEN" ]; then die "BENCH_NO_BUILD: no binaries in $BUILD_DIR"; fi
else
  ensure_build_tools
  build_release "-DCMAKE_CXX_FLAGS=-g -fno-omit-frame-pointer"
fi
write_acceptd_config
mkdir -p "$RESULTS"

perf_works() {
  command -v perf >/dev/null 2>&1 && perf record -q -g -o "$WORK/probe.data" -- true >/dev/null 2>&1
}
if [ "$PROFILER" = auto ] || [ "$PROFILER" = perf ]; then
  perf_works || ensure_commands perf:linux-perf
  if perf_works; then
    PROFILER=perf
  elif [ "$PROFILER" = perf ]; then
    die "perf cannot record here"
  else
    log "perf cannot record here; falling back to valgrind --tool=callgrind"
    PROFILER=callgrind
  fi
fi
if [ "$PROFILER" = callgrind ]; then ensure_commands valgrind:valgrind callgrind_annotate:valgrind; fi
PERF_EVENT_ARGS=()
# Unprivileged with perf_event_paranoid > 1: user-space samples only.
if [ "$(id -u)" -ne 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)" -gt 1 ]; then
  PERF_EVENT_ARGS=(-e cpu-clock:u)
fi

wrk_load() { # SECONDS CONNS SCRIPT [ENV...]
  local secs=$1 conns=$2 script=$3
  shift 3
  env BENCH_LUA_DIR="$LUA_DIR" BENCH_FIGURE=profile BENCH_OUT=/dev/null "$@" \
    taskset -c "$CLIENT_CPUS" wrk -t1 -c"$conns" -d"${secs}s" --timeout 30s \
    -s "$LUA_DIR/$script" "$ACCEPTD_URL" >>"$WORK/wrk.log" 2>&1 || die "wrk failed"
}

# top_symbols NAME DATAFILE: the flat (self) and the inclusive (children) top lists.
perf_top() {
  local name=$1 data=$2 out="$RESULTS/profile-$1.txt"
  {
    echo "== acceptd under the $name load: top symbols by self time (perf, $SECONDS_PER_LOAD s) =="
    perf report -i "$data" --stdio --no-children -g none --sort dso,symbol --percent-limit 0.7 \
      2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n '1,40p' || true
    echo
    echo "== inclusive (self + callees), top 30 =="
    perf report -i "$data" --stdio --children -g none --sort symbol --percent-limit 2 \
      2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n '1,30p' || true
  } >"$out"
  cat "$out"
}

profile_perf() { # NAME SCRIPT [ENV...]
  local name=$1 script=$2
  shift 2
  local data="$RESULTS/profile-$name.perf.data"
  rm -f "$data" "$data.old"
  wrk_load 2 "$CONNS" "$script" "$@"  # warm-up
  perf record -q -g "${PERF_EVENT_ARGS[@]}" -p "$ACCEPTD_PID" -o "$data" \
    -- sleep "$SECONDS_PER_LOAD" >>"$WORK/perf.log" 2>&1 &
  local perf_pid=$!
  STARTED_PIDS+=("$perf_pid")
  wrk_load "$((SECONDS_PER_LOAD + 1))" "$CONNS" "$script" "$@"
  wait "$perf_pid" || die "perf record failed: $(cat "$WORK/perf.log")"
  forget_pid "$perf_pid"
  perf_top "$name" "$data"
}

# Runs acceptd under callgrind for one load; callgrind writes its profile at exit.
profile_callgrind() { # NAME STORE SCRIPT [ENV...]
  local name=$1 store=$2 script=$3
  shift 3
  local data="$RESULTS/profile-$name.callgrind.out" saved=$ACCEPTD
  # start_acceptd runs "$ACCEPTD"; point it at a wrapper that runs it under valgrind.
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s %s "$@"\n' \
    "$data" "$saved" >"$WORK/acceptd-callgrind"
  chmod +x "$WORK/acceptd-callgrind"
  ACCEPTD="$WORK/acceptd-callgrind"
  start_acceptd "callgrind-$name" "$store"
  ACCEPTD=$saved
  wrk_load "$SECONDS_PER_LOAD" 8 "$script" "$@"
  stop_acceptd >/dev/null
  {
    echo "== acceptd under the $name load (8 connections, valgrind): top functions by own instructions (callgrind) =="
    callgrind_annotate --inclusive=no "$data" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '1,45p' || true
    echo
    echo "== inclusive, top 30 =="
    callgrind_annotate --inclusive=yes "$data" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '1,35p' || true
  } >"$RESULTS/profile-$name.txt"
  cat "$RESULTS/profile-$name.txt"
}

POLL_IDS="$WORK/poll-ids.txt"
log "profiling with $PROFILER; server on CPU $SERVER_CPUS, load on CPU $CLIENT_CPUS"
if [ "$PROFILER" = perf ]; then
  start_acceptd profile "$STORE_ROOT/p"
  log "submit load (wrk, $CONNS connections, ${SECONDS_PER_LOAD}s)"
  profile_perf submit submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
  taskset -c "$CLIENT_CPUS" "$LOADGEN" submit --target "127.0.0.1:$ACCEPTD_PORT" \
    --path "$SUBMIT_PATH" --count "$POLL_JOBS" --connections "$CONNS" --ids-out "$POLL_IDS" \
    --out /dev/null
  log "poll load (wrk, $CONNS connections, ${SECONDS_PER_LOAD}s)"
  profile_perf poll poll.lua BENCH_IDS_FILE="$POLL_IDS"
  stop_acceptd >/dev/null
else
  log "submit load (wrk, 8 connections, ${SECONDS_PER_LOAD}s)"
  profile_callgrind submit "$STORE_ROOT/p" submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
  start_acceptd pollset "$STORE_ROOT/p"
  taskset -c "$CLIENT_CPUS" "$LOADGEN" submit --target "127.0.0.1:$ACCEPTD_PORT" \
    --path "$SUBMIT_PATH" --count "$POLL_JOBS" --connections "$CONNS" --ids-out "$POLL_IDS" \
    --out /dev/null
  stop_acceptd >/dev/null
  log "poll load (wrk, 8 connections, ${SECONDS_PER_LOAD}s)"
  profile_callgrind poll "$STORE_ROOT/p" poll.lua BENCH_IDS_FILE="$POLL_IDS"
fi
log "profiles: $RESULTS/profile-submit.txt and $RESULTS/profile-poll.txt"
