#!/usr/bin/env bash
# Worker benchmarks (bench/README.md, "Workers"): the whole loop of a job
# (submit, run, see it succeeded: acceptd_loadgen loop, 64 clients, long-poll)
# through each way of running work, in the same run, on a fresh store each:
#   echo        the in-process echo handler: the reference
#   external    an external queue: no-op jobs leased and completed over HTTP
#               by 16, then 64 workers (acceptd_loadgen loop --lease-workers)
#   exec        handler = "exec" running /bin/true for every job; once with
#               the server (and the commands it starts) on CPU 0 like every
#               other figure, once on both CPUs (exec2: spawning is the cost,
#               and a second core is what the target's machine has)
#   http        handler = "http" forwarding every job to nginx `return 200`
# It prints a table with each figure's ratio to echo and the targets, and
# writes bench/results/workers.md (+ workers.raw.jsonl, logs/).
#
#   bench/workers.sh            3 runs x 10 s per figure (~4 minutes + build)
#   bench/workers.sh --quick    1 run x 3 s
#
# Options (flags or environment): --duration N (BENCH_DURATION, 10),
# --runs N (BENCH_RUNS, 3), --quick, --no-build, --keep; BENCH_WARMUP (2),
# BENCH_LOOP_CONNECTIONS (64), BENCH_EXEC_CONCURRENCY (64),
# BENCH_SERVER_CPUS (0), BENCH_CLIENT_CPUS (1), BENCH_SERVER_THREADS (1).
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
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "workers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
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
LOOP_CONNS=${BENCH_LOOP_CONNECTIONS:-64}
EXEC_CONCURRENCY=${BENCH_EXEC_CONCURRENCY:-64}
FIGURES=(echo external16 external64 exec exec2 http)

ensure_commands nginx:nginx-light taskset:util-linux
bench_init
if [ "$NO_BUILD" = 1 ]; then
  if [ ! -x "$ACCEPTD" ] || [ ! -x "$LOADGEN" ]; then die "--no-build: no binaries in $BUILD_DIR"; fi
else
  ensure_build_tools
  build_release
fi
RAW="$WORK/workers.raw.jsonl"
: >"$RAW"
loadgen() { taskset -c "$CLIENT_CPUS" "$LOADGEN" "$@"; }
value_of() { awk 'match($0, /"value":[-0-9.eE+]+/) {print substr($0, RSTART + 8, RLENGTH - 8); exit}'; }
# One number per line from a space-separated list.
each() { tr ' ' '\n' <<<"$1" | sed '/^$/d'; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) exit 1; print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

# --- the backend of the http figure: nginx `return 200`, on the client CPU ---
# (it stands for a service on another machine: acceptd's core is not shared).
start_backend() {
  local prefix="$WORK/backend" user_line=""
  mkdir -p "$prefix/tmp"
  BACKEND_PORT=$("$LOADGEN" freeport)
  if [ "$(id -u)" -eq 0 ]; then user_line="user $(id -un) $(id -gn);"; fi
  cat >"$prefix/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
master_process on;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$BACKEND_PORT;
    location / {
      default_type application/json;
      return 200 '{"ok":true}';
    }
  }
}
EOF
  taskset -c "$CLIENT_CPUS" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
    >>"$prefix/stdout.log" 2>&1 &
  BACKEND_PID=$!
  STARTED_PIDS+=("$BACKEND_PID")
  "$LOADGEN" waitready --target "127.0.0.1:$BACKEND_PORT" --path / --expect 200 --timeout 20 ||
    die "nginx (the http backend) did not start: $(cat "$prefix/error.log")"
}

# The config of one figure: only its queue.
write_config() {
  local fig=$1 queue
  case "$fig" in
    echo) queue=$'[queues.echo]\nhandler = "echo"\nconcurrency = 64' ;;
    external*) queue=$'[queues.external]\nhandler = "external"' ;;
    exec*) queue=$'[queues.exec]\nhandler = "exec"\ncommand = ["/bin/true"]\nconcurrency = '"$EXEC_CONCURRENCY" ;;
    http) queue=$'[queues.http]\nhandler = "http"\nurl = "http://127.0.0.1:'"$BACKEND_PORT"$'/"\nconcurrency = 64' ;;
  esac
  cat >"$WORK/acceptd.toml" <<EOF
[server]
threads = $SERVER_THREADS
shutdown_grace = 5
max_wait = 60

[log]
level = "warn"

$queue
max_depth = 100000000
EOF
}

# Like start_acceptd (lib.sh), but a server that refuses its config (a
# handler kind this build lacks) is reported, not fatal: returns 1.
try_start_acceptd() {
  local name=$1 store=$2 cpus=${3:-$SERVER_CPUS}
  mkdir -p "$store"
  ACCEPTD_PORT=$("$LOADGEN" freeport)
  ACCEPTD_LOG="$WORK/acceptd-$name.log"
  taskset -c "$cpus" "$ACCEPTD" serve --config "$WORK/acceptd.toml" \
    --listen "127.0.0.1:$ACCEPTD_PORT" --store "sqlite:$store/acceptd.db" >>"$ACCEPTD_LOG" 2>&1 &
  ACCEPTD_PID=$!
  STARTED_PIDS+=("$ACCEPTD_PID")
  local i
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$ACCEPTD_PID" 2>/dev/null; then
      wait "$ACCEPTD_PID" 2>/dev/null || true
      forget_pid "$ACCEPTD_PID"
      return 1
    fi
    "$LOADGEN" waitready --target "127.0.0.1:$ACCEPTD_PORT" --timeout 0.1 >/dev/null 2>&1 && return 0
  done
  die "acceptd ($name) did not become ready: $(tail -5 "$ACCEPTD_LOG")"
}

# Server CPU ticks: the process, and the children it reaped (exec's commands).
server_ticks() {
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -r -a f <<<"${s##*) }"
  echo $((f[11] + f[12] + f[13] + f[14]))
}

declare -A VALUES CPU UNAVAILABLE
errors=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
start_backend
for ((r = 1; r <= RUNS; r++)); do
  for fig in "${FIGURES[@]}"; do
    write_config "$fig"
    cpus=$SERVER_CPUS
    [ "$fig" != exec2 ] || cpus="$SERVER_CPUS,$CLIENT_CPUS"
    if ! try_start_acceptd "$fig$r" "$STORE_ROOT/$fig$r" "$cpus"; then
      UNAVAILABLE[$fig]=$(grep -m1 -o "config key.*" "$ACCEPTD_LOG" || tail -1 "$ACCEPTD_LOG")
      log "$fig: acceptd refused the config: ${UNAVAILABLE[$fig]}"
      continue
    fi
    path="/v1/queues/$fig/jobs"
    extra=()
    case "$fig" in
      exec2) path=/v1/queues/exec/jobs ;;
      external*)
        path=/v1/queues/external/jobs
        extra=(--lease-workers "${fig#external}" --lease-queue external)
        ;;
    esac
    loadgen loop --target "127.0.0.1:$ACCEPTD_PORT" --path "$path" --connections "$LOOP_CONNS" \
      --duration "$WARMUP" --warmup 0 "${extra[@]}" --out /dev/null >/dev/null 2>&1 || true
    t0=$(date +%s.%N)
    s0=$(server_ticks "$ACCEPTD_PID")
    if ! line=$(loadgen loop --target "127.0.0.1:$ACCEPTD_PORT" --path "$path" \
      --connections "$LOOP_CONNS" --duration "$DURATION" --warmup 1 --figure "$fig" "${extra[@]}"); then
      errors=$((errors + 1))
      log "$fig: jobs failed: $line"
    fi
    s1=$(server_ticks "$ACCEPTD_PID")
    t1=$(date +%s.%N)
    stop_pid "$ACCEPTD_PID" 30
    printf '%s\n' "$line" >>"$RAW"
    v=$(printf '%s' "$line" | value_of)
    VALUES[$fig]="${VALUES[$fig]:-} $v"
    cpu=$(awk -v d="$((s1 - s0))" -v t="$t0" -v u="$t1" -v hz="$CLK_TCK" \
      'BEGIN {printf "%.0f", 100 * d / hz / (u - t)}')
    CPU[$fig]="${CPU[$fig]:-} $cpu"
    log "run $r/$RUNS $fig: $(printf '%.0f' "$v") jobs/s, server CPU $cpu%"
  done
done
stop_pid "$BACKEND_PID" 10

# --- table --------------------------------------------------------------------
describe() {
  case "$1" in
    echo) echo "in-process echo handler (reference)" ;;
    external16) echo "external queue, 16 workers (lease + complete over HTTP)" ;;
    external64) echo "external queue, 64 workers (lease + complete over HTTP)" ;;
    exec) echo "exec /bin/true (concurrency $EXEC_CONCURRENCY)" ;;
    exec2) echo "exec /bin/true, server on both CPUs (shared with the load generator)" ;;
    http) echo "http -> nginx return 200 (concurrency 64)" ;;
  esac
}
target() {
  case "$1" in
    external*) echo ">= 0.5x echo" ;;
    exec*) echo ">= 1,000 jobs/s" ;;
    http) echo ">= 0.5x echo" ;;
    *) echo "" ;;
  esac
}
echo_median=$(each "${VALUES[echo]:-}" | median || echo 0)
out="$RESULTS/workers.md"
mkdir -p "$RESULTS/logs"
{
  echo "- commit: \`$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)\`"
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); load average before the run: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores: above ~1 before, other work shared the machine)"
  echo "- machine: $(nproc) cores $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), Linux $(uname -r)"
  echo "- setup: acceptd ($SERVER_THREADS HTTP event loop) pinned to CPU $SERVER_CPUS (with the commands exec starts); acceptd_loadgen (64 clients, long-poll; and the external workers) and the nginx backend pinned to CPU $CLIENT_CPUS"
  echo "- runs: $RUNS x ${DURATION} s per figure, interleaved; median (min-max)"
  echo
  echo "| Loop (64 clients: submit, run, see it succeeded) | jobs/s | min | max | ÷ echo | target | server CPU |"
  echo "|---|---:|---:|---:|---:|---|---:|"
  for fig in "${FIGURES[@]}"; do
    if [ -z "${VALUES[$fig]:-}" ]; then
      echo "| $(describe "$fig") | n/a | | | | $(target "$fig") | ${UNAVAILABLE[$fig]:-not run} |"
      continue
    fi
    med=$(each "${VALUES[$fig]}" | median)
    lo=$(each "${VALUES[$fig]}" | sort -g | head -1)
    hi=$(each "${VALUES[$fig]}" | sort -g | tail -1)
    cpu=$(each "${CPU[$fig]}" | median)
    ratio=$(awk -v a="$med" -v b="$echo_median" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
    printf '| %s | %.0f | %.0f | %.0f | %s | %s | %.0f%% |\n' "$(describe "$fig")" "$med" "$lo" "$hi" \
      "$ratio" "$(target "$fig")" "$cpu"
  done
} >"$out"
cp "$RAW" "$RESULTS/workers.raw.jsonl"
cp "$WORK"/acceptd-*.log "$RESULTS/logs/" 2>/dev/null || true
cat "$out"
log "results: $out"
if [ "$errors" -gt 0 ]; then
  log "$errors runs had failed jobs (see $RESULTS/workers.raw.jsonl)"
  exit 1
fi
