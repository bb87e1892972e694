"""How long after a small traced eval ends is everything in MLflow?

    .venv/bin/python bench/trace_tail.py [--samples 20,56,300] [--repeats 1]

For each size: a fresh `mlflow server` (sqlite, one worker), ringflowd
(build/release, or RF_RINGFLOWD), and a real Inspect eval of N one-call
mockllm samples (tests/python/rf_evals.py `plain`) with
MLFLOW_INSPECT_TRACING=true.  The eval's end is when its process returns;
"complete" is the first poll (every 100 ms) at which the task run and its
parent read FINISHED (ringflow holds FINISHED until the run's traces and
assessments are in) and the experiment lists N traces.  Prints one JSON line
per run: {"bench":"trace_tail","samples":N,"eval_s":...,"complete_after_end_s":...}.
The goal (issue 16): <= 2 s for a few hundred samples on an idle server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVALS = REPO / "tests" / "python" / "rf_evals.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{root}/mlflow.db", "--artifacts-destination",
                             str(root / "artifacts"), "--serve-artifacts", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=open(root / "server.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True,
                            # Offline, the first span naming a provider makes the server
                            # fetch a price catalog (~7 s stall); the job runner's pollers
                            # only compete for the CPU.  Both off, as in the tests.
                            env=dict(os.environ, MLFLOW_MODEL_CATALOG_URI="",
                                     MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return proc, uri
        except OSError:
            time.sleep(0.25)
    raise SystemExit("mlflow server did not start")


def one(samples: int) -> dict:
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="rf-tail-") as d:
        root = Path(d)
        server, uri = start_server(root)
        ring = f"/rf-bench-tail-{os.getpid()}"
        exp = f"tail-{samples}-{time.time_ns()}"
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, RINGFLOW_RING=ring,
                   RINGFLOW_SPOOL_DIR=str(root / "spool"), MLFLOW_EXPERIMENT_NAME=exp)
        daemon = subprocess.Popen([os.environ.get("RF_RINGFLOWD") or str(REPO / "build/release/bin/ringflowd")],
                                  env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(root / "ringflowd.log", "wb"))
        try:
            while "serving ring" not in (root / "ringflowd.log").read_text():
                time.sleep(0.05)
            eenv = dict(env, RINGFLOW_AUTOSTART="0", MLFLOW_INSPECT_TRACING="true")
            t0 = time.time()
            subprocess.run([sys.executable, str(EVALS), "plain", str(root / "logs"), str(samples)],
                           env=eenv, check=True, capture_output=True)
            end = time.time()
            client = MlflowClient(uri)
            while True:
                e = client.get_experiment_by_name(exp)
                runs = client.search_runs([e.experiment_id]) if e else []
                if len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs):
                    n, token = 0, None
                    while True:
                        page = client.search_traces(locations=[e.experiment_id], max_results=500,
                                                    page_token=token)
                        n += len(page)
                        token = page.token
                        if not token:
                            break
                    if n >= samples:
                        break
                if time.time() - end > 600:
                    break
                time.sleep(0.1)
            done = time.time()
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    return {"bench": "trace_tail", "samples": samples, "eval_s": round(end - t0, 2),
            "complete_after_end_s": round(done - end, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", default="20,56,300")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    for _ in range(a.repeats):
        for n in (int(x) for x in a.samples.split(",")):
            print(json.dumps(one(n)), flush=True)


if __name__ == "__main__":
    main()
