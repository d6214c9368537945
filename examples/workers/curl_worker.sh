#!/usr/bin/env bash
# An acceptd worker in bash with curl: leases jobs of an external queue,
# heartbeats while the work runs (a cancel stops it), completes or fails.
# The work here upper-cases the payload; the payload "fail" fails for good.
# See README.md.
#
#   curl_worker.sh [SERVER [QUEUE]]   # or ACCEPTD_SERVER, ACCEPTD_QUEUE, ACCEPTD_API_KEY
set -u
SERVER=${1:-${ACCEPTD_SERVER:-http://127.0.0.1:8000}}
QUEUE=${2:-${ACCEPTD_QUEUE:-shout}}
WAIT=${LEASE_WAIT:-30} # seconds a lease request waits for a job
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
api() { # api PATH [CURL ARGS...]: POST, prints the body, fails unless 2xx
  local path=$1
  shift
  curl -sS --fail -X POST ${ACCEPTD_API_KEY:+-H "Authorization: Bearer $ACCEPTD_API_KEY"} \
    --max-time $((WAIT + 10)) "$@" "$SERVER$path"
}
work() { # stdin: the payload; stdout: the result. Replace with your own.
  local payload
  payload=$(cat)
  [ "$payload" != fail ] || { echo "asked to fail" >&2; return 1; }
  printf '%s' "$payload" | tr '[:lower:]' '[:upper:]'
}
header() { sed -n "s/^$1: *\\(.*\\)\\r\$/\\1/Ip" "$tmp/headers"; }

while :; do
  if ! code=$(api "/v1/queues/$QUEUE/leases?wait=$WAIT" -D "$tmp/headers" -o "$tmp/payload" \
    -w '%{http_code}'); then
    echo "lease failed; retrying in 1 s" >&2 # unreachable, 5xx, 503 shutting down
    sleep 1
    continue
  fi
  [ "$code" = 200 ] || continue # 204: no job within WAIT seconds
  lease=$(header Location)
  beat=$(($(header Acceptd-Lease-Seconds | cut -d. -f1) * 10 / 3)) # a third of the lease, in 0.1 s
  [ "$beat" -ge 1 ] || beat=1
  work <"$tmp/payload" >"$tmp/result" 2>"$tmp/error" &
  pid=$! ticks=0 outcome=finished
  while kill -0 "$pid" 2>/dev/null; do # look every 0.1 s; heartbeat every `beat` ticks
    sleep 0.1
    ticks=$((ticks + 1))
    [ "$ticks" -ge "$beat" ] || continue
    ticks=0
    if ! answer=$(api "$lease/heartbeat"); then outcome=stale; kill "$pid"; break; fi # 409
    case $answer in *'"cancel_requested":true'*) outcome=canceled; kill "$pid"; break ;; esac
  done
  wait "$pid"
  status=$?
  case $outcome in
    stale) continue ;; # the lease is gone: report nothing
    canceled) api "$lease/release" >/dev/null ;;
    *) if [ "$status" = 0 ]; then
      api "$lease/complete" -H "Content-Type: text/plain" --data-binary @"$tmp/result" >/dev/null
    else
      detail=$(tail -c 200 "$tmp/error" | tr -d '"\\\n')
      api "$lease/fail" -H "Content-Type: application/json" \
        -d "{\"detail\": \"$detail\", \"retryable\": false}" >/dev/null
    fi ;;
  esac || echo "reporting job outcome failed" >&2
done
