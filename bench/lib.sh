# shellcheck shell=bash disable=SC2034
# Shared by bench/run.sh and bench/profile.sh (sourced, not run).
# Expects BENCH_DIR and ROOT to be set. Every process started here is
# recorded by PID and stopped by cleanup (installed as an EXIT trap by
# bench_init), so a failed or interrupted run leaves nothing behind.

# nginx lives in /usr/sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# --- options shared by both scripts -----------------------------------------
DURATION=${BENCH_DURATION:-10}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}
SERVER_THREADS=${BENCH_SERVER_THREADS:-1}
POLL_JOBS=${BENCH_POLL_JOBS:-10000}
BUILD_DIR=${BENCH_BUILD_DIR:-$ROOT/build-bench}
RESULTS=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}
SUBMIT_PATH=${BENCH_SUBMIT_PATH:-/v1/queues/echo/jobs?delay=100000}
STORE_KIND=${BENCH_STORE:-sqlite}  # or postgres (bench/run.sh --store)

ACCEPTD="$BUILD_DIR/acceptd"
LOADGEN="$BUILD_DIR/bench/acceptd_loadgen"
LUA_DIR="$BENCH_DIR/lua"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --- tools -------------------------------------------------------------------
# Installs the Debian packages providing the given commands (cmd:package ...)
# when a command is missing. Services that packages would start (nginx) are
# kept from starting while we install, with the usual policy-rc.d.
ensure_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt-get)"
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy" &&
      made_policy=1
  fi
  local rc=0
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >&2 || rc=$?
  [ "$made_policy" = 1 ] && $SUDO rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get install ${missing[*]} failed"
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || die "${pair%%:*} still missing after installing"
  done
}

ensure_build_tools() {
  if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null ||
    ! dpkg-query -W -f='${Status}' libboost1.81-dev 2>/dev/null | grep -q "ok installed"; then
    log "installing build dependencies (scripts/install-deps.sh)"
    bash "$ROOT/scripts/install-deps.sh" >&2
  fi
}

# build_release [EXTRA CMAKE ARGS...]
build_release() {
  log "building acceptd + acceptd_loadgen (Release) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DACCEPTD_TESTS=OFF \
    "$@" >"$WORK/cmake.log" 2>&1 || {
    cat "$WORK/cmake.log" >&2
    die "cmake failed"
  }
  ninja -C "$BUILD_DIR" -j "$(nproc)" acceptd acceptd_loadgen >"$WORK/build.log" 2>&1 || {
    tail -50 "$WORK/build.log" >&2
    die "build failed"
  }
  [ -x "$ACCEPTD" ] && [ -x "$LOADGEN" ] || die "build did not produce $ACCEPTD and $LOADGEN"
}

# --- process bookkeeping -----------------------------------------------------
STARTED_PIDS=()
WORK=""
KEEP_WORK=${BENCH_KEEP_WORK:-0}

forget_pid() {
  local p kept=()
  for p in "${STARTED_PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  STARTED_PIDS=("${kept[@]+"${kept[@]}"}")
}

# Stops one process we started: TERM, then KILL after a grace period.
stop_pid() {
  local pid=$1 grace=${2:-30} i
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  if [ "$rc" -ne 0 ] && [ ${#STARTED_PIDS[@]} -gt 0 ]; then
    log "exiting with status $rc: stopping the processes this run started"
  fi
  for p in "${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}"; do stop_pid "$p" 10; done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$KEEP_WORK" = 1 ]; then
      log "kept the work directory $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  if [ -n "${PG_DIR:-}" ]; then
    if [ "$KEEP_WORK" = 1 ]; then
      "$ROOT/scripts/pg-cluster.sh" crash "$PG_DIR" >/dev/null 2>&1 || true
    else
      "$ROOT/scripts/pg-cluster.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
    fi
  fi
  [ -n "${STORE_ROOT:-}" ] && [ "$KEEP_WORK" != 1 ] && rm -rf "$STORE_ROOT"
  exit "$rc"
}

bench_init() {
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/acceptd-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Stores go on a real disk: fsync on tmpfs would make "durable" free.
  local fs
  fs=$(stat -f -c %T "$WORK")
  if [ "$fs" = tmpfs ] || [ "$fs" = ramfs ]; then
    mkdir -p "$RESULTS"
    STORE_ROOT=$(mktemp -d "$RESULTS/store.XXXXXX")
  else
    STORE_ROOT="$WORK/stores"
    mkdir -p "$STORE_ROOT"
  fi
  # 10,000 long-poll waiters or idle connections need that many descriptors
  # in server and client: 65536 where allowed, else the hard limit.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# --- acceptd -----------------------------------------------------------------
# The benchmark's server config: one queue, echo, that runs jobs unless they
# are submitted with ?delay= (figure 1, 2 and 5 submit with delay=100000, so
# nothing runs during those measurements).
write_acceptd_config() {
  cat >"$WORK/acceptd.toml" <<EOF
[server]
threads = $SERVER_THREADS
shutdown_grace = 5
max_wait = 60      # long-polls: figures 3-4 wait 30 s per request, figure 5's waiters 60 s

[log]
level = "info"   # nothing per request; the shutdown line reports commit batches

[queues.echo]
handler = "echo"
concurrency = ${BENCH_ECHO_CONCURRENCY:-64}
max_depth = 100000000

# The busy-submit figure (1c.): its jobs run while more are submitted. A queue
# at max_depth answers 503 fast, so the depth limit must never be reached.
[queues.busy]
handler = "echo"
concurrency = ${BENCH_BUSY_CONCURRENCY:-16}
max_depth = 100000000
EOF
}

# --- PostgreSQL (bench/run.sh --store postgres) -----------------------------------
# start_pg: a throw-away PostgreSQL 15 cluster (scripts/pg-cluster.sh) under
# STORE_ROOT, on a real disk like the SQLite stores, pinned to the server's
# CPUs (its backends inherit the postmaster's affinity). Sets PG_DIR, PG_URL.
start_pg() {
  chmod o+x "$WORK" "$STORE_ROOT" "$(dirname "$STORE_ROOT")" 2>/dev/null || true
  PG_DIR="$STORE_ROOT/pg"
  PG_URL=$("$ROOT/scripts/pg-cluster.sh" start "$PG_DIR") || die "could not start PostgreSQL"
  pin_pg "$SERVER_CPUS"
}
# pin_pg CPUS: the postmaster and its running backends on CPUS.
pin_pg() {
  local pm p
  pm=$(head -1 "$PG_DIR/data/postmaster.pid")
  for p in "$pm" $(pgrep -P "$pm"); do taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true; done
}
pg_psql() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }
# pg_db_url NAME: the URI of database NAME, created if missing.
pg_db_url() {
  if [ -z "$(pg_psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]; then
    pg_psql -c "CREATE DATABASE $1" >/dev/null || die "could not create database $1"
  fi
  echo "${PG_URL%/postgres}/$1"
}
# store_url KIND STORE_DIR: the --store of a store named after STORE_DIR.
store_url() {
  if [ "$1" = postgres ]; then
    pg_db_url "bench_$(basename "$2" | tr -c 'a-zA-Z0-9_\n' _)"
  else
    mkdir -p "$2"
    echo "sqlite:$2/acceptd.db"
  fi
}

# start_acceptd NAME STORE_DIR [KIND] [CPUS]: sets ACCEPTD_PID, ACCEPTD_PORT,
# ACCEPTD_URL, ACCEPTD_LOG. KIND: sqlite or postgres (default $STORE_KIND);
# CPUS: default $SERVER_CPUS.
start_acceptd() {
  local name=$1 store=$2 kind=${3:-$STORE_KIND} cpus=${4:-$SERVER_CPUS} url
  url=$(store_url "$kind" "$store")
  ACCEPTD_PORT=$("$LOADGEN" freeport)
  ACCEPTD_LOG="$WORK/acceptd-$name.log"
  taskset -c "$cpus" "$ACCEPTD" serve --config "$WORK/acceptd.toml" \
    --listen "127.0.0.1:$ACCEPTD_PORT" --store "$url" >>"$ACCEPTD_LOG" 2>&1 &
  ACCEPTD_PID=$!
  STARTED_PIDS+=("$ACCEPTD_PID")
  ACCEPTD_URL="http://127.0.0.1:$ACCEPTD_PORT"
  if ! "$LOADGEN" waitready --target "127.0.0.1:$ACCEPTD_PORT" --timeout 60; then
    tail -20 "$ACCEPTD_LOG" >&2
    die "acceptd ($name) did not become ready"
  fi
}

# Graceful stop; prints "BATCHES OPERATIONS" from the engine's shutdown line.
stop_acceptd() {
  stop_pid "$ACCEPTD_PID" 30
  sed -n 's/.*engine stopped (batches=\([0-9]*\) operations=\([0-9]*\)).*/\1 \2/p' "$ACCEPTD_LOG" |
    tail -1
}

# A crash: SIGKILL, no shutdown at all.
kill9_acceptd() {
  kill -KILL "$ACCEPTD_PID" 2>/dev/null || true
  wait "$ACCEPTD_PID" 2>/dev/null || true
  forget_pid "$ACCEPTD_PID"
}

# --- nginx (the ceiling) -----------------------------------------------------
# Same pinning and as many worker processes as acceptd has event loops; runs
# as the current user with everything under a temp prefix, 127.0.0.1 only.
start_nginx() {
  local prefix="$WORK/nginx" user_line=""
  mkdir -p "$prefix/tmp"
  NGINX_PORT=$("$LOADGEN" freeport)
  if [ "$(id -u)" -eq 0 ]; then user_line="user $(id -un) $(id -gn);"; fi
  # The body is a real acceptd status document (same shape and size).
  local id=0123456789abcdef0123456789abcdef
  local doc='{"id":"'$id'","queue":"echo","state":"queued","created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","started_at":null,"finished_at":null,"attempts":0,"max_attempts":3,"priority":0,"progress":null,"status_url":"/v1/jobs/'$id'","cancel_requested":false,"run_at":"2026-01-02T00:00:00.000Z","expires_at":null}'
  cat >"$prefix/nginx.conf" <<EOF
$user_line
worker_processes $SERVER_THREADS;
daemon off;
master_process on;
pid $prefix/nginx.pid;
error_log $prefix/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
  access_log off;
  client_body_temp_path $prefix/tmp/body;
  proxy_temp_path $prefix/tmp/proxy;
  fastcgi_temp_path $prefix/tmp/fastcgi;
  uwsgi_temp_path $prefix/tmp/uwsgi;
  scgi_temp_path $prefix/tmp/scgi;
  keepalive_requests 1000000000;   # acceptd never closes a keep-alive connection either
  keepalive_timeout 75s;
  server_tokens off;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      default_type application/json;
      add_header Location /v1/jobs/$id always;
      add_header Retry-After 1 always;
      return 202 '$doc';
    }
  }
}
EOF
  taskset -c "$SERVER_CPUS" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
    >>"$prefix/stdout.log" 2>&1 &
  NGINX_PID=$!
  STARTED_PIDS+=("$NGINX_PID")
  NGINX_URL="http://127.0.0.1:$NGINX_PORT"
  if ! "$LOADGEN" waitready --target "127.0.0.1:$NGINX_PORT" --path / --expect 202 --timeout 20; then
    cat "$prefix/error.log" >&2
    die "nginx did not start"
  fi
}

stop_nginx() {
  [ -n "${NGINX_PID:-}" ] && stop_pid "$NGINX_PID" 10
  NGINX_PID=""
}

# PIDs whose CPU time counts as "the server": the process and its children
# (nginx's workers), on one line.
server_pids() {
  local pid=$1 d s f list=$1
  for d in /proc/[0-9]*; do
    s=$(cat "$d/stat" 2>/dev/null) || continue
    read -r -a f <<<"${s##*) }"
    if [ "${f[1]}" = "$pid" ]; then list="$list ${d#/proc/}"; fi
  done
  echo "$list"
}

# Sum of user+system clock ticks of the given processes (all their threads).
cpu_ticks() {
  local total=0 p s f
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    read -r -a f <<<"${s##*) }"  # f[0] is field 3 (state): utime is 14, stime 15
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

now() { date +%s.%N; }
