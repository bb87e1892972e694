"""What ringflowd does with the answers of the MLflow server and the proxies in
front of it (issue 15, item 7): only MLflow's own verdict about an entity may
drop that entity (counted); a proxy's HTML 503, an auth failure or any other
transient answer waits and is retried until it passes, and `ringflowd flush`
never says "everything is in MLflow" while something was dropped.

Real evals (hook -> ring -> ringflowd) into a real MLflow server behind
tests/python/faultproxy.py."""

from __future__ import annotations

import os
import re
import subprocess
import time

from faultproxy import FaultProxy
from test_hook import eval_env
from test_sidecar import (RINGFLOWD, Sidecar, cleanup, exp_name, history, run_eval,  # noqa: F401
                          runs_of)

N = 30
HTML_503 = ("<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
            "<center><h1>503 Service Temporarily Unavailable</h1></center><hr>"
            "<center>nginx</center></body></html>")


def flush(ring: str, spool, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
    return subprocess.run([str(RINGFLOWD), "flush", "--quiet", "--timeout", str(timeout)], env=env,
                          capture_output=True, text=True, timeout=timeout + 60)


def counter(log_text: str, name: str) -> int:
    vals = re.findall(rf"\b{name}=(\d+)", log_text)
    assert vals, f"{name} not in the log"
    return int(vals[-1])


def eval_through(proxy: FaultProxy, tmp_path, exp: str, tag: str):
    """One eval of N samples through ringflowd -> proxy -> MLflow; flush
    while the sidecar still runs, then stop it.  (flush result, log)"""
    ring = f"/rf-pytest-ans-{tag}-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(proxy.url, ring, spool, exp)
    try:
        run_eval(eval_env(ring, spool, **sc.dest), tmp_path / "logs", "plain", str(N))
        f = flush(ring, spool)
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
        proxy.close()
    return f, log_text


def assert_everything_arrived(mlflow_server, exp: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    parents, children = runs_of(client, exp)
    assert len(parents) == 1 and len(children) == 1
    c = children[0]
    assert c.info.status == "FINISHED"
    assert len(history(client, c.info.run_id, "sample/includes")) == N
    assert len(history(client, c.info.run_id, "sample/total_time")) == N
    assert c.data.metrics["total_samples"] == N
    assert c.data.params["dataset.samples"] == str(N)
    return c


def test_html_503_from_a_proxy_waits_and_drops_nothing(mlflow_server, tmp_path, exp_name):
    """6 s of a proxy's HTML 503 from the first log-batch on (runs/create and
    runs/update included), then the server is back: every entity arrives,
    none is counted as rejected, flush succeeds.  (The old code took the HTML
    503 for a verdict, split the batches and dropped every entity.)"""
    proxy = FaultProxy(mlflow_server, outage=(503, 6.0, "text/html", HTML_503))
    f, log_text = eval_through(proxy, tmp_path, exp_name, "503")
    assert proxy.injected[503] >= 1, "the outage never happened"
    assert f.returncode == 0, f.stdout + f.stderr
    assert counter(log_text, "rejected") == 0, log_text[-3000:]
    assert counter(log_text, "artifacts_failed") == 0, log_text[-3000:]
    assert counter(log_text, "retries") >= 1
    assert_everything_arrived(mlflow_server, exp_name)
    # Retried with backoff, not hammered: a 6 s window takes tens of
    # attempts at most (the old code sent hundreds of single-entity requests).
    assert proxy.injected[503] < 60, proxy.injected


def test_401_waits_warns_and_drops_nothing(mlflow_server, tmp_path, exp_name):
    """5 s of 401 (an auth layer refusing the credentials), then they work:
    nothing is dropped, and the failure is a WARN line naming the server."""
    proxy = FaultProxy(mlflow_server, outage=(401, 5.0, "text/plain", "You are not authenticated."))
    f, log_text = eval_through(proxy, tmp_path, exp_name, "401")
    assert proxy.injected[401] >= 1, "the outage never happened"
    assert f.returncode == 0, f.stdout + f.stderr
    assert counter(log_text, "rejected") == 0, log_text[-3000:]
    assert counter(log_text, "artifacts_failed") == 0, log_text[-3000:]
    warn = [ln for ln in log_text.splitlines() if "level=warn" in ln and "auth failing for" in ln]
    assert warn and proxy.url.replace("http://", "") in warn[0], log_text[-3000:]
    assert len(warn) <= 3  # rate-limited, not one per attempt
    assert_everything_arrived(mlflow_server, exp_name)


def test_invalid_entity_is_dropped_alone_and_flush_says_so(mlflow_server, tmp_path, exp_name):
    """A param whose value MLflow already holds differently is refused by the
    real server (400 INVALID_PARAMETER_VALUE): that param alone is dropped and
    counted, everything else arrives, and flush exits non-zero naming the
    counter."""
    proxy = FaultProxy(mlflow_server, conflict_param="dataset.samples")
    f, log_text = eval_through(proxy, tmp_path, exp_name, "bad")
    assert proxy.conflicted, "the conflicting param was never sent"
    assert counter(log_text, "rejected") == 1, log_text[-3000:]
    assert "Changing param values is not allowed" in log_text
    assert f.returncode == 4, f.stdout + f.stderr
    assert "rejected 1" in f.stderr, f.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    parents, children = runs_of(client, exp_name)
    c = children[0]
    assert c.info.status == "FINISHED"
    assert c.data.params["dataset.samples"] == "changed-by-the-test"
    assert len(history(client, c.info.run_id, "sample/includes")) == N
    assert c.data.params["task"] == "plain"


class Recorder:
    """A loopback HTTP listener that answers 200 to anything and records the
    Authorization header of every request (an artifact store on another
    origin than the tracking server)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[tuple[str, str, str | None]] = []
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                rec.seen.append((self.command, self.path, self.headers.get("Authorization")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_POST = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


import pytest  # noqa: E402


@pytest.mark.parametrize("creds", ["token", "basic"])
def test_credentials_never_go_to_another_origin(mlflow_server, tmp_path, exp_name, creds):
    """The server names an artifact URI on another origin (plain http, another
    port): the bearer token / basic credentials go to the tracking server only;
    the uploads are refused and counted, flush exits non-zero naming them."""
    import base64

    rec = Recorder()
    proxy = FaultProxy(mlflow_server, artifact_uri_to=f"{rec.url}/artifacts")
    secret = f"rf-canary-{os.getpid()}-{time.time_ns()}"
    extra = ({"MLFLOW_TRACKING_TOKEN": secret} if creds == "token" else
             {"MLFLOW_TRACKING_USERNAME": "rfuser", "MLFLOW_TRACKING_PASSWORD": secret})
    ring = f"/rf-pytest-ans-cred-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(proxy.url, ring, spool, exp_name, **extra)
    try:
        run_eval(eval_env(ring, spool, **sc.dest), tmp_path / "logs", "plain", "5")
        f = flush(ring, spool)
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
        proxy.close()
        rec.close()
    expect = (f"Bearer {secret}" if creds == "token" else
              "Basic " + base64.b64encode(f"rfuser:{secret}".encode()).decode())
    # The tracking server got the credentials on every request ...
    assert proxy.auth_seen and all(a == expect for a in proxy.auth_seen), set(proxy.auth_seen)
    # ... the other origin never did (nor anything else carrying the secret).
    assert all(a is None or secret not in a for _, _, a in rec.seen), rec.seen
    leaked = [a for _, _, a in rec.seen if a]
    assert not leaked, leaked
    assert counter(log_text, "artifacts_failed") >= 1
    assert "refused to send MLflow credentials to http://127.0.0.1:" in log_text
    assert f.returncode == 4 and "creds_refused" in f.stderr and "artifacts_failed" in f.stderr, \
        f.stdout + f.stderr
