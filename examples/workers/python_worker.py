#!/usr/bin/env python3
"""An acceptd worker in ~40 lines of Python, standard library only.

Leases jobs of an external queue, heartbeats while it works (which is how it
learns of a cancel), then completes or fails each job. The work here
upper-cases the payload; the payload "fail" fails for good. See README.md.

    python3 python_worker.py [SERVER [QUEUE]]   # or ACCEPTD_SERVER, ACCEPTD_QUEUE, ACCEPTD_API_KEY
"""
import json, os, sys, threading, time, urllib.error, urllib.request

ARGS = sys.argv[1:] + [None, None]
SERVER = ARGS[0] or os.environ.get("ACCEPTD_SERVER", "http://127.0.0.1:8000")
QUEUE = ARGS[1] or os.environ.get("ACCEPTD_QUEUE", "shout")
KEY = os.environ.get("ACCEPTD_API_KEY")

def post(path, body=b"", content_type="application/json"):
    headers = {"Content-Type": content_type, **({"Authorization": "Bearer " + KEY} if KEY else {})}
    request = urllib.request.Request(SERVER + path, data=body, headers=headers, method="POST")
    return urllib.request.urlopen(request, timeout=70)  # a lease long-polls up to 60 s

def heartbeat(lease, seconds, done, cancel):  # every third of the lease, until done
    while not done.wait(seconds / 3):
        try:
            if json.load(post(lease + "/heartbeat"))["cancel_requested"]:
                cancel.set()  # the work should stop; the lease is then released
        except urllib.error.HTTPError:  # 409: the lease is gone (expired, job canceled/deleted)
            cancel.set()
            return
        except OSError as e:
            print("heartbeat failed:", e, file=sys.stderr)

def work(payload, content_type, cancel):  # replace with your own; return (bytes, content type)
    if payload == b"fail":
        raise ValueError("asked to fail")
    return payload.upper(), content_type or "text/plain"

while True:
    try:
        answer = post(f"/v1/queues/{QUEUE}/leases?wait=30")
    except OSError as e:  # unreachable, 5xx, 503 shutting down: try again soon
        print("lease failed:", e, file=sys.stderr)
        time.sleep(1)
        continue
    if answer.status == 204:  # no job within 30 s
        continue
    lease, seconds = answer.headers["Location"], float(answer.headers["Acceptd-Lease-Seconds"])
    done, cancel = threading.Event(), threading.Event()
    threading.Thread(target=heartbeat, args=(lease, seconds, done, cancel), daemon=True).start()
    try:
        result, result_type = work(answer.read(), answer.headers["Content-Type"], cancel)
        call = (lease + "/complete", result, result_type)
    except Exception as e:  # retryable=False: this payload will never work
        call = (lease + "/fail", json.dumps({"detail": str(e), "retryable": False}).encode(),
                "application/problem+json")
    done.set()
    try:
        if cancel.is_set():
            call = (lease + "/release",)
        post(*call)
    except OSError as e:  # 409: the lease went stale meanwhile; the server moved on
        print("report failed:", e, file=sys.stderr)
