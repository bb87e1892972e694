"""A fault-injecting HTTP proxy in front of the real MLflow server.

Forwards every request to MLflow unchanged, except:
  - the first `fail_batches` log-batch requests get 429 (Retry later);
  - a log-batch that carries the metric `reject_key` at step `reject_step`
    gets 400 with an MLflow-style error body (as the server answers for an
    entity it refuses);
  - a request whose path ends with a key of `delay` is answered that many
    seconds late (a slow server for that call).
Counts requests by path so tests can assert how many calls were made.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream: str, fail_batches: int = 0, reject_key: str | None = None,
                 reject_step: int = 0, delay: dict[str, float] | None = None,
                 port: int = 0, status: int | None = None):
        u = urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.fail_batches = fail_batches
        self.reject_key = reject_key
        self.reject_step = reject_step
        self.delay = delay or {}
        self.status = status  # answer every request with this (e.g. 401), no relay
        self.headers_seen: list[dict[str, str]] = []  # every request's headers, in order
        self.counts: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = self.path.split("?")[0]
                with proxy.lock:
                    proxy.counts[path] += 1
                    proxy.headers_seen.append(dict(self.headers.items()))
                    fault = None
                    if proxy.status is not None:
                        fault = (proxy.status, {"error_code": "UNAUTHENTICATED"
                                                if proxy.status == 401 else "INJECTED",
                                                "message": f"injected {proxy.status}"})
                    elif path.endswith("/runs/log-batch"):
                        if proxy.fail_batches > 0:
                            proxy.fail_batches -= 1
                            fault = (429, {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                           "message": "injected 429"})
                        elif proxy.reject_key and body:
                            keys = {(m["key"], int(m.get("step", 0)))
                                    for m in json.loads(body).get("metrics", [])}
                            if (proxy.reject_key, proxy.reject_step) in keys:
                                fault = (400, {"error_code": "INVALID_PARAMETER_VALUE",
                                               "message": f"injected: metric {proxy.reject_key} refused"})
                    if fault:
                        proxy.injected[fault[0]] += 1
                if fault:
                    data = json.dumps(fault[1]).encode()
                    self.send_response(fault[0])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                for suffix, secs in proxy.delay.items():
                    if path.endswith(suffix):
                        time.sleep(secs)
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                r = conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
