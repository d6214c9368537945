#!/usr/bin/python3
"""Checks the live answers of the real acceptd binary against its OpenAPI document.

    /usr/bin/python3 tests/openapi/check_openapi.py BUILD/acceptd docs/openapi.json

Starts `acceptd serve` on a temp store and a free loopback port, with API keys
and queues of every kind (echo, sleep, fail, external, a tiny one, one whose
jobs expire at once), fetches GET /openapi.json (which must be docs/openapi.json
byte for byte), then exercises every operation of the document, error cases
included (400, 401, 403, 404, 405, 409, 410, 413, 422, 431, 503 ...). Each
answer must be documented for its operation: its status, its content type, its
body (validated against the schema, JSON Schema 2020-12, $refs resolved in the
document), the headers documented as required, the values of documented
headers, and no API header the document does not list for that answer. At the
end every operation must have been exercised. Exit status 0 if all held, 1
otherwise (each failure printed), 2 on a usage or start-up error.

Needs only the standard library and Debian's python3-jsonschema (4.10 or later).
Run by ctest (tests/CMakeLists.txt, label `openapi`); about 3 s.
"""

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime

from jsonschema import Draft202012Validator, FormatChecker, RefResolver

DEADLINE_S = 10  # for the server to start, and for any one wait below
# Headers that belong to the API (not to HTTP framing): present in an answer,
# they must be documented for it.
API_HEADERS = {"location", "retry-after", "www-authenticate", "allow", "idempotent-replayed",
               "preference-applied", "x-request-id", "cache-control", "x-accel-buffering"}


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.failures = []
        self.covered = {}  # (method, path template) -> set of statuses seen
        self.resolver = RefResolver(base_uri="", referrer=doc)
        self.formats = FormatChecker()

        @self.formats.checks("date-time", raises=ValueError)
        def _date_time(value):  # RFC 3339; jsonschema's own check needs an extra package
            if not isinstance(value, str):
                return True
            if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
                raise ValueError("not an RFC 3339 date-time")
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return True

        @self.formats.checks("uri", raises=ValueError)
        def _uri(value):
            if isinstance(value, str) and not urllib.parse.urlsplit(value).scheme:
                raise ValueError("not an absolute URI")
            return True

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            _, obj = self.resolver.resolve(obj["$ref"])
        return obj

    def validate(self, instance, schema, what):
        validator = Draft202012Validator(schema, resolver=self.resolver, format_checker=self.formats)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        for e in errors[:3]:
            path = "/".join(str(p) for p in e.absolute_path)
            self.fail(f"{what}: {e.message} (at /{path})")
        return not errors

    def fail(self, message):
        self.failures.append(message)
        print("FAIL:", message, flush=True)

    def check(self, method, template, res, expect=None, response=None):
        """Checks one answer against the document. `response`: a response object to check
        against instead of the operation's (the answers of any path: 404, 405)."""
        status, headers, body = res
        what = f"{method} {template} -> {status}"
        if expect is not None and status != expect:
            self.fail(f"{what}: expected {expect} (the scenario went wrong; body {body[:300]!r})")
        if response is None:
            op = self.doc["paths"].get(template, {}).get(method.lower())
            if op is None:
                self.fail(f"{what}: no such operation in the document")
                return
            self.covered.setdefault((method, template), set()).add(status)
            response = op["responses"].get(str(status))
            if response is None:
                self.fail(f"{what}: status {status} is not documented for this operation "
                          f"(documented: {', '.join(sorted(op['responses']))})")
                return
        response = self.deref(response)
        documented = {name.lower(): self.deref(h) for name, h in response.get("headers", {}).items()}
        for name, h in documented.items():
            value = headers.get(name)
            if value is None:
                if h.get("required"):
                    self.fail(f"{what}: required header {name} is missing")
                continue
            schema = h.get("schema", {})
            instance = value
            if self.deref(schema).get("type") == "integer":
                instance = int(value) if re.fullmatch(r"-?\d+", value) else value
            self.validate(instance, schema, f"{what}: header {name}: {value!r}")
        for name in headers:
            if (name in API_HEADERS or name.startswith("acceptd-")) and name not in documented:
                self.fail(f"{what}: header {name} is not documented for this answer")
        content = response.get("content")
        ctype = headers.get("content-type", "")
        if not content:
            if body:
                self.fail(f"{what}: a body ({len(body)} bytes, {ctype}) where none is documented")
            return
        media = content.get(ctype)
        if media is None:
            bare = ctype.split(";")[0].strip()
            media = content.get(bare) or content.get("*/*")
            if media is None:
                self.fail(f"{what}: content type {ctype!r} not documented ({', '.join(content)})")
                return
        schema = media.get("schema", {})
        if ctype.split(";")[0].strip() in ("application/json", "application/problem+json") and (
                schema or "*/*" not in content):
            try:
                instance = json.loads(body)
            except ValueError:
                self.fail(f"{what}: the body is not JSON: {body[:200]!r}")
                return
            self.validate(instance, schema, what)
        elif schema:
            self.validate(body.decode("utf-8", "replace"), schema, what)


class Server:
    """`acceptd serve` on a free loopback port, stopped by stop()."""

    def __init__(self, binary, workdir, config_text):
        self.binary, self.workdir, self.config_text = binary, workdir, config_text
        self.proc = None
        self.port = None
        self.log_path = os.path.join(workdir, "acceptd.log")

    def start(self):
        for _ in range(3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            config = os.path.join(self.workdir, "acceptd.toml")
            with open(config, "w") as f:
                f.write(self.config_text.replace("@PORT@", str(self.port)))
            log = open(self.log_path, "w")
            self.proc = subprocess.Popen([self.binary, "serve", "--config", config],
                                         stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.request("GET", "/healthz")[0] == 200:
                        return
                except OSError:
                    time.sleep(0.02)  # not listening yet: poll with a deadline
            self.stop()
            with open(self.log_path) as f:
                text = f.read()
            if "cannot listen" not in text:
                raise RuntimeError("acceptd did not start:\n" + text)
        raise RuntimeError("no free port")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method, target, body=None, headers=None, key=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE_S + 5)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "Bearer " + key
        if isinstance(body, str):
            body = body.encode()
        try:
            conn.request(method, target, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def raw(self, data):
        """Sends raw bytes; returns the answer's (status, headers, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE_S) as s:
            try:
                s.sendall(data)
            except OSError:
                pass  # the server may answer and close before reading it all
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, body


def config_for(workdir, keys):
    lines = [
        "[server]",
        'listen = "127.0.0.1:@PORT@"',
        f'store = "sqlite:{workdir}/data/acceptd.db"',
        "threads = 2",
        "body_limit = 4096",
        "header_limit = 4096",
        "max_wait = 3",
        "promote_interval = 0.05",
        "purge_interval = 0.1",
        "",
        "[queues.greeting]",
        'handler = "greeting"',
        "[queues.echo]",
        'handler = "echo"',
        "[queues.fail]",
        'handler = "fail"',
        "max_attempts = 1",
        "[queues.sleep]",
        'handler = "sleep"',
        "[queues.ext]",
        'handler = "external"',
        "[queues.tiny]",
        'handler = "external"',
        "max_depth = 1",
        "[queues.brief]",
        'handler = "echo"',
        "retention = 0",
        "[queues.ticks]",
        'handler = "external"',
        "",
        "[[schedules]]",
        'name = "every-second"',
        'cron = "* * * * * *"',
        'queue = "ticks"',
        """payload = '{"kind":"tick"}'""",
        'content_type = "application/json"',
        "[[schedules]]",
        'name = "nightly"',
        'cron = "30 2 * * *"',
        'timezone = "Europe/Berlin"',
        'queue = "ticks"',
        'on_missed = "skip"',
        "",
    ]
    for name, (key, scopes, tenant) in keys.items():
        lines += ["[[api_keys]]", f'name = "{name}"',
                  f'sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"',
                  "scopes = [" + ", ".join(f'"{s}"' for s in scopes) + "]"]
        if tenant:
            lines.append(f'tenant = "{tenant}"')
    return "\n".join(lines) + "\n"


def run(binary, document_path):
    with open(document_path, "rb") as f:
        doc_bytes = f.read()
    doc = json.loads(doc_bytes)
    c = Checker(doc)
    keys = {name: ("acd_" + secrets.token_urlsafe(32), scopes, tenant) for name, scopes, tenant in [
        ("admin", ["admin"], ""), ("reader", ["read"], ""), ("submitter", ["submit"], ""),
        ("worker", ["worker"], ""), ("metrics", ["metrics"], ""),
        ("tenant", ["submit", "read", "cancel", "worker", "metrics"], "t1")]}
    K = {name: v[0] for name, v in keys.items()}
    workdir = tempfile.mkdtemp(prefix="acceptd-openapi-")
    server = Server(binary, workdir, config_for(workdir, keys))
    try:
        server.start()
        exercise(server, c, K, doc_bytes)
    finally:
        server.stop()
        if c.failures:
            with open(server.log_path) as f:
                sys.stdout.write("--- server log (tail) ---\n" + "".join(f.readlines()[-40:]))
        shutil.rmtree(workdir, ignore_errors=True)
    for template, item in doc["paths"].items():
        for method in item:
            if method != "parameters" and (method.upper(), template) not in c.covered:
                c.fail(f"{method.upper()} {template}: never exercised by this check")
    n = sum(len(s) for s in c.covered.values())
    print(f"{len(c.covered)} operations, {n} (operation, status) pairs checked; "
          f"{len(c.failures)} failures")
    return 1 if c.failures else 0


def exercise(server, c, K, doc_bytes):
    req = server.request
    admin = K["admin"]

    def wait_for(job_id, states, key=admin):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            status, _, body = req("GET", f"/v1/jobs/{job_id}?wait=1", key=key)
            if status < 400 and json.loads(body)["state"] in states:
                return json.loads(body)
        raise RuntimeError(f"job {job_id} did not reach {states}")

    def submit(queue, body=b"{}", key=admin, target=None, headers=None, expect=202, template=None):
        res = req("POST", target or f"/v1/queues/{queue}/jobs", body,
                  dict({"Content-Type": "application/json"}, **(headers or {})), key=key)
        c.check("POST", template or "/v1/queues/{queue}/jobs", res, expect)
        return res

    def job_of(res):
        return json.loads(res[2])["id"]

    # The document, as served: public, the same bytes as docs/openapi.json.
    res = req("GET", "/openapi.json")
    c.check("GET", "/openapi.json", res, 200)
    if res[2] != doc_bytes:
        c.fail("GET /openapi.json does not serve docs/openapi.json byte for byte (rebuild?)")

    # Health.
    c.check("GET", "/healthz", req("GET", "/healthz"), 200)
    c.check("GET", "/readyz", req("GET", "/readyz", key=K["reader"]), 200)
    c.check("GET", "/readyz", req("GET", "/readyz"), 401)
    c.check("GET", "/readyz", req("GET", "/readyz", key="acd_wrong"), 401)

    # Submit: 202, replay, 400s, 401, 403, 404, 409/422, 413, 431, 503.
    res = submit("echo", b'{"a":1}', headers={"Idempotency-Key": "k1", "X-Request-Id": "req-1"})
    if res[1].get("x-request-id") != "req-1":
        c.fail("POST /v1/queues/{queue}/jobs: X-Request-Id was not echoed")
    echo_id = job_of(res)
    res = submit("echo", b'{"a":1}', headers={"Idempotency-Key": "k1"})
    if res[1].get("idempotent-replayed") != "true" or job_of(res) != echo_id:
        c.fail("an Idempotency-Key replay did not answer the original job")
    submit("echo", b'{"a":2}', headers={"Idempotency-Key": "k1"}, expect=422)
    submit("echo", headers={"Idempotency-Key": "\x7f"}, expect=400)
    submit("echo", target="/v1/queues/echo/jobs?priority=abc", expect=400)
    submit("echo", target="/v1/queues/echo/jobs?bogus=1", expect=400)
    submit("echo", target="/v1/queues/echo/jobs?callback=http%3A%2F%2Fexample.com%2F", expect=400)
    submit("echo", target="/v1/queues/echo/jobs?delay=%zz", expect=400)
    submit("echo", key=None, expect=401)
    submit("echo", key=K["reader"], expect=403)
    submit("nope", expect=404)
    submit("echo", target="/v1/queues/echo/jobs?delay=0.5&priority=3&max_attempts=2&timeout=1.5")
    res = submit("echo", headers={"Prefer": "wait=3"}, expect=303)
    echo_done = job_of(res)
    res = submit("fail", b'{"message":"boom","retryable":false}', headers={"Prefer": "wait=3"},
                 expect=200)
    failed_id = job_of(res)
    # 413: a body over the limit (4096 bytes), refused from its Content-Length.
    c.check("POST", "/v1/queues/{queue}/jobs", server.raw(
        b"POST /v1/queues/echo/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + admin.encode() + b"\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000), 413)
    # 431: headers over the limit.
    c.check("GET", "/healthz", server.raw(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 5000 + b"\r\n\r\n"), 431)
    # 503 queue_full: `tiny` (external, nobody leases) holds one job at most.
    submit("tiny")
    res = submit("tiny", expect=503)
    if json.loads(res[2]).get("code") != "queue_full":
        c.fail("a full queue did not answer code queue_full")

    # Status monitor: 302, 200, 202 (+ long-poll), 400, 404, 410, 401, 403.
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{echo_done}", key=K["reader"]), 302)
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{failed_id}", key=admin), 200)
    sleep_id = job_of(submit("sleep", b'{"ms": 60000}'))
    wait_for(sleep_id, {"running"})
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{sleep_id}?wait=0.1", key=admin), 202)
    c.check("GET", "/v1/jobs/{id}",
            req("GET", f"/v1/jobs/{sleep_id}", headers={"Prefer": "wait=0.1"}, key=admin), 202)
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{sleep_id}?wait=x", key=admin), 400)
    c.check("GET", "/v1/jobs/{id}", req("GET", "/v1/jobs/" + "0" * 32, key=admin), 404)
    c.check("GET", "/v1/jobs/{id}", req("GET", "/v1/jobs/not-an-id", key=admin), 404)
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{echo_id}"), 401)
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{echo_id}", key=K["submitter"]), 403)
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{echo_id}", key=K["tenant"]), 404)
    # A job of `brief` expires as it finishes: the submit's wait may see it succeeded (303) or
    # not (202, it is gone by the time it is read).
    brief_id = job_of(submit("brief", headers={"Prefer": "wait=3"}, expect=None))
    gone = None
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:  # retention 0: expired once finished, 410 at once
        gone = req("GET", f"/v1/jobs/{brief_id}", key=admin)
        if gone[0] == 410:
            break
    c.check("GET", "/v1/jobs/{id}", gone, 410)
    # Purged (a tombstone remembers it): every route that takes its id answers 410.
    def brief_count():
        queues = json.loads(req("GET", "/v1/queues", key=admin)[2])["queues"]
        return sum(next(q for q in queues if q["name"] == "brief")["counts"].values())

    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and brief_count() > 0:
        time.sleep(0.05)  # purge_interval is 0.1 s: poll the counts until the purge removed it
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{brief_id}", key=admin), 410)

    # Result: 200, 409, 404, 410.
    c.check("GET", "/v1/jobs/{id}/result", req("GET", f"/v1/jobs/{echo_done}/result", key=admin), 200)
    c.check("GET", "/v1/jobs/{id}/result", req("GET", f"/v1/jobs/{sleep_id}/result", key=admin), 409)
    c.check("GET", "/v1/jobs/{id}/result", req("GET", "/v1/jobs/" + "f" * 32 + "/result", key=admin),
            404)
    c.check("GET", "/v1/jobs/{id}/result", req("GET", f"/v1/jobs/{brief_id}/result", key=admin), 410)

    # Events: a finished job's stream (its state event, then the end), 204 when seen, 404.
    res = req("GET", f"/v1/jobs/{echo_done}/events", key=admin)
    c.check("GET", "/v1/jobs/{id}/events", res, 200)
    last_id = check_event_stream(c, res[2])
    c.check("GET", "/v1/jobs/{id}/events",
            req("GET", f"/v1/jobs/{echo_done}/events", headers={"Last-Event-ID": last_id or ""},
                key=admin), 204)
    c.check("GET", "/v1/jobs/{id}/events", req("GET", "/v1/jobs/" + "0" * 32 + "/events", key=admin),
            404)
    c.check("GET", "/v1/jobs/{id}/events", req("GET", f"/v1/jobs/{brief_id}/events", key=admin), 410)

    # List and queues.
    c.check("GET", "/v1/jobs", req("GET", "/v1/jobs?limit=2", key=admin), 200)
    page = json.loads(req("GET", "/v1/jobs?limit=1&queue=echo&state=succeeded", key=admin)[2])
    if page.get("next_cursor"):
        c.check("GET", "/v1/jobs",
                req("GET", f"/v1/jobs?limit=1&cursor={page['next_cursor']}", key=admin), 200)
    c.check("GET", "/v1/jobs", req("GET", "/v1/jobs", key=K["tenant"]), 200)
    c.check("GET", "/v1/jobs", req("GET", "/v1/jobs?state=done", key=admin), 400)
    c.check("GET", "/v1/jobs", req("GET", "/v1/jobs?limit=0", key=admin), 400)
    c.check("GET", "/v1/jobs", req("GET", "/v1/jobs?x=1", key=admin), 400)
    c.check("GET", "/v1/queues", req("GET", "/v1/queues", key=K["reader"]), 200)
    c.check("GET", "/v1/nodes", req("GET", "/v1/nodes", key=K["reader"]), 200)
    c.check("GET", "/v1/nodes", req("GET", "/v1/nodes"), 401)

    # Searches (GET /v1/jobs with filters), attempts and stats.
    c.check("GET", "/v1/jobs",
            req("GET", "/v1/jobs?q=a&field=name&value=x&order=oldest&created_after=0&created_before="
                "2100-01-01T00:00:00Z&id=0", key=admin), 200)
    c.check("GET", "/v1/jobs", req("GET", "/v1/jobs?field=name", key=admin), 400)
    attempts = "/v1/jobs/{id}/attempts"
    c.check("GET", attempts, req("GET", f"/v1/jobs/{failed_id}/attempts", key=K["reader"]), 200)
    c.check("GET", attempts, req("GET", f"/v1/jobs/{echo_done}/attempts", key=admin), 200)
    c.check("GET", attempts, req("GET", f"/v1/jobs/{echo_done}/attempts", key=K["submitter"]), 403)
    c.check("GET", attempts, req("GET", f"/v1/jobs/{echo_done}/attempts", key=K["tenant"]), 404)
    c.check("GET", attempts, req("GET", "/v1/jobs/" + "0" * 32 + "/attempts", key=admin), 404)
    c.check("GET", attempts, req("GET", f"/v1/jobs/{brief_id}/attempts", key=admin), 410)
    c.check("GET", "/v1/stats", req("GET", "/v1/stats?window=120", key=K["reader"]), 200)
    c.check("GET", "/v1/stats", req("GET", "/v1/stats", key=admin), 200)
    c.check("GET", "/v1/stats", req("GET", "/v1/stats?window=5", key=admin), 400)
    c.check("GET", "/v1/stats", req("GET", "/v1/stats", key=K["submitter"]), 403)

    # Schedules: before and after the every-second one fired (last_fire_at set).
    c.check("GET", "/v1/schedules", req("GET", "/v1/schedules", key=K["reader"]), 200)
    c.check("GET", "/v1/schedules", req("GET", "/v1/schedules"), 401)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        res = req("GET", "/v1/schedules", key=admin)
        fired = [s for s in json.loads(res[2])["schedules"] if s["last_fire_at"]]
        if fired or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    c.check("GET", "/v1/schedules", res, 200)
    if not fired:
        c.fail("the every-second schedule did not fire within the deadline")

    # Cancel: 202 (running), 200 (queued), 409 (terminal), 404, 403.
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", f"/v1/jobs/{sleep_id}/cancel", key=admin),
            202)
    queued_id = job_of(submit("echo", target="/v1/queues/echo/jobs?delay=60"))
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", f"/v1/jobs/{queued_id}/cancel", key=admin),
            200)
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", f"/v1/jobs/{failed_id}/cancel", key=admin),
            409)
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", "/v1/jobs/" + "0" * 32 + "/cancel",
                                                  key=admin), 404)
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", f"/v1/jobs/{failed_id}/cancel",
                                                  key=K["reader"]), 403)
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", f"/v1/jobs/{brief_id}/cancel", key=admin),
            410)

    # Retry (admin): a canceled job runs again (202), a pending or succeeded one cannot (409).
    again = job_of(submit("echo", target="/v1/queues/echo/jobs?delay=60"))
    c.check("POST", "/v1/jobs/{id}/cancel", req("POST", f"/v1/jobs/{again}/cancel", key=admin), 200)
    retry = "/v1/jobs/{id}/retry"
    c.check("POST", retry, req("POST", f"/v1/jobs/{again}/retry", key=admin), 202)
    c.check("POST", retry, req("POST", f"/v1/jobs/{again}/retry", key=admin), 409)
    c.check("POST", retry, req("POST", f"/v1/jobs/{again}/retry", key=K["reader"]), 403)
    c.check("POST", retry, req("POST", "/v1/jobs/" + "0" * 32 + "/retry", key=admin), 404)
    c.check("POST", retry, req("POST", f"/v1/jobs/{brief_id}/retry", key=admin), 410)

    # Delete: 204 (terminal), 202 (queued, and running), 404, 410 (purged).
    c.check("DELETE", "/v1/jobs/{id}", req("DELETE", f"/v1/jobs/{failed_id}", key=admin), 204)
    delayed = job_of(submit("echo", target="/v1/queues/echo/jobs?delay=60"))
    c.check("DELETE", "/v1/jobs/{id}", req("DELETE", f"/v1/jobs/{delayed}", key=admin), 202)
    long_id = job_of(submit("sleep", b'{"ms": 60000}'))
    wait_for(long_id, {"running"})
    c.check("DELETE", "/v1/jobs/{id}", req("DELETE", f"/v1/jobs/{long_id}", key=admin), 202)
    c.check("DELETE", "/v1/jobs/{id}", req("DELETE", "/v1/jobs/" + "0" * 32, key=admin), 404)
    c.check("DELETE", "/v1/jobs/{id}", req("DELETE", f"/v1/jobs/{brief_id}", key=admin), 410)

    # The lease protocol: lease, heartbeat, complete / fail / release, stale leases.
    def lease(query="?wait=1", key=K["worker"], queue="ext", expect=200):
        res = req("POST", f"/v1/queues/{queue}/leases{query}", key=key)
        c.check("POST", "/v1/queues/{queue}/leases", res, expect)
        return res[1].get("acceptd-lease")

    c.check("POST", "/v1/queues/{queue}/leases",
            req("POST", "/v1/queues/ext/leases?wait=0", key=K["worker"]), 204)
    ext_id = job_of(submit("ext", b'{"w":1}'))
    lid = lease("?wait=5&lease=30")
    hb = "/v1/leases/{lease}/heartbeat"
    c.check("POST", hb, req("POST", f"/v1/leases/{lid}/heartbeat", key=K["worker"]), 200)
    c.check("POST", hb, req("POST", f"/v1/leases/{lid}/heartbeat?lease=10",
                            b'{"percent": 40, "message": "half"}', key=K["worker"]), 200)
    c.check("POST", hb, req("POST", f"/v1/leases/{lid}/heartbeat", b"[1]", key=K["worker"]), 400)
    c.check("POST", hb, req("POST", f"/v1/leases/{lid}/heartbeat?lease=0", key=K["worker"]), 400)
    c.check("POST", hb, req("POST", f"/v1/leases/{lid}/heartbeat?x=1", key=K["worker"]), 400)
    c.check("GET", "/v1/jobs/{id}", req("GET", f"/v1/jobs/{ext_id}", key=admin), 202)
    c.check("POST", "/v1/leases/{lease}/complete",
            req("POST", f"/v1/leases/{lid}/complete", b'{"done":true}',
                {"Content-Type": "application/json"}, key=K["worker"]), 200)
    c.check("POST", "/v1/leases/{lease}/complete",
            req("POST", f"/v1/leases/{lid}/complete", b"again", key=K["worker"]), 409)
    c.check("POST", hb, req("POST", f"/v1/leases/{lid}/heartbeat", key=K["worker"]), 409)
    c.check("POST", "/v1/leases/{lease}/release",
            req("POST", f"/v1/leases/{lid}/release", key=K["worker"]), 409)
    c.check("POST", "/v1/leases/{lease}/fail",
            req("POST", f"/v1/leases/{lid}/fail", b'{"detail":"x"}', key=K["worker"]), 409)
    c.check("POST", "/v1/leases/{lease}/fail",
            req("POST", "/v1/leases/garbage/fail", b'{"detail":"x"}', key=K["worker"]), 409)
    submit("ext", b'{"w":2}')
    lid = lease()
    c.check("POST", "/v1/leases/{lease}/release",
            req("POST", f"/v1/leases/{lid}/release", key=K["worker"]), 200)
    lid = lease()
    c.check("POST", "/v1/leases/{lease}/fail",
            req("POST", f"/v1/leases/{lid}/fail", b'{"detail":"x","retryable":"yes"}',
                key=K["worker"]), 400)
    c.check("POST", "/v1/leases/{lease}/fail",
            req("POST", f"/v1/leases/{lid}/fail", b"not json", key=K["worker"]), 400)
    c.check("POST", "/v1/leases/{lease}/fail",
            req("POST", f"/v1/leases/{lid}/fail",
                b'{"detail":"bad image","code":"bad_image","retryable":false}', key=K["worker"]), 200)
    lease("?wait=99", expect=400)
    lease("?x=1", expect=400)
    lease(queue="nope", expect=404)
    lease(queue="echo", expect=409)
    lease(key=K["reader"], expect=403)
    lease(key=K["tenant"], expect=403)
    lease(key=None, expect=401)
    c.check("POST", "/v1/leases/{lease}/complete",
            server.raw(b"POST /v1/leases/x.1/complete HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                       + K["worker"].encode() + b"\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000),
            413)

    # Compatibility routes.
    res = req("POST", "/v1/submit-job", b'{"name":"openapi","service_name":"greeting"}', key=admin)
    c.check("POST", "/v1/submit-job", res, 202)
    token = json.loads(res[2]).get("message_token", "")
    c.check("POST", "/v1/submit-job", req("POST", "/v1/submit-job", b"[]", key=admin), 400)
    c.check("POST", "/v1/submit-job",
            req("POST", "/v1/submit-job", b'{"redirect_location":{"url":"http://127.0.0.1:1/x"}}',
                key=admin), 400)
    c.check("POST", "/v1/submit-job", req("POST", "/v1/submit-job", b"{}", key=K["reader"]), 403)
    wait_for(token, {"succeeded"})
    c.check("POST", "/v1/pool-job",
            req("POST", "/v1/pool-job", json.dumps({"massage_token": token}), key=admin), 302)
    c.check("POST", "/v1/pool-job",
            req("POST", "/v1/pool-job", json.dumps({"message_token": queued_id}), key=admin), 409)
    pending = job_of(submit("ext", b"{}"))
    c.check("POST", "/v1/pool-job",
            req("POST", "/v1/pool-job", json.dumps({"message_token": pending}), key=admin), 202)
    c.check("POST", "/v1/pool-job", req("POST", "/v1/pool-job", b"{}", key=admin), 400)
    c.check("POST", "/v1/pool-job",
            req("POST", "/v1/pool-job", json.dumps({"message_token": "0" * 32}), key=admin), 404)
    c.check("POST", "/v1/pool-job",
            req("POST", "/v1/pool-job", json.dumps({"message_token": brief_id}), key=admin), 410)

    # Metrics: the metrics scope, and not for a key with a tenant.
    c.check("GET", "/metrics", req("GET", "/metrics", key=K["metrics"]), 200)
    c.check("GET", "/metrics", req("GET", "/metrics", key=K["reader"]), 403)
    c.check("GET", "/metrics", req("GET", "/metrics", key=K["tenant"]), 403)
    c.check("GET", "/metrics", req("GET", "/metrics"), 401)

    # Pause and resume a queue: admin, no tenant.
    for action in ("pause", "pause", "resume"):
        c.check("POST", f"/v1/queues/{{queue}}/{action}",
                req("POST", f"/v1/queues/ext/{action}", key=admin), 200)
        c.check("GET", "/v1/queues", req("GET", "/v1/queues", key=admin), 200)
    for key, expect in ((K["reader"], 403), (K["tenant"], 403), (None, 401)):
        c.check("POST", "/v1/queues/{queue}/pause", req("POST", "/v1/queues/ext/pause", key=key),
                expect)
    c.check("POST", "/v1/queues/{queue}/resume", req("POST", "/v1/queues/nope/resume", key=admin),
            404)

    # Purge a queue's finished jobs: admin, no tenant.
    c.check("POST", "/v1/queues/{queue}/purge",
            req("POST", "/v1/queues/fail/purge?state=failed", key=admin), 200)
    c.check("POST", "/v1/queues/{queue}/purge", req("POST", "/v1/queues/greeting/purge", key=admin),
            200)
    c.check("POST", "/v1/queues/{queue}/purge",
            req("POST", "/v1/queues/fail/purge?state=queued", key=admin), 400)
    for key, expect in ((K["reader"], 403), (K["tenant"], 403), (None, 401)):
        c.check("POST", "/v1/queues/{queue}/purge", req("POST", "/v1/queues/fail/purge", key=key),
                expect)
    c.check("POST", "/v1/queues/{queue}/purge", req("POST", "/v1/queues/nope/purge", key=admin),
            404)

    # The dashboard: public files with keys configured, the redirect, 304, 404.
    c.check("GET", "/ui", req("GET", "/ui"), 308)
    res = req("GET", "/ui/")
    c.check("GET", "/ui/{file}", res, 200)
    c.check("GET", "/ui/{file}", req("GET", "/ui/app.js"), 200)
    c.check("GET", "/ui/{file}", req("GET", "/ui/", headers={"If-None-Match": res[1].get("etag", "")}),
            304)
    c.check("GET", "/ui/{file}", req("GET", "/ui/nope.html"), 404)
    # Every job change: admin only; a submit shows up as `job` events on the stream.
    for key, expect in ((K["reader"], 403), (K["tenant"], 403), (None, 401)):
        c.check("GET", "/v1/events", req("GET", "/v1/events", key=key), expect)
    res = read_job_events(server, admin, lambda: job_of(submit("echo", b'{"for":"events"}')))
    c.check("GET", "/v1/events", res, 200)
    check_event_stream(c, res[2])

    # The payload: 200 with its content type, 404, 410.
    res = req("GET", f"/v1/jobs/{echo_done}/payload", key=admin)
    c.check("GET", "/v1/jobs/{id}/payload", res, 200)
    if not res[1].get("content-type", "").startswith("application/json"):
        c.fail(f"GET /v1/jobs/{{id}}/payload: content type {res[1].get('content-type')!r}")
    c.check("GET", "/v1/jobs/{id}/payload", req("GET", "/v1/jobs/" + "e" * 32 + "/payload", key=admin),
            404)
    c.check("GET", "/v1/jobs/{id}/payload", req("GET", f"/v1/jobs/{brief_id}/payload", key=admin), 410)
    for key, expect in ((K["submitter"], 403), (None, 401)):
        c.check("GET", "/v1/jobs/{id}/payload", req("GET", f"/v1/jobs/{echo_done}/payload", key=key),
                expect)

    # Answers of any path: 405 with Allow listing the document's methods, 404 for no route.
    for template, item in c.doc["paths"].items():
        methods = {m.upper() for m in item if m != "parameters"}
        path = template.replace("{id}", "0" * 32).replace("{queue}", "echo") \
            .replace("{lease}", "x.1")
        other = "PUT" if "PUT" not in methods else "PATCH"
        res = req(other, path, key=admin)
        c.check(other, template, res, 405, response=c.doc["components"]["responses"]["MethodNotAllowed"])
        allowed = {m.strip() for m in res[1].get("allow", "").split(",") if m.strip()}
        if allowed != methods:
            c.fail(f"{other} {template}: Allow is {sorted(allowed)}, the document has {sorted(methods)}")
    c.check("GET", "/nowhere", req("GET", "/v1/nowhere", key=admin), 404,
            response=c.doc["components"]["responses"]["NotFound"])
    c.check("GET", "/nowhere", req("GET", "/v1/nowhere"), 401,
            response=c.doc["components"]["responses"]["Unauthorized"])


def read_job_events(server, key, trigger):
    """GET /v1/events (HTTP/1.0: a close-delimited body) until the job `trigger()` submits has
    succeeded on it; returns the answer as (status, headers, body so far)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S) as s:
        s.sendall(f"GET /v1/events HTTP/1.0\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + DEADLINE_S

        def read_until(needle):
            nonlocal data
            while needle not in data:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"GET /v1/events: no {needle!r} in {data[-300:]!r}")
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError(f"GET /v1/events: the stream ended: {data[-300:]!r}")
                data += chunk

        read_until(b": connected\n\n")  # subscribed: what follows is seen
        job_id = trigger()
        read_until(f'"id":"{job_id}","queue":"echo","state":"succeeded"'.encode())
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def check_event_stream(c, body):
    """Validates the events of a stream's body; returns the last event's id."""
    last_id = None
    for block in body.decode().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                k, _, v = line.partition(": ")
                fields[k] = v
        if not fields:
            continue
        event, data = fields.get("event"), fields.get("data", "")
        schema = {"state": "Job", "progress": "Progress", "job": "JobChangeEvent",
                  "overflow": "EventOverflow"}.get(event)
        if event == "deleted":
            continue
        if schema is None:
            c.fail(f"event stream: unknown event {event!r}")
            continue
        c.validate(json.loads(data), {"$ref": f"#/components/schemas/{schema}"}, f"event {event}")
        last_id = fields.get("id", last_id)
    return last_id


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    try:
        sys.exit(run(sys.argv[1], sys.argv[2]))
    except (RuntimeError, OSError) as e:
        print("error:", e)
        sys.exit(2)
