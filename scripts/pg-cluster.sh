#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster for tests, in a directory of its own.
#
#   scripts/pg-cluster.sh start DIR   creates the cluster in DIR (made if missing) on a free
#                                     loopback port and prints the libpq URI of its `postgres`
#                                     database; on a cluster made before (and stopped by `crash`),
#                                     starts it again on its old port and prints the same URI
#   scripts/pg-cluster.sh url DIR     prints that URI again
#   scripts/pg-cluster.sh crash DIR   stops the server as a crash would (pg_ctl stop -m immediate:
#                                     no checkpoint, recovery on the next start); keeps DIR
#   scripts/pg-cluster.sh stop DIR    stops the server (-m fast) and removes DIR; does nothing if
#                                     DIR is gone
#
# The server listens on 127.0.0.1 only (and a unix socket in DIR), trusts every local connection
# (superuser `postgres`, no password), keeps fsync on (acceptd refuses to run without it) and
# allows 500 connections (parallel tests x nodes x pool size). Run as root (CI), the server runs
# as the `postgres` user and DIR is handed to it; run as anyone else, it runs as that user.
# Binaries: /usr/lib/postgresql/15/bin (Debian's postgresql-15), or PG_BINDIR.
set -euo pipefail

BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

usage() {
  echo "usage: $0 start|url|crash|stop DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
if [ -d "$dir" ]; then dir=$(cd "$dir" && pwd); fi

# Runs a PostgreSQL binary as the user that owns the cluster, from a directory it can read.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

url() {
  local port
  port=$(cat "$dir/port")
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
}

# A port nobody listens on right now (a race with other processes is caught by the caller,
# which tries another port when the server cannot bind).
pick_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  echo "$0: no free port found" >&2
  exit 1
}

start_server() {
  # -w: return once the server accepts connections; -t: at most 60 s for that.
  as_owner "$BINDIR/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
    -o "-p $(cat "$dir/port")" >/dev/null
}

case "$cmd" in
  start)
    [ -x "$BINDIR/initdb" ] || {
      echo "$0: no PostgreSQL 15 in $BINDIR (install postgresql-15, or set PG_BINDIR)" >&2
      exit 1
    }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$dir"
      runuser -u postgres -- test -x "$dir" || {
        echo "$0: the postgres user cannot reach $dir: give its parent directories o+x" >&2
        exit 1
      }
    fi
    if [ -f "$dir/data/PG_VERSION" ]; then
      start_server
      url
      exit 0
    fi
    as_owner "$BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/pg-cluster.sh: a throw-away test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 500
fsync = on
synchronous_commit = on
shared_buffers = 64MB
logging_collector = off
EOF
    for attempt in 1 2 3 4 5; do
      pick_port >"$dir/port"
      rm -f "$dir/server.log"
      if start_server 2>"$dir/pg_ctl.err"; then
        url
        exit 0
      fi
      cat "$dir/server.log" >>"$dir/failed-starts.log" 2>/dev/null || true
      # Lost the port to another process (or another cluster starting at the same time)?
      if ! grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/server.log" 2>/dev/null ||
        [ "$attempt" -eq 5 ]; then
        cat "$dir/pg_ctl.err" >&2
        echo "$0: the server did not start; its log ($dir/server.log):" >&2
        tail -n 30 "$dir/server.log" >&2 || true
        exit 1
      fi
    done
    ;;
  url)
    url
    ;;
  crash)
    as_owner "$BINDIR/pg_ctl" stop -w -t 60 -D "$dir/data" -m immediate >/dev/null
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$BINDIR/pg_ctl" stop -w -t 60 -D "$dir/data" -m fast >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *)
    usage
    ;;
esac
