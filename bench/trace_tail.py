"""How long after a traced eval ends is everything in MLflow?

    .venv/bin/python bench/trace_tail.py [--samples 20,56,300] [--repeats 1]
                                         [--backend sqlite|postgres] [--workers 1,4]

For each size: a fresh `mlflow server` (sqlite, --workers W), ringflowd
(build/release, or RF_RINGFLOWD), and a real Inspect eval of N one-call
mockllm samples (tests/python/rf_evals.py `plain`) with
MLFLOW_INSPECT_TRACING=true.  The eval's end is when its process returns;
"complete" is the first poll (every 100 ms) at which the task run and its
parent read FINISHED (ringflow holds FINISHED until the run's traces and
assessments are in) and the experiment lists N traces in state OK (their
infos only: fetching every trace's spans would cost the server ~2 s per poll
at 300 samples and be measured as waiting).  Prints one JSON line
per run: {"bench":"trace_tail","samples":N,"eval_s":...,"complete_after_end_s":...,
"server_cpu_s":...} (server_cpu_s: the MLflow server's process group, plus the
PostgreSQL cluster's processes with --backend postgres, from the eval's start to
complete).  The goal (issue 16): <= 2 s for a few hundred samples on an idle server.

--backend postgres runs each trial's server on a fresh PostgreSQL cluster
(Debian's postgresql, tests/python/pgserver.py) and --workers gives the
server's `--workers` (ringflowd is told nothing: it measures how many requests the
server takes, trace/rf_trace_pace.c) (issue 17: scale out on the engine users already run; the speed-up of 4 workers over
one is the ratio of complete_after_end_s + eval_s between the two).

--drain runs the eval before ringflowd starts (its records wait in the ring and
the producers' spill files), then starts ringflowd: complete_after_end_s is
then from ringflowd's start, so it measures what the sidecar and the server
sustain together without the eval competing for the same 2 cores (the
PostgreSQL --workers comparison: does the sidecar keep enough requests in
flight to use them?).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVALS = REPO / "tests" / "python" / "rf_evals.py"
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "bench"))
from e2e import cpu_where, free_port, group_cpu  # noqa: E402  (the one copy of each)


def pg_cpu() -> float:
    """CPU seconds of every live PostgreSQL process on the host (the trial's
    cluster is the only one a bench run starts)."""
    return cpu_where(lambda _g, comm: comm.startswith("postgres"))


def start_server(root: Path, store: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             store, "--artifacts-destination",
                             str(root / "artifacts"), "--serve-artifacts", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)],
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


def one(samples: int, backend: str, workers: int, drain: bool = False) -> dict:
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="rf-tail-") as d:
        root = Path(d)
        pg = None
        if backend == "postgres":
            from pgserver import PgServer

            pg = PgServer(free_port()).start()
            store = pg.uri
        else:
            store = f"sqlite:///{root}/mlflow.db"
        server, uri = start_server(root, store, workers)
        ring = f"/rf-bench-tail-{os.getpid()}"
        exp = f"tail-{samples}-{time.time_ns()}"
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, RINGFLOW_RING=ring,
                   RINGFLOW_SPOOL_DIR=str(root / "spool"), MLFLOW_EXPERIMENT_NAME=exp)
        daemon = None

        def start_daemon() -> subprocess.Popen:
            p = subprocess.Popen([os.environ.get("RF_RINGFLOWD") or str(REPO / "build/release/bin/ringflowd")],
                                 env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(root / "ringflowd.log", "ab"))
            while "serving ring" not in (root / "ringflowd.log").read_text():
                time.sleep(0.05)
            return p

        try:
            if not drain:
                daemon = start_daemon()
            eenv = dict(env, RINGFLOW_AUTOSTART="0", MLFLOW_INSPECT_TRACING="true")
            cpu0 = group_cpu(server.pid) + (pg_cpu() if pg else 0.0)
            t0 = time.time()
            subprocess.run([sys.executable, str(EVALS), "plain", str(root / "logs"), str(samples)],
                           env=eenv, check=True, capture_output=True)
            end = time.time()
            if drain:
                cpu0 = group_cpu(server.pid) + (pg_cpu() if pg else 0.0)
                daemon = start_daemon()
                end = time.time()
            client = MlflowClient(uri)
            while True:
                e = client.get_experiment_by_name(exp)
                runs = client.search_runs([e.experiment_id]) if e else []
                if len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs):
                    n, token = 0, None
                    while True:
                        # Infos only: fetching every trace's spans costs the server
                        # ~2 s per poll at 300 samples, which would be measured as
                        # waiting.  OK is set by the request that stores the root span.
                        page = client.search_traces(locations=[e.experiment_id], max_results=500,
                                                    page_token=token, include_spans=False)
                        n += sum(1 for t in page if t.info.state.value == "OK")
                        token = page.token
                        if not token:
                            break
                    if n >= samples:
                        break
                if time.time() - end > 600:
                    break
                time.sleep(0.1)
            done = time.time()
            cpu = group_cpu(server.pid) + (pg_cpu() if pg else 0.0) - cpu0
        finally:
            if daemon:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=120)
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
            if pg:
                pg.stop()
            if os.path.exists(f"/dev/shm{ring}"):  # the ring outlives its users
                os.unlink(f"/dev/shm{ring}")
    return {"bench": "trace_tail", "samples": samples, "backend": backend, "workers": workers,
            "drain": drain,
            "eval_s": round(end - t0, 2), "complete_after_end_s": round(done - end, 2),
            "server_cpu_s": round(cpu, 1), "load": [round(x, 1) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", default="20,56,300")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--workers", default="1", help="server --workers, a list: 1,4")
    ap.add_argument("--drain", action="store_true", help="eval first, then ringflowd (see above)")
    a = ap.parse_args()
    for _ in range(a.repeats):
        for n in (int(x) for x in a.samples.split(",")):
            for w in (int(x) for x in a.workers.split(",")):  # interleaved: drift hits all
                print(json.dumps(one(n, a.backend, w, a.drain)), flush=True)


if __name__ == "__main__":
    main()
