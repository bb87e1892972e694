"""Load: 8 producer processes x 4 threads through the ring and one ringflowd
into an MLflow server on PostgreSQL with 4 workers, every record accounted
for in what MLflow shows.

The workload (bench/loadgen.c) makes each thread one Inspect-like task whose
records are model_usage (ringflowd sums their tokens per task into
usage/load/model/*_tokens) and, every 1000th, a sample_end (three metric
rows).  Token counts vary per record, so one lost or doubled record changes a
sum: the sums and sample counts in MLflow must equal what the producers
wrote, exactly.

Size: RF_LOAD_RECORDS records per thread (default 25,000: 800 k in all, which
keeps `make test` short); `make load` runs the full 1,000,000 (32 M).  The
figures (records/s, wall time, ringflowd's peak RSS) are printed and written
to build/logs/load-<records>.json; nothing is asserted about time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import MlflowServer, _free_port
from pgserver import PgServer
from test_hook import REPO
from test_sidecar import Sidecar, cleanup, runs_of

LOADGEN = Path(os.environ.get("RF_LOADGEN") or REPO / "build" / "release" / "bench" / "loadgen")
PROCS, THREADS = 8, 4
RECORDS = int(os.environ.get("RF_LOAD_RECORDS", "25000"))
SAMPLE_EVERY = 1000
MODEL_KEY = "usage/load/model"


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


def vm_hwm_kib(pid: int) -> int:
    """Peak RSS, file-backed pages included (spill files are ingested from a
    read-only mapping, so a large spill file shows here)."""
    return status_kib(pid, "VmHWM:")


def counters(log_text: str) -> dict[str, int]:
    """The last values of ringflowd's numeric counters in its log."""
    out: dict[str, int] = {}
    for k, v in re.findall(r"\b([a-z_]+)=(\d+)\b", log_text):
        out[k] = int(v)
    return out


def wait_all_finished(client, experiment: str, want: int, timeout: float) -> list:
    deadline = time.time() + timeout
    runs: list = []
    while time.time() < deadline:
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
        if len(runs) == want and all(r.info.status == "FINISHED" for r in runs):
            break
        time.sleep(1.0)
    return runs


def check_tasks(client, experiment: str, tasks: list[dict]) -> None:
    """Every task's sums and sample count in MLflow equal what was written."""
    parents, children = runs_of(client, experiment)
    mine = {t["run_id"] for t in tasks}
    parents = [r for r in parents if r.data.tags.get("inspect.run_id") in mine]
    children = [r for r in children if r.data.tags.get("inspect.run_id") in mine]
    by_eval = {c.data.tags["inspect.eval_id"]: c for c in children}
    assert set(by_eval) == {t["eval_id"] for t in tasks}, "a task run is missing"
    assert len(children) == len(tasks)  # and none twice
    assert len(parents) == len({t["run_id"] for t in tasks})
    for t in tasks:
        c = by_eval[t["eval_id"]]
        assert c.info.status == "FINISHED", t["eval_id"]
        m = c.data.metrics
        for f in ("input_tokens", "output_tokens", "total_tokens"):
            # (no usage records at all: no usage metric, which reads as 0)
            assert m.get(f"{MODEL_KEY}/{f}", 0.0) == t[f], (t["eval_id"], f)
        hist = client.get_metric_history(c.info.run_id, "sample/match")
        assert len(hist) == t["samples_ok"], t["eval_id"]
        assert sorted(h.step for h in hist) == list(range(t["samples_ok"]))
        assert m["completed_samples"] == t["samples_ok"]


@pytest.mark.skipif(not LOADGEN.exists(), reason="bench/loadgen not built (make)")
def test_load_8x4_through_ring_and_sidecar_to_postgres(tmp_path):
    from mlflow.tracking import MlflowClient

    pg = PgServer(_free_port()).start()
    server = None
    ring = f"/rf-pytest-load-{os.getpid()}"
    spool = tmp_path / "spool"
    exp = f"rf-load-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = None
    try:
        server = MlflowServer(tmp_path / "mlflow", backend_uri=pg.uri, workers=4).start()
        sc = Sidecar(server.uri, ring, spool, exp)
        env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
        t0 = time.time()
        p = subprocess.run([str(LOADGEN), f"load{os.getpid()}", str(PROCS), str(THREADS),
                            str(RECORDS), str(SAMPLE_EVERY)], env=env, capture_output=True,
                           text=True, timeout=3600)
        t_produced = time.time() - t0
        assert p.returncode == 0, p.stderr[-3000:]
        lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
        tasks = [x for x in lines if "eval_id" in x]
        assert len(tasks) == PROCS * THREADS
        client = MlflowClient(server.uri)
        wait_all_finished(client, exp, PROCS + PROCS * THREADS, timeout=600 + RECORDS / 500)
        t_done = time.time() - t0
        rss_kib = vm_hwm_kib(sc.proc.pid)
        anon_kib = status_kib(sc.proc.pid, "RssAnon:")
        log_text = sc.stop()
        check_tasks(client, exp, tasks)
    finally:
        if sc:
            cleanup(sc, ring)
        if server:
            server.stop()
        pg.stop()
    total = PROCS * THREADS * RECORDS
    written = sum(t["usage_ok"] + t["samples_ok"] for t in tasks)
    failed = sum(t["failed"] for t in tasks)
    assert failed == 0 and written == total  # every record went into the ring or a spill file
    c = counters(log_text)
    lifecycle = 2 * PROCS + 2 * PROCS * THREADS
    assert c["records"] == total + lifecycle  # each exactly once
    # (http_failed counts final non-2xx answers, which include the expected
    # 404 of looking the experiment up before it exists: not a loss.)
    for k in ("malformed", "rejected", "ring_dropped", "ring_abandoned", "journal_errors",
              "ring_spill_failed", "ring_spill_corrupt", "journal_corrupt", "artifacts_failed"):
        assert c[k] == 0, (k, log_text[-2000:])
    fig = {"bench": "load", "procs": PROCS, "threads": THREADS, "records": total,
           "produce_s": round(t_produced, 2), "wall_s": round(t_done, 2),
           "records_per_s": round(total / t_done), "sidecar_peak_rss_mib": round(rss_kib / 1024, 1),
           "sidecar_rss_anon_end_mib": round(anon_kib / 1024, 1),
           "ring_spilled": c.get("ring_spilled"), "metrics": c.get("metrics"),
           "batches": c.get("batches"), "requests": c.get("requests")}
    print(json.dumps(fig))
    logs = REPO / "build" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"load-{total}.json").write_text(json.dumps(fig) + "\n")
