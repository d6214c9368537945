#!/usr/bin/env python3
"""A deliberately slow synchronous HTTP service: the kind of backend acceptd's
handler = "http" puts an async API in front of. Standard library only.

    python3 slow_service.py [PORT [SECONDS]]      # default 127.0.0.1:9000, 3 s per request

POST /render takes any body, sleeps SECONDS (a slow render), then answers
200 with a JSON document that echoes what it was sent, including the headers
acceptd adds so a backend can tell a retry from a first attempt. GET /healthz
answers at once.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0


class SlowService(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as acceptd's client reuses connections

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200 if self.path == "/healthz" else 404, {"path": self.path})

    def do_POST(self):
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/render":
            return self.answer(404, {"error": "no such path"})
        time.sleep(SECONDS)  # the slow part
        self.answer(200, {
            "rendered": payload.decode("utf-8", "replace"),
            "content_type": self.headers.get("Content-Type"),
            "idempotency_key": self.headers.get("Idempotency-Key"),
            "seconds": SECONDS,
        })

    def log_message(self, format, *args):
        sys.stderr.write("slow_service: " + format % args + "\n")


if __name__ == "__main__":
    print(f"slow_service: listening on 127.0.0.1:{PORT}, {SECONDS} s per render", file=sys.stderr)
    ThreadingHTTPServer(("127.0.0.1", PORT), SlowService).serve_forever()
