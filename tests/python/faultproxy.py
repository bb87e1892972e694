"""A fault-injecting HTTP proxy in front of the real MLflow server.

Forwards every request to MLflow unchanged, except:
  - the first `fail_batches` log-batch requests get 429 (Retry later);
  - a log-batch that carries the metric `reject_key` at step `reject_step`
    gets 400 with an MLflow-style error body (as the server answers for an
    entity it refuses);
  - a request whose path ends with a key of `delay` is answered that many
    seconds late (a slow server for that call);
  - `outage=(status, seconds, content_type, body)`: from the first log-batch
    on, every request is answered with that for `seconds` (a proxy's HTML
    503 page, a 401 of an auth layer), then the server is back;
  - `artifact_uri_to=url`: the run objects MLflow answers (runs/create,
    runs/search) name `url` + "/<run id>" as their artifact_uri (a server
    sending uploads elsewhere);
  - `conflict_param=key`: the first log-batch carrying param `key` is
    preceded by a log-parameter of another value for it, sent to MLflow
    itself, so the real server refuses that param as changed.
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
                 outage: tuple[int, float, str, str] | None = None,
                 conflict_param: str | None = None, artifact_uri_to: str | None = None,
                 port: int = 0, status: int | None = None):
        u = urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.fail_batches = fail_batches
        self.reject_key = reject_key
        self.reject_step = reject_step
        self.delay = delay or {}
        self.status = status  # answer every request with this (e.g. 401), no relay
        self.headers_seen: list[dict[str, str]] = []  # every request's headers, in order
        self.outage = outage
        self.outage_from: float | None = None
        self.conflict_param = conflict_param
        self.conflicted: set[str] = set()
        self.artifact_uri_to = artifact_uri_to
        self.auth_seen: list[str | None] = []  # the Authorization header of each request
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
                    proxy.auth_seen.append(self.headers.get("Authorization"))
                    fault = None
                    now = time.monotonic()
                    if proxy.outage and proxy.outage_from is None and path.endswith("/runs/log-batch"):
                        proxy.outage_from = now
                    if proxy.status is not None:
                        fault = (proxy.status, {"error_code": "UNAUTHENTICATED"
                                                if proxy.status == 401 else "INJECTED",
                                                "message": f"injected {proxy.status}"})
                    elif proxy.outage and proxy.outage_from is not None and \
                            now - proxy.outage_from < proxy.outage[1]:
                        fault = (proxy.outage[0], proxy.outage[3], proxy.outage[2])
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
                    conflict = None
                    if proxy.conflict_param and body and path.endswith("/runs/log-batch") and not fault:
                        b = json.loads(body)
                        if any(p["key"] == proxy.conflict_param for p in b.get("params", [])) \
                                and b["run_id"] not in proxy.conflicted:
                            proxy.conflicted.add(b["run_id"])
                            conflict = b["run_id"]
                if conflict:
                    c = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                    c.request("POST", "/api/2.0/mlflow/runs/log-parameter",
                              body=json.dumps({"run_id": conflict, "key": proxy.conflict_param,
                                               "value": "changed-by-the-test"}),
                              headers={"Content-Type": "application/json"})
                    assert c.getresponse().status == 200
                    c.close()
                if fault:
                    data = fault[1] if isinstance(fault[1], str) else json.dumps(fault[1])
                    data = data.encode()
                    self.send_response(fault[0])
                    self.send_header("Content-Type", fault[2] if len(fault) > 2 else "application/json")
                    if fault[0] == 401:
                        self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
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
                if proxy.artifact_uri_to and r.status == 200 and \
                        path.endswith(("/runs/create", "/runs/search")):
                    j = json.loads(data)
                    for run in [j.get("run")] + j.get("runs", []):
                        if run:
                            run["info"]["artifact_uri"] = \
                                f"{proxy.artifact_uri_to}/{run['info']['run_id']}"
                    data = json.dumps(j).encode()
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
