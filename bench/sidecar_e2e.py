"""ringflowd against a real MLflow server: a 1,000-sample eval end to end.

Starts `mlflow server` (SQLite, one worker) on a free loopback port, a
counting proxy in front of it, and ringflowd; runs bench/hook_eval.py (mockllm,
a tool call per sample, two scorers) with the hook on; then measures:
  http_requests       every request ringflowd made (counted at the proxy)
  metrics_per_request metrics sent / log-batch requests
  visible_after_s     eval end -> the task run is FINISHED with its task
                      metrics and every sample metric queryable
  sidecar_cpu_s, sidecar_peak_rss_mb  of the ringflowd process
Prints one JSON line ("bench":"sidecar","mode":"e2e").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from faultproxy import FaultProxy  # noqa: E402  (a counting proxy when no fault is set)

VENV = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid: int) -> tuple[float, float]:
    """(cpu seconds, peak RSS MiB) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = 0.0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return cpu, hwm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--max-samples", type=int, default=100)
    a = ap.parse_args()
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        # No model price-catalog fetch (an offline server stalls ~7 s on it), no
        # job runner processes (idle, they hold ~1.4 GB), as tests/python/conftest.py.
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                   MLFLOW_MODEL_CATALOG_URI="", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        server = subprocess.Popen(
            [str(VENV / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
             "--artifacts-destination", str(tmp / "artifacts"), "--serve-artifacts",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        proxy = None
        sidecar = None
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"{uri}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            proxy = FaultProxy(uri)
            ring = f"/rf-bench-e2e-{os.getpid()}"
            spool = tmp / "spool"
            spool.mkdir()
            exp = "bench-e2e"
            sc_env = dict(os.environ, MLFLOW_TRACKING_URI=proxy.url, RINGFLOW_RING=ring,
                          RINGFLOW_SPOOL_DIR=str(spool), MLFLOW_EXPERIMENT_NAME=exp)
            log = open(tmp / "ringflowd.log", "wb")
            sidecar = subprocess.Popen([str(REPO / "build/release/bin/ringflowd")], env=sc_env,
                                       stdout=subprocess.DEVNULL, stderr=log)
            time.sleep(0.5)
            ev_env = dict(sc_env, RINGFLOW_AUTOSTART="0", INSPECT_LOG_DIR=str(tmp / "logs"))
            p = subprocess.run([sys.executable, str(REPO / "bench/hook_eval.py"), str(a.samples),
                                str(a.max_samples), str(tmp / "logs")],
                               env=ev_env, capture_output=True, text=True, timeout=3600)
            if p.returncode:
                raise SystemExit(p.stderr[-3000:])
            eval_s = float(p.stdout.strip().splitlines()[-1])
            t_end = time.time()
            client = MlflowClient(uri)
            visible = None
            while time.time() - t_end < 300:
                e = client.get_experiment_by_name(exp)
                runs = client.search_runs([e.experiment_id]) if e else []
                child = next((r for r in runs if "mlflow.parentRunId" in r.data.tags), None)
                if (child and child.info.status == "FINISHED"
                        and "total_samples" in child.data.metrics
                        and len(client.get_metric_history(child.info.run_id, "sample/match")) == a.samples
                        and all(r.info.status == "FINISHED" for r in runs)):
                    visible = time.time() - t_end
                    break
                time.sleep(0.05)
            cpu, rss = proc_stat(sidecar.pid)
            sidecar.send_signal(signal.SIGTERM)
            sidecar.wait(timeout=60)
            text = (tmp / "ringflowd.log").read_text()
            # ringflowd's exit summary spans several logfmt lines (counters,
            # spool, traces): the last value of each counter in the log.
            stat = dict(re.findall(r"\b(\w+)=(\d+)\b", text))
            batches = proxy.counts["/api/2.0/mlflow/runs/log-batch"]
            print(json.dumps({
                "bench": "sidecar", "mode": "e2e", "samples": a.samples,
                "max_samples": a.max_samples, "eval_s": round(eval_s, 3),
                "http_requests": sum(proxy.counts.values()),
                "requests_by_path": {k.rsplit("/", 2)[-2] + "/" + k.rsplit("/", 1)[-1]: v
                                     for k, v in proxy.counts.items()},
                "metrics": int(stat.get("metrics", 0)),
                "metrics_per_request": round(int(stat.get("metrics", 0)) / max(batches, 1), 1),
                "visible_after_s": round(visible, 3) if visible is not None else None,
                "sidecar_cpu_s": round(cpu, 3), "sidecar_peak_rss_mb": round(rss, 1),
            }), flush=True)
        finally:
            if sidecar and sidecar.poll() is None:
                sidecar.kill()
            if proxy:
                proxy.close()
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            if os.path.exists(f"/dev/shm/rf-bench-e2e-{os.getpid()}"):
                os.unlink(f"/dev/shm/rf-bench-e2e-{os.getpid()}")


if __name__ == "__main__":
    main()
