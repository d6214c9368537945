#!/usr/bin/env bash
# The acceptd benchmark suite: one command (see bench/README.md).
#
#   bench/run.sh                 full run (about 11-12 minutes on 2 cores, plus the build)
#   bench/run.sh --quick         trial: 3 s x 1 run, no 1M-job memory test
#   bench/run.sh --store postgres  the same on a throw-away PostgreSQL cluster,
#                                with SQLite's submits and polls measured in the
#                                same run, and two nodes on one database (7.)
#
# Installs wrk and nginx when missing, builds acceptd and the load generator
# in Release (build-bench/), then measures, each on a fresh store on loopback:
#   1. durable submits/s     wrk + lua/submit.lua, 64 connections; and busy
#                            (1c.: a queue runs the jobs meanwhile, concurrency 16)
#   2. status polls/s        wrk + lua/poll.lua over 10,000 existing jobs
#   4. whole-loop jobs/s     acceptd_loadgen loop (submit, long-poll, repeat),
#                            with 64 clients, and with 16 (4b.: done/s, p50, p99)
#   3. end-to-end latency    acceptd_loadgen latency at 50% of 4., 60 s runs,
#                            p50/p99/p99.9 of each run
#   5. memory                1,000,000 queued jobs; 10,000 long-poll waiters;
#                            10,000 idle connections
#   6. the ceiling           nginx `return 202` under the loads of 1. and 2.;
#                            6b.: 1., 2. and 6. again with nothing pinned
#   7. two nodes             (--store postgres) 1.-4. with two acceptd nodes on
#                            one database, and the cross-node wake-up latency
# and writes bench/results/latest.{md,json} (+ latest.raw.jsonl, logs/).
#
# Options (flags or environment):
#   --duration N   BENCH_DURATION   seconds per measured run (10)
#   --runs N       BENCH_RUNS       runs per figure, median reported (3)
#   --quick        BENCH_QUICK=1    3 s x 1 run unless set, skip the 1M-job test
#   --no-build     BENCH_NO_BUILD=1 use the binaries already in build-bench
#   --keep         BENCH_KEEP_WORK=1 keep the temp dir (stores, logs, nginx)
#   --store KIND   BENCH_STORE       sqlite (default) or postgres
#   BENCH_WARMUP (2) BENCH_CONNECTIONS (64) BENCH_LOOP_CONNECTIONS (= connections)
#   BENCH_BULK_JOBS (1000000)
#   BENCH_LONGPOLL_WAITERS (10000) BENCH_LONGPOLL_JOBS (10)
#   BENCH_IDLE_CONNS (10000) BENCH_POLL_JOBS (10000) BENCH_SERVER_CPUS (0)
#   BENCH_CLIENT_CPUS (1) BENCH_SERVER_THREADS (1) BENCH_WAIT (longpoll:30 | poll)
#   BENCH_BUSY_CONCURRENCY (16) BENCH_LP_CONNECTIONS (16)
#   BENCH_E2E_DURATION (60; quick: the duration) BENCH_SLOW_MS (10)
#   BENCH_UNPINNED (1; 0 skips 6b.)
#   BENCH_BUILD_DIR BENCH_RESULTS_DIR
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

QUICK=${BENCH_QUICK:-0}
NO_BUILD=${BENCH_NO_BUILD:-0}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --duration) BENCH_DURATION=$2; shift ;;
    --runs) BENCH_RUNS=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    --keep) export BENCH_KEEP_WORK=1 ;;
    --store) export BENCH_STORE=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  BENCH_DURATION=${BENCH_DURATION:-3}
  BENCH_RUNS=${BENCH_RUNS:-1}
  BENCH_WARMUP=${BENCH_WARMUP:-1}
fi

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"
BULK_JOBS=${BENCH_BULK_JOBS:-1000000}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
WAITERS=${BENCH_LONGPOLL_WAITERS:-10000}
WAITER_JOBS=${BENCH_LONGPOLL_JOBS:-10}
WAITER_WAIT=60  # seconds of each waiter's ?wait=; acceptd.toml's max_wait is 60 (lib.sh)
WAIT=${BENCH_WAIT:-longpoll:30}
case "$WAIT" in
  poll) ;;
  longpoll:*) [[ "${WAIT#longpoll:}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_WAIT=$WAIT: longpoll:SECONDS" ;;
  *) die "BENCH_WAIT must be longpoll:SECONDS or poll, not '$WAIT'" ;;
esac
LOOP_CONNS=${BENCH_LOOP_CONNECTIONS:-$CONNS}
LP_CONNS=${BENCH_LP_CONNECTIONS:-16}
BUSY_PATH=/v1/queues/busy/jobs  # no ?delay: the busy queue runs its jobs at once
if [ "$QUICK" = 1 ]; then
  E2E_DURATION=${BENCH_E2E_DURATION:-$DURATION}
else
  E2E_DURATION=${BENCH_E2E_DURATION:-60}
fi
SLOW_MS=${BENCH_SLOW_MS:-10}
UNPINNED=${BENCH_UNPINNED:-1}
case "$STORE_KIND" in
  sqlite | postgres) ;;
  *) die "--store must be sqlite or postgres, not '$STORE_KIND'" ;;
esac
PG=0
[ "$STORE_KIND" = postgres ] && PG=1
if [ "$RUNS" -lt 1 ] || [ "$DURATION" -lt 1 ] || [ "$E2E_DURATION" -lt 1 ]; then
  die "runs and durations must be >= 1"
fi

SUITE_START=$(date +%s)
bench_init
RAW="$WORK/raw.jsonl"
: >"$RAW"

# --- tools and build ---------------------------------------------------------
ensure_commands wrk:wrk nginx:nginx-light taskset:util-linux curl:curl jq:jq
if [ "$NO_BUILD" = 1 ]; then
  if [ ! -x "$ACCEPTD" ] || [ ! -x "$LOADGEN" ]; then die "--no-build: no binaries in $BUILD_DIR"; fi
else
  ensure_build_tools
  build_release
fi
taskset -c "$SERVER_CPUS" true 2>/dev/null || die "BENCH_SERVER_CPUS=$SERVER_CPUS: no such CPUs here"
taskset -c "$CLIENT_CPUS" true 2>/dev/null || die "BENCH_CLIENT_CPUS=$CLIENT_CPUS: no such CPUs here"
WRK_THREADS=${BENCH_WRK_THREADS:-$(taskset -c "$CLIENT_CPUS" nproc)}
write_acceptd_config

# --- helpers -------------------------------------------------------------------
emit() { printf '%s\n' "$1" >>"$RAW"; }
meta() { emit "{\"meta\":\"$1\",\"value\":\"$(printf '%s' "$2" | tr -d '"\\' | tr '\n\t\r' '   ')\"}"; }
note() { emit "{\"note\":\"$(printf '%s' "$1" | tr -d '"\\' | tr '\n\t\r' '   ')\"}"; }
check() { # NAME OK(true|false) DETAIL
  emit "{\"check\":\"$1\",\"ok\":$2,\"detail\":\"$(printf '%s' "$3" | tr -d '"\\' | tr '\n\t\r' '   ')\"}"
  [ "$2" = true ] || log "CHECK FAILED: $1: $3"
}
figure() { emit "{\"figure\":\"$1\",\"value\":$2}"; }
value_of() { awk 'match($0, /"value":[-0-9.eE+]+/) {print substr($0, RSTART + 8, RLENGTH - 8); exit}'; }
int_of() { awk '{printf "%.0f", $1}'; }
ms2() { awk '{printf "%.2f", $1}'; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) exit 1; print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
store_bytes() { # apparent size of the SQLite files, or of the PostgreSQL database
  if [ "$PG" = 1 ]; then
    pg_psql -tAc "SELECT pg_database_size('bench_$(basename "$1")')"
    return
  fi
  local total=0 f
  for f in "$1"/acceptd.db "$1"/acceptd.db-wal "$1"/acceptd.db-shm; do
    [ -e "$f" ] && total=$((total + $(stat -c %s "$f")))
  done
  echo "$total"
}
rss_bytes() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }

# Interference: CPU time the whole machine spent (incl. VM steal) minus what
# the server and our client used, during a run. The shell's `times` (run in
# this shell, not a subshell) gives the CPU of its finished children.
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
child_cpu() { # sets CHILD_CPU_S
  times >"$WORK/times"
  CHILD_CPU_S=$(awk 'NR == 2 {split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2]}' "$WORK/times")
}
# other_cpu FIGURE BUSY0 BUSY1 SERVER_TICKS CLIENT_S0 CLIENT_S1 WALL0 WALL1
other_cpu() {
  figure "$1_other_cpu" "$(awk -v b="$(($3 - $2))" -v t="$4" -v c0="$5" -v c1="$6" -v a="$7" -v z="$8" \
    -v hz="$CLK_TCK" 'BEGIN {o = ((b - t) / hz - (c1 - c0)) / (z - a) * 100; if (o < 0) o = 0; printf "%.1f", o}')"
}
server_cpu() { # FIGURE TICKS WALL0 WALL1
  figure "$1_server_cpu" "$(awk -v t="$2" -v hz="$CLK_TCK" -v a="$3" -v b="$4" \
    'BEGIN {printf "%.1f", t / hz / (b - a) * 100}')"
}

CLEAN_ERRORS='"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":0}'
declare -A DIRTY_RUNS=()
# wrk_run FIGURE URL SCRIPT SERVER_PID [ENV=VALUE...]: one measured wrk run;
# appends its figures and the server's CPU use during it.
wrk_run() {
  local fig=$1 url=$2 script=$3 spid=$4
  shift 4
  local out="$WORK/wrk-run.jsonl" pids t0 t1 s0 s1 b0 b1 c0 c1
  : >"$out"
  read -r -a pids <<<"$(server_pids "$spid")"
  child_cpu
  c0=$CHILD_CPU_S
  t0=$(cpu_ticks "${pids[@]}")
  b0=$(machine_busy_ticks)
  s0=$(now)
  env BENCH_LUA_DIR="$LUA_DIR" BENCH_FIGURE="$fig" BENCH_OUT="$out" "$@" \
    taskset -c "$CLIENT_CPUS" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 10s \
    -s "$LUA_DIR/$script" "$url" >>"$WORK/wrk.log" 2>&1 || die "wrk failed (see $WORK/wrk.log)"
  s1=$(now)
  b1=$(machine_busy_ticks)
  t1=$(cpu_ticks "${pids[@]}")
  child_cpu
  c1=$CHILD_CPU_S
  cat "$out" >>"$RAW"
  server_cpu "$fig" "$((t1 - t0))" "$s0" "$s1"
  other_cpu "$fig" "$b0" "$b1" "$((t1 - t0))" "$c0" "$c1" "$s0" "$s1"
  local line
  line=$(grep "\"figure\":\"${fig}_rps\"" "$out")
  if [[ "$line" != *"$CLEAN_ERRORS"* ]] || { [[ "$line" == *'"not_202"'* ]] && [[ "$line" != *'"not_202":0}'* ]]; }; then
    DIRTY_RUNS[$fig]=$((${DIRTY_RUNS[$fig]:-0} + 1))
  fi
  log "  $fig: $(printf '%s' "$line" | value_of | int_of)/s"
}
wrk_warmup() { # URL SCRIPT [ENV...]
  local url=$1 script=$2
  shift 2
  env BENCH_LUA_DIR="$LUA_DIR" BENCH_FIGURE=warmup BENCH_OUT=/dev/null "$@" \
    taskset -c "$CLIENT_CPUS" wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 10s \
    -s "$LUA_DIR/$script" "$url" >>"$WORK/wrk.log" 2>&1 || die "wrk warm-up failed"
}
check_runs_clean() { # FIGURE WHAT
  local n=${DIRTY_RUNS[$1]:-0}
  if [ "$n" -eq 0 ]; then
    check "${1}_runs_clean" true "$RUNS runs: $2, no socket errors or timeouts"
  else
    check "${1}_runs_clean" false "$n of $RUNS runs had errors (not $2, or socket errors)"
  fi
}
loadgen() { taskset -c "$CLIENT_CPUS" "$LOADGEN" "$@"; }
last_value() { grep "\"figure\":\"$1\"" "$RAW" | tail -1 | value_of; }
# queue_counts URL QUEUE: "QUEUED RUNNING SUCCEEDED" of a queue (GET /v1/queues).
queue_counts() {
  curl -fsS --max-time 10 "$1/v1/queues" |
    jq -r --arg q "$2" '.queues[] | select(.name == $q) | "\(.counts.queued) \(.counts.running) \(.counts.succeeded)"'
}

# 1c. One busy-submit run: a fresh acceptd and store, warmed up, then wrk
# submits to the busy queue (no ?delay) while the queue runs the jobs; the
# jobs it ran meanwhile and its backlog at the end come from GET /v1/queues.
# Each run's busy / not-running ratio is taken against the not-running
# submit run just before it. Leaves ACCEPTD_* as they were.
busy_run() { # RUN
  local saved=("$ACCEPTD_PID" "$ACCEPTD_URL" "$ACCEPTD_PORT" "$ACCEPTD_LOG") s0 q1 r1 s1
  start_acceptd "busy$1" "$STORE_ROOT/busy$1"
  wrk_warmup "$ACCEPTD_URL" submit.lua BENCH_SUBMIT_PATH="$BUSY_PATH"
  read -r _ _ s0 <<<"$(queue_counts "$ACCEPTD_URL" busy)"
  wrk_run busy_submit "$ACCEPTD_URL" submit.lua "$ACCEPTD_PID" BENCH_SUBMIT_PATH="$BUSY_PATH"
  read -r q1 r1 s1 <<<"$(queue_counts "$ACCEPTD_URL" busy)"
  figure busy_jobs_run_per_s "$(awk -v a="$s0" -v b="$s1" -v d="$DURATION" 'BEGIN {printf "%.1f", (b - a) / d}')"
  figure busy_backlog_jobs "$((q1 + r1))"
  local busy nr
  busy=$(last_value busy_submit_rps)
  nr=$(last_value submit_rps)
  figure busy_over_submit "$(awk -v a="$busy" -v b="$nr" 'BEGIN {printf "%.4f", (b > 0 ? a / b : 0)}')"
  local batches ops
  read -r batches ops <<<"$(stop_acceptd)" || true
  if [ -n "${batches:-}" ] && [ "${batches:-0}" -gt 0 ]; then
    figure busy_ops_per_commit "$(awk -v o="$ops" -v b="$batches" 'BEGIN {printf "%.2f", o / b}')"
  fi
  ACCEPTD_PID=${saved[0]} ACCEPTD_URL=${saved[1]} ACCEPTD_PORT=${saved[2]} ACCEPTD_LOG=${saved[3]}
  log "  busy ran $(((s1 - s0) / DURATION)) jobs/s meanwhile; backlog at the end: $((q1 + r1)) jobs"
}

# --- description of the run --------------------------------------------------
commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | sed -n '1,1p')
hyper=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' | sed -n '1,1p')
mem_gib=$(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
store_fs=$(df -PT "$STORE_ROOT" | awk 'NR == 2 {print $2}')
store_dev=$(df -P "$STORE_ROOT" | awk 'NR == 2 {print $1}')
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta commit "$commit"
meta machine "$(nproc) cores ${cpu_model:-unknown CPU}${hyper:+ ($hyper VM)}, ${mem_gib} GiB RAM, Debian $(cat /etc/debian_version 2>/dev/null || echo ?), Linux $(uname -r), store on $store_fs ($store_dev)"
meta setup "server (acceptd with $SERVER_THREADS HTTP event loop(s), or nginx with $SERVER_THREADS worker(s)) pinned to CPU $SERVER_CPUS; wrk ($WRK_THREADS thread(s)) and acceptd_loadgen pinned to CPU $CLIENT_CPUS; loopback"
meta runs "$RUNS"
meta duration "$DURATION"
meta quick "$QUICK"
meta connections "$CONNS"
meta idle_conns "$IDLE_CONNS"
meta longpoll_waiters "$WAITERS"
meta longpoll_wait "$WAITER_WAIT"
meta wait_mode "$WAIT"
meta bulk_jobs "$BULK_JOBS"
meta loop_connections "$LOOP_CONNS"
meta lp_connections "$LP_CONNS"
meta busy_concurrency "${BENCH_BUSY_CONCURRENCY:-16}"
meta wrk "$(wrk -v 2>&1 | sed -n '1,1p')"
meta nginx "$(nginx -v 2>&1)"
note "The server and the load generator share this $(nproc)-core machine: the server under test (acceptd, and nginx for the ceiling, with the same pinning and as many workers as acceptd has event loops) runs on CPU $SERVER_CPUS, every client on CPU $CLIENT_CPUS, so neither steals the other's core. Server CPU is the server's CPU time during the run (100% = one core). Other CPU is what the rest of the machine used meanwhile (other processes, VM steal): above a few percent, the run was disturbed."
if [ "$PG" = 1 ]; then
  ensure_commands psql:postgresql-client-15
  [ -x /usr/lib/postgresql/15/bin/initdb ] || die "PostgreSQL 15 is not installed (scripts/install-deps.sh)"
  start_pg
  meta store "PostgreSQL $(pg_psql -tAc 'SHOW server_version') (throw-away cluster, fsync on, synchronous_commit on, pinned with the server)"
  note "Store: PostgreSQL (a throw-away local cluster from scripts/pg-cluster.sh: fsync on, synchronous_commit on, shared_buffers 64 MB), on the server's CPU $SERVER_CPUS with acceptd, over loopback TCP. SQLite's submits and polls (1b, 2b) are measured in the same run, interleaved, for the PostgreSQL / SQLite ratio."
  note "Durable submits: every counted response is a 202 sent after the job's PostgreSQL transaction committed (group commit). Submits use ?delay=100000 on the echo queue, so no job runs during figures 1, 2 and 5."
else
  meta store "SQLite"
fi
note "Durable submits: every counted response is a 202 sent after the job's SQLite transaction committed (WAL, synchronous=FULL, group commit). Submits use ?delay=100000 on the echo queue, so no job runs during figures 1, 2 and 5."
if [ "$WAIT" = poll ]; then
  waiting="tight polling (BENCH_WAIT=poll): GET /v1/jobs/{id} back to back on the job's keep-alive connection, no ?wait="
else
  waiting="long-polling (BENCH_WAIT=$WAIT): GET /v1/jobs/{id}?wait=${WAIT#longpoll:} on the job's keep-alive connection, repeated while the answer is 202; the server answers when the job's completion commits"
fi
note "Figures 3 and 4 see a job's completion by $waiting. Latency runs from each job's scheduled start in an open loop (no coordinated omission); figure 4 is a closed loop of $LOOP_CONNS clients, each submitting its next job once it saw the last one succeed."
note "Busy submits (1c.): each run on a fresh acceptd and store, right after a not-running submit run (1.): wrk posts the same body to /v1/queues/busy/jobs without ?delay, and the busy queue (echo, concurrency ${BENCH_BUSY_CONCURRENCY:-16}, max_depth 100,000,000 so no submit is refused) runs the jobs meanwhile; only 202s count. The ratio is each busy run over the not-running run before it."
note "Round trip (4b.): a closed loop of $LP_CONNS clients, each submitting an echo job, waiting as in 4. until it succeeded, then the next; p50/p99 of submit -> seen succeeded."
note "End-to-end latency (3.): $RUNS runs of ${E2E_DURATION} s each (BENCH_E2E_DURATION); p99 and p99.9 of every run are listed under the table. Jobs slower than ${SLOW_MS} ms are listed with wall-clock times in logs/e2e-slow-RUN.txt, to match against the server's logs."
[ "$UNPINNED" = 1 ] && note "Nothing pinned (6b.): acceptd, nginx, wrk and acceptd_loadgen started without taskset (every core), with the same thread counts and connections as 1., 2. and 6., on a fresh store."
note "wrk's response() hook (202 count, id sample) runs in the acceptd and the nginx submit runs alike, so both pay the same client cost. nginx answers every request with a fixed 385-byte acceptd-shaped JSON document, a Location and a Retry-After header."
log "work dir $WORK; stores on $store_fs ($store_dev); ulimit -n $(ulimit -n)"
loadgen fsync --dir "$STORE_ROOT" --seconds 2 --out "$RAW"

# --- 6. the ceiling: nginx, up for the interleaved runs below ---------------------
start_nginx
log "nginx on $NGINX_URL, acceptd config: $WORK/acceptd.toml"

# --- 1. durable submits (interleaved with nginx: the machine's load drifts) ----------
if [ "$PG" = 1 ]; then  # SQLite in the same run, for the ratio (1b.)
  start_acceptd sqsubmit "$STORE_ROOT/sq" sqlite
  SQ_PID=$ACCEPTD_PID SQ_URL=$ACCEPTD_URL
fi
start_acceptd submit "$STORE_ROOT/a"
log "1. durable submits/s vs nginx: warm-up ${WARMUP}s, then $RUNS x ${DURATION}s each"
wrk_warmup "$ACCEPTD_URL" submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
[ "$PG" = 1 ] && wrk_warmup "$SQ_URL" submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
wrk_warmup "$NGINX_URL" submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
SUBMIT_IDS="$WORK/submit-ids.txt"
: >"$SUBMIT_IDS"
for ((r = 1; r <= RUNS; r++)); do
  wrk_run submit "$ACCEPTD_URL" submit.lua "$ACCEPTD_PID" BENCH_SUBMIT_PATH="$SUBMIT_PATH" \
    BENCH_IDS_OUT="$SUBMIT_IDS" BENCH_IDS_KEEP=$(((100 + RUNS - 1) / RUNS))
  busy_run "$r"
  if [ "$PG" = 1 ]; then
    wrk_run sqlite_submit "$SQ_URL" submit.lua "$SQ_PID" BENCH_SUBMIT_PATH="$SUBMIT_PATH"
  fi
  wrk_run nginx_submit "$NGINX_URL" submit.lua "$NGINX_PID" BENCH_SUBMIT_PATH="$SUBMIT_PATH"
done
check_runs_clean submit "every response 202"
if [ "$PG" = 1 ]; then
  check_runs_clean sqlite_submit "every response 202"
  stop_pid "$SQ_PID" 30
fi
check_runs_clean nginx_submit "every response 202"
check_runs_clean busy_submit "every response 202 (none refused at max_depth)"
loadgen check --target "127.0.0.1:$ACCEPTD_PORT" --ids "$SUBMIT_IDS" --name submit_ids_exist \
  --out "$RAW" || true
read -r batches ops <<<"$(stop_acceptd)" || true
if [ -n "${batches:-}" ] && [ "${batches:-0}" -gt 0 ]; then
  figure submit_jobs_per_commit "$(awk -v o="$ops" -v b="$batches" 'BEGIN {printf "%.2f", o / b}')"
fi

# --- 2. status polls over 10,000 existing jobs ------------------------------------
start_acceptd poll "$STORE_ROOT/a"  # the same store, reopened
loadgen check --target "127.0.0.1:$ACCEPTD_PORT" --ids "$SUBMIT_IDS" \
  --name submit_ids_exist_after_restart --out "$RAW" || true
POLL_IDS="$WORK/poll-ids.txt"
log "2. creating $POLL_JOBS jobs for the poll set"
loadgen submit --target "127.0.0.1:$ACCEPTD_PORT" --path "$SUBMIT_PATH" --count "$POLL_JOBS" \
  --connections "$CONNS" --ids-out "$POLL_IDS" --figure poll_set_submit_rps --out "$RAW" ||
  die "could not create the poll set"
if [ "$PG" = 1 ]; then  # SQLite in the same run (2b.): its own poll set
  P_PID=$ACCEPTD_PID P_URL=$ACCEPTD_URL P_PORT=$ACCEPTD_PORT P_LOG=$ACCEPTD_LOG
  start_acceptd sqpoll "$STORE_ROOT/sq" sqlite
  SQ_PID=$ACCEPTD_PID SQ_URL=$ACCEPTD_URL
  SQ_POLL_IDS="$WORK/sq-poll-ids.txt"
  loadgen submit --target "127.0.0.1:$ACCEPTD_PORT" --path "$SUBMIT_PATH" --count "$POLL_JOBS" \
    --connections "$CONNS" --ids-out "$SQ_POLL_IDS" --figure sqlite_poll_set_submit_rps \
    --out "$RAW" || die "could not create the SQLite poll set"
  ACCEPTD_PID=$P_PID ACCEPTD_URL=$P_URL ACCEPTD_PORT=$P_PORT ACCEPTD_LOG=$P_LOG
  wrk_warmup "$SQ_URL" poll.lua BENCH_IDS_FILE="$SQ_POLL_IDS"
fi
log "2. status polls/s vs nginx: $RUNS x ${DURATION}s each"
wrk_warmup "$ACCEPTD_URL" poll.lua BENCH_IDS_FILE="$POLL_IDS"
wrk_warmup "$NGINX_URL" poll.lua BENCH_IDS_FILE="$POLL_IDS"
for ((r = 1; r <= RUNS; r++)); do
  wrk_run poll "$ACCEPTD_URL" poll.lua "$ACCEPTD_PID" BENCH_IDS_FILE="$POLL_IDS"
  if [ "$PG" = 1 ]; then
    wrk_run sqlite_poll "$SQ_URL" poll.lua "$SQ_PID" BENCH_IDS_FILE="$SQ_POLL_IDS"
  fi
  wrk_run nginx_poll "$NGINX_URL" poll.lua "$NGINX_PID" BENCH_IDS_FILE="$POLL_IDS"
done
check_runs_clean poll "every response 2xx/3xx"
if [ "$PG" = 1 ]; then
  check_runs_clean sqlite_poll "every response 2xx/3xx"
  stop_pid "$SQ_PID" 30
fi
check_runs_clean nginx_poll "every response 2xx/3xx"
stop_nginx

# A crash right after the load: every sampled 202 must still be there.
kill9_acceptd
start_acceptd crash "$STORE_ROOT/a"
head -100 "$POLL_IDS" | cat "$SUBMIT_IDS" - >"$WORK/crash-ids.txt"
loadgen check --target "127.0.0.1:$ACCEPTD_PORT" --ids "$WORK/crash-ids.txt" \
  --name accepted_ids_exist_after_kill9 --out "$RAW" || true
stop_acceptd >/dev/null

# --- 6b. the same ceilings and loads, nothing pinned ---------------------------------
# Server and load may use every core, as the scheduler likes: the same
# processes, thread counts and connections as 1., 2. and 6., without taskset.
if [ "$UNPINNED" = 1 ]; then
  ALL_CPUS="0-$(($(nproc) - 1))"
  PINNED_SERVER_CPUS=$SERVER_CPUS PINNED_CLIENT_CPUS=$CLIENT_CPUS
  SERVER_CPUS=$ALL_CPUS CLIENT_CPUS=$ALL_CPUS
  [ "$PG" = 1 ] && pin_pg "$ALL_CPUS"
  log "6b. unpinned: submits, polls and nginx on CPUs $ALL_CPUS: $RUNS x ${DURATION}s each"
  start_nginx
  start_acceptd unpinned "$STORE_ROOT/u"
  wrk_warmup "$ACCEPTD_URL" submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
  wrk_warmup "$NGINX_URL" submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"
  for ((r = 1; r <= RUNS; r++)); do
    wrk_run unpinned_submit "$ACCEPTD_URL" submit.lua "$ACCEPTD_PID" BENCH_SUBMIT_PATH="$SUBMIT_PATH"
    wrk_run unpinned_nginx_submit "$NGINX_URL" submit.lua "$NGINX_PID" BENCH_SUBMIT_PATH="$SUBMIT_PATH"
  done
  U_POLL_IDS="$WORK/unpinned-poll-ids.txt"
  loadgen submit --target "127.0.0.1:$ACCEPTD_PORT" --path "$SUBMIT_PATH" --count "$POLL_JOBS" \
    --connections "$CONNS" --ids-out "$U_POLL_IDS" --figure unpinned_poll_set_submit_rps \
    --out "$RAW" || die "could not create the unpinned poll set"
  wrk_warmup "$ACCEPTD_URL" poll.lua BENCH_IDS_FILE="$U_POLL_IDS"
  for ((r = 1; r <= RUNS; r++)); do
    wrk_run unpinned_poll "$ACCEPTD_URL" poll.lua "$ACCEPTD_PID" BENCH_IDS_FILE="$U_POLL_IDS"
    wrk_run unpinned_nginx_poll "$NGINX_URL" poll.lua "$NGINX_PID" BENCH_IDS_FILE="$U_POLL_IDS"
  done
  check_runs_clean unpinned_submit "every response 202"
  check_runs_clean unpinned_nginx_submit "every response 202"
  check_runs_clean unpinned_poll "every response 2xx/3xx"
  check_runs_clean unpinned_nginx_poll "every response 2xx/3xx"
  stop_acceptd >/dev/null
  stop_nginx
  SERVER_CPUS=$PINNED_SERVER_CPUS CLIENT_CPUS=$PINNED_CLIENT_CPUS
  [ "$PG" = 1 ] && pin_pg "$SERVER_CPUS"
fi

# --- 4. the whole loop, then 3. latency at half of it -----------------------------------
start_acceptd loop "$STORE_ROOT/b"
log "4. whole loop (submit, run, see it succeeded) with $LOOP_CONNS clients: $RUNS x ${DURATION}s"
loadgen loop --target "127.0.0.1:$ACCEPTD_PORT" --connections "$LOOP_CONNS" --duration "$WARMUP" \
  --warmup 0 --wait "$WAIT" --out /dev/null >/dev/null || true
loop_values=()
loop_errors=0
for ((r = 1; r <= RUNS; r++)); do
  child_cpu
  c0=$CHILD_CPU_S
  t0=$(cpu_ticks "$ACCEPTD_PID")
  b0=$(machine_busy_ticks)
  s0=$(now)
  line=$(loadgen loop --target "127.0.0.1:$ACCEPTD_PORT" --connections "$LOOP_CONNS" \
    --duration "$DURATION" --warmup 1 --wait "$WAIT") || loop_errors=$((loop_errors + 1))
  s1=$(now)
  b1=$(machine_busy_ticks)
  t1=$(cpu_ticks "$ACCEPTD_PID")
  child_cpu
  c1=$CHILD_CPU_S
  emit "$line"
  server_cpu loop "$((t1 - t0))" "$s0" "$s1"
  other_cpu loop "$b0" "$b1" "$((t1 - t0))" "$c0" "$c1" "$s0" "$s1"
  loop_values+=("$(printf '%s' "$line" | value_of)")
  log "  loop: $(printf '%s' "$line" | value_of | int_of) jobs/s"
done
if [ "$loop_errors" -eq 0 ]; then
  check loop_jobs_all_succeeded true "every job of every loop run succeeded"
else
  check loop_jobs_all_succeeded false "$loop_errors runs had failed jobs (see logs)"
fi

# 4b. The same loop with fewer clients (16 by default): the round trip of one
# job, submit -> seen succeeded, when the server is not saturated.
log "4b. long-polled round trip with $LP_CONNS clients: $RUNS x ${DURATION}s"
lp_errors=0
for ((r = 1; r <= RUNS; r++)); do
  child_cpu
  c0=$CHILD_CPU_S
  t0=$(cpu_ticks "$ACCEPTD_PID")
  b0=$(machine_busy_ticks)
  s0=$(now)
  line=$(loadgen loop --target "127.0.0.1:$ACCEPTD_PORT" --connections "$LP_CONNS" \
    --duration "$DURATION" --warmup 1 --wait "$WAIT" --figure lp_loop --latency-figures 1) ||
    lp_errors=$((lp_errors + 1))
  s1=$(now)
  b1=$(machine_busy_ticks)
  t1=$(cpu_ticks "$ACCEPTD_PID")
  child_cpu
  c1=$CHILD_CPU_S
  emit "$line"
  server_cpu lp_loop "$((t1 - t0))" "$s0" "$s1"
  other_cpu lp_loop "$b0" "$b1" "$((t1 - t0))" "$c0" "$c1" "$s0" "$s1"
  log "  $LP_CONNS clients: $(printf '%s' "$line" | value_of | int_of) jobs/s, p50 $(printf '%s\n' "$line" | grep lp_loop_p50 | value_of | ms2) ms, p99 $(printf '%s\n' "$line" | grep lp_loop_p99 | value_of | ms2) ms"
done
if [ "$lp_errors" -eq 0 ]; then
  check lp_loop_jobs_all_succeeded true "every job of every $LP_CONNS-client loop run succeeded"
else
  check lp_loop_jobs_all_succeeded false "$lp_errors runs had failed jobs (see logs)"
fi

loop_max=$(printf '%s\n' "${loop_values[@]}" | median)
rate=$(awk -v m="$loop_max" 'BEGIN {r = m / 2; if (r < 1) r = 1; printf "%.1f", r}')
meta e2e_target_rate "$rate"
meta e2e_duration "$E2E_DURATION"
log "3. end-to-end latency at $rate jobs/s (50% of $(echo "$loop_max" | int_of)): $RUNS x ${E2E_DURATION}s"
lat_errors=0
for ((r = 1; r <= RUNS; r++)); do
  # Jobs slower than BENCH_SLOW_MS, with wall-clock times: logs/e2e-slow-RUN.txt
  loadgen latency --target "127.0.0.1:$ACCEPTD_PORT" --rate "$rate" --duration "$E2E_DURATION" \
    --warmup 1 --connections "$CONNS" --wait "$WAIT" --out "$RAW" \
    --slow-ms "$SLOW_MS" --slow-out "$WORK/e2e-slow-$r.txt" || lat_errors=$((lat_errors + 1))
  log "  run $r: p50 $(last_value e2e_p50_ms | ms2) ms, p99 $(last_value e2e_p99_ms | ms2) ms, p99.9 $(last_value e2e_p999_ms | ms2) ms"
done
if [ "$lat_errors" -eq 0 ]; then
  check latency_jobs_all_succeeded true "every job of every latency run succeeded"
else
  check latency_jobs_all_succeeded false "$lat_errors runs had failed or unfinished jobs"
fi
stop_acceptd >/dev/null

# --- 7. two nodes on one PostgreSQL database ----------------------------------------
# Everything unpinned on every core: two acceptd nodes, PostgreSQL and the
# clients share the machine. Each load is split over the two nodes (two wrk /
# loadgen processes, half the connections each); figures are their sums.
# two_wrk FIGURE SCRIPT ENV...: one measured run against both nodes at once.
two_wrk() {
  local fig=$1 script=$2
  shift 2
  local half=$(((CONNS + 1) / 2)) n pids=()
  for n in a b; do
    : >"$WORK/two-$n.jsonl"
    local port_var="TWO_${n^^}_URL"
    env BENCH_LUA_DIR="$LUA_DIR" BENCH_FIGURE="$fig" BENCH_OUT="$WORK/two-$n.jsonl" "$@" \
      wrk -t1 -c"$half" -d"${DURATION}s" --timeout 10s -s "$LUA_DIR/$script" "${!port_var}" \
      >>"$WORK/wrk.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || die "wrk failed (see $WORK/wrk.log)"
  local sum
  sum=$(cat "$WORK/two-a.jsonl" "$WORK/two-b.jsonl" | grep "\"figure\":\"${fig}_rps\"" | value_of_all |
    awk '{s += $1} END {printf "%.3f", s}')
  emit "{\"figure\":\"${fig}_rps\",\"value\":$sum,\"nodes\":2}"
  log "  $fig: $(echo "$sum" | int_of)/s (two nodes)"
}
value_of_all() { grep -o '"value":[-0-9.eE+]*' | cut -d: -f2; }
if [ "$PG" = 1 ]; then
  ALL_CPUS="0-$(($(nproc) - 1))"
  pin_pg "$ALL_CPUS"
  start_acceptd two_a "$STORE_ROOT/two" postgres "$ALL_CPUS"
  TWO_A_PID=$ACCEPTD_PID TWO_A_URL=$ACCEPTD_URL TWO_A_PORT=$ACCEPTD_PORT
  start_acceptd two_b "$STORE_ROOT/two" postgres "$ALL_CPUS"
  TWO_B_PID=$ACCEPTD_PID TWO_B_URL=$ACCEPTD_URL TWO_B_PORT=$ACCEPTD_PORT
  log "7. two nodes on one database, unpinned: submits, polls, loop, latency ($RUNS x ${DURATION}s)"
  for ((r = 1; r <= RUNS; r++)); do two_wrk two_submit submit.lua BENCH_SUBMIT_PATH="$SUBMIT_PATH"; done
  TWO_POLL_IDS="$WORK/two-poll-ids.txt"
  loadgen_free() { "$LOADGEN" "$@"; }
  loadgen_free submit --target "127.0.0.1:$TWO_A_PORT" --path "$SUBMIT_PATH" --count "$POLL_JOBS" \
    --connections "$CONNS" --ids-out "$TWO_POLL_IDS" --figure two_poll_set_submit_rps --out "$RAW" ||
    die "could not create the two-node poll set"
  for ((r = 1; r <= RUNS; r++)); do two_wrk two_poll poll.lua BENCH_IDS_FILE="$TWO_POLL_IDS"; done
  two_loop=()
  for ((r = 1; r <= RUNS; r++)); do
    half=$(((LOOP_CONNS + 1) / 2))
    "$LOADGEN" loop --target "127.0.0.1:$TWO_A_PORT" --connections "$half" --duration "$DURATION" \
      --warmup 1 --wait "$WAIT" --out "$WORK/two-loop-a.jsonl" &
    la=$!
    "$LOADGEN" loop --target "127.0.0.1:$TWO_B_PORT" --connections "$half" --duration "$DURATION" \
      --warmup 1 --wait "$WAIT" --out "$WORK/two-loop-b.jsonl" &
    lb=$!
    wait "$la" "$lb" || check two_loop_jobs_all_succeeded false "run $r had failed jobs"
    sum=$(cat "$WORK/two-loop-a.jsonl" "$WORK/two-loop-b.jsonl" | value_of_all | awk '{s += $1} END {printf "%.3f", s}')
    rm -f "$WORK/two-loop-a.jsonl" "$WORK/two-loop-b.jsonl"
    emit "{\"figure\":\"two_loop_jobs_per_s\",\"value\":$sum,\"nodes\":2}"
    two_loop+=("$sum")
    log "  two_loop: $(echo "$sum" | int_of) jobs/s"
  done
  two_max=$(printf '%s\n' "${two_loop[@]}" | median)
  two_rate=$(awk -v m="$two_max" 'BEGIN {r = m / 2; if (r < 1) r = 1; printf "%.1f", r}')
  meta two_e2e_rate "$two_rate"
  log "7. end-to-end latency at $two_rate jobs/s, submitted to node A, long-polled on node B"
  for ((r = 1; r <= RUNS; r++)); do
    "$LOADGEN" latency --target "127.0.0.1:$TWO_A_PORT" --wait-target "127.0.0.1:$TWO_B_PORT" \
      --rate "$two_rate" --duration "$DURATION" --warmup 1 --connections "$CONNS" --wait "$WAIT" \
      --figure xnode --out "$RAW" || check xnode_jobs_all_succeeded false "run $r had failed jobs"
  done
  # The wake-up itself, on idle nodes: 20 jobs/s submitted to A, each
  # long-polled on B (the job runs on A or B: either way a NOTIFY carries
  # the submit or the completion across) and, for reference, on A.
  log "7. cross-node wake-up at 20 jobs/s: long-poll on the other node vs the same node"
  for ((r = 1; r <= RUNS; r++)); do
    "$LOADGEN" latency --target "127.0.0.1:$TWO_A_PORT" --wait-target "127.0.0.1:$TWO_B_PORT" \
      --rate 20 --duration "$DURATION" --warmup 1 --connections 4 --wait "$WAIT" \
      --figure xnode_idle --out "$RAW" || true
    "$LOADGEN" latency --target "127.0.0.1:$TWO_A_PORT" --rate 20 --duration "$DURATION" \
      --warmup 1 --connections 4 --wait "$WAIT" --figure samenode_idle --out "$RAW" || true
  done
  stop_pid "$TWO_A_PID" 30
  stop_pid "$TWO_B_PID" 30
  pin_pg "$SERVER_CPUS"
fi

# --- 5. memory ------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  log "5. 1,000,000 queued jobs: skipped (quick)"
  note "QUICK run: the 1,000,000-queued-jobs memory test was skipped."
else
  start_acceptd memory "$STORE_ROOT/c"
  rss0=$(rss_bytes "$ACCEPTD_PID")
  bytes0=$(store_bytes "$STORE_ROOT/c")
  log "5. bulk-loading $BULK_JOBS jobs (100-byte payloads, not run)"
  if loadgen submit --target "127.0.0.1:$ACCEPTD_PORT" --path "$SUBMIT_PATH" --count "$BULK_JOBS" \
    --connections 256 --pipeline 4 --ids-out "$WORK/bulk-ids.txt" --ids-keep 100 --out "$RAW"; then
    sleep 2
    rss1=$(rss_bytes "$ACCEPTD_PID")
    bytes1=$(store_bytes "$STORE_ROOT/c")
    figure mem_rss_bytes "$rss1"
    figure mem_rss_bytes_per_job "$(awk -v a="$rss0" -v b="$rss1" -v n="$BULK_JOBS" 'BEGIN {printf "%.2f", (b - a) / n}')"
    figure mem_store_bytes_per_job "$(awk -v a="$bytes0" -v b="$bytes1" -v n="$BULK_JOBS" 'BEGIN {printf "%.2f", (b - a) / n}')"
    log "  RSS $((rss0 / 1048576)) -> $((rss1 / 1048576)) MiB, store $((bytes0 / 1048576)) -> $((bytes1 / 1048576)) MiB"
    loadgen check --target "127.0.0.1:$ACCEPTD_PORT" --ids "$WORK/bulk-ids.txt" \
      --name bulk_ids_exist --out "$RAW" || true
  else
    check bulk_load false "the bulk load of $BULK_JOBS jobs had errors"
  fi
  stop_acceptd >/dev/null
fi

# Every waiter and idle connection is a descriptor in acceptd and in the
# client: bench_init raised the soft limit (ulimit -n) as far as allowed.
need_fds=$(((WAITERS > IDLE_CONNS ? WAITERS : IDLE_CONNS) + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
  log "WARNING: ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)), below the $need_fds descriptors needed"
fi

log "5. RSS with $WAITERS long-poll waiters (GET /v1/jobs/{id}?wait=$WAITER_WAIT on $WAITER_JOBS delayed jobs): $RUNS runs"
note "Long-poll waiters (figure 5): on a fresh acceptd, $WAITER_JOBS jobs are submitted with ?delay=600 (they stay queued), then $WAITERS keep-alive connections each send GET /v1/jobs/{id}?wait=$WAITER_WAIT (ids round-robin; max_wait = 60). The RSS is read once the server has read every request (as many established server-side sockets as waiters, none with unread bytes, in /proc/net/tcp) plus 1 s, while every request is still held: a response of any kind before the reading fails the check. The baseline is the idle server's RSS after the submits. Target: <= 200 MiB with 10,000 waiters."
waiter_errors=0
for ((r = 1; r <= RUNS; r++)); do
  start_acceptd "waiters$r" "$STORE_ROOT/waiters$r"
  loadgen waiters --target "127.0.0.1:$ACCEPTD_PORT" --connections "$WAITERS" --pid "$ACCEPTD_PID" \
    --jobs "$WAITER_JOBS" --wait "$WAITER_WAIT" --out "$RAW" || waiter_errors=$((waiter_errors + 1))
  stop_acceptd >/dev/null
done
if [ "$waiter_errors" -eq 0 ]; then
  check longpoll_waiters_in_flight true "$WAITERS long-polls opened and held in each run, none answered (nor failed) before the RSS reading"
else
  check longpoll_waiters_in_flight false "$waiter_errors runs had a waiter that failed to open, was answered early, or was not seen in flight (ulimit -n is $(ulimit -n); see the figure's detail in latest.json)"
fi

log "5. RSS with $IDLE_CONNS idle keep-alive connections (secondary: no request pending): $RUNS runs"
idle_errors=0
for ((r = 1; r <= RUNS; r++)); do
  start_acceptd "idle$r" "$STORE_ROOT/idle$r"
  loadgen idle --target "127.0.0.1:$ACCEPTD_PORT" --connections "$IDLE_CONNS" --pid "$ACCEPTD_PID" \
    --out "$RAW" || idle_errors=$((idle_errors + 1))
  stop_acceptd >/dev/null
done
if [ "$idle_errors" -eq 0 ]; then
  check idle_connections_opened true "$IDLE_CONNS connections opened and served in each run"
else
  check idle_connections_opened false "$idle_errors runs could not open all $IDLE_CONNS connections (ulimit -n is $(ulimit -n))"
fi

# --- report ---------------------------------------------------------------------
elapsed=$(($(date +%s) - SUITE_START))
meta elapsed_seconds "$elapsed"
mkdir -p "$RESULTS/logs"
cp "$RAW" "$RESULTS/latest.raw.jsonl"
rm -f "$RESULTS"/logs/e2e-slow-*.txt
cp "$WORK"/acceptd-*.log "$WORK/wrk.log" "$WORK"/e2e-slow-*.txt "$RESULTS/logs/" 2>/dev/null || true
report_rc=0
"$LOADGEN" report --in "$RAW" --json "$RESULTS/latest.json" --markdown "$RESULTS/latest.md" ||
  report_rc=$?
log "suite took ${elapsed}s; results: $RESULTS/latest.md and $RESULTS/latest.json"
if [ "$report_rc" -ne 0 ]; then
  log "some checks FAILED (see above)"
  exit 1
fi
