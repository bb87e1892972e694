"""Producers must not grow ringflowd's memory without bound (issue 15, item
11): 300,000 unique metric names, and a trace whose root never ends holding
100,000 children, and an Inspect log whose tables hold 100,000 events (the
task's artifacts are built from it at its end).  ringflowd's peak heap (the largest RssAnon seen, sampled
every 20 ms: VmHWM also counts the 16 MiB shared ring and the spill files it
maps, which no producer can grow) stays under 64 MiB, and what it refused to
hold is counted (status and flush say so).  A real ringflowd
and a real MLflow server; the producer is tests/python/rf_flood_prog.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_hook import eval_env
from test_sidecar import RINGFLOWD, Sidecar, cleanup, exp_name  # noqa: F401 (fixture)

PROG = Path(__file__).with_name("rf_flood_prog.py")
LIMIT = 64 << 20


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


class AnonPeak:
    """The largest RssAnon of `pid`, sampled every 20 ms in a thread."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peak, self.done = pid, 0, threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, proc_kb(self.pid, "RssAnon"))
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    def stop(self) -> int:
        self.done.set()
        self.t.join()
        return self.peak


def ctl(ring: str, spool: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
    return subprocess.run([str(RINGFLOWD), *args], env=env, capture_output=True, text=True,
                          timeout=600)


class JobsSeen:
    """The most artifact_jobs `ringflowd status --json` showed, polled in a
    thread until stop()."""

    def __init__(self, ring: str, spool: Path):
        import threading

        self.ring, self.spool, self.most, self.done = ring, spool, 0, threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done.is_set():
            p = ctl(self.ring, self.spool, "status", "--json", "--interval", "0")
            if p.returncode == 0:
                jobs = json.loads(p.stdout)["sidecar"].get("artifact_jobs", 0)
                self.most = max(self.most, jobs)
            time.sleep(0.02)

    def stop(self) -> int:
        self.done.set()
        self.t.join()
        return self.most


def flood(mlflow_server, tmp_path, exp: str, *args: str, **extra: str):
    ring = f"/rf-pytest-mem-{args[0]}-{os.getpid()}"
    spool = tmp_path / "spool"
    extra.setdefault("INSPECT_MLFLOW_LOG_ARTIFACTS", "false")
    sc = Sidecar(mlflow_server, ring, spool, exp, **extra)
    anon = AnonPeak(sc.proc.pid)
    try:
        p = subprocess.run([sys.executable, str(PROG), *args], env=eval_env(ring, spool, **extra),
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-3000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["ok"], out
        # Polled only where a task's artifacts are built.
        jobs = JobsSeen(ring, spool) if extra["INSPECT_MLFLOW_LOG_ARTIFACTS"] == "true" else None
        f = ctl(ring, spool, "flush", "--quiet", "--timeout", "500")
        if jobs:
            out["artifact_jobs_seen"] = jobs.stop()
        status = json.loads(ctl(ring, spool, "status", "--json", "--interval", "0").stdout)
        peak = anon.stop()
        print(f"peak RssAnon {peak >> 20} MiB, VmHWM {proc_kb(sc.proc.pid, 'VmHWM') >> 20} MiB")
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
    return out, f, status["sidecar"], peak, log_text


def test_unique_metric_names_are_capped(mlflow_server, tmp_path, exp_name):
    out, f, s, peak, log_text = flood(mlflow_server, tmp_path, exp_name, "names", "3000", "100")
    assert out["names"] == 300_000
    assert peak < LIMIT, f"ringflowd peak RssAnon {peak >> 20} MiB"
    # What was not held is counted, shown and fails the flush.
    assert s["lost"]["keys_capped"] >= 300_000 - 2_000, s["lost"]
    assert f.returncode == 4 and "keys_capped" in f.stderr, f.stdout + f.stderr


def test_never_ended_root_with_100k_children(mlflow_server, tmp_path, exp_name):
    out, f, s, peak, log_text = flood(mlflow_server, tmp_path, exp_name, "spans", "100000",
                                      MLFLOW_INSPECT_TRACING="true")
    assert out["children"] == 100_000
    assert peak < LIMIT, f"ringflowd peak RssAnon {peak >> 20} MiB"
    lost = s["lost"]
    # Every child is in MLflow or counted: refused by the bound (spans_capped),
    # or, once the trace was closed (bound or timeout) and sent, as late.
    accounted = s["spans_sent"] + lost["spans_capped"] + lost["traces_late"]
    assert accounted >= 100_000, s
    # flush fails exactly when something was not sent.
    assert (f.returncode == 4) == (s["spans_sent"] < 100_000), (f.stdout + f.stderr, s)


@pytest.mark.parametrize("fmt", ["eval", "json"])
def test_artifact_tables_of_a_large_log_stay_on_disk(mlflow_server, tmp_path, exp_name, fmt):
    """2,000 samples of 50 events: events.json is about 100 MB of text and the
    log itself about 45 MB (.eval) or 110 MB (.json, indented).  The sidecar
    copies the log into its spool directory, reads it a sample at a time
    (the .json log too: one document, never parsed whole), writes every
    table there row by row and uploads from those files: its heap does not
    hold them."""
    from mlflow import MlflowClient

    logs = tmp_path / "logs"
    logs.mkdir()
    out, f, s, peak, log_text = flood(mlflow_server, tmp_path, exp_name, "log", "2000", "50",
                                      str(logs), fmt, INSPECT_MLFLOW_LOG_ARTIFACTS="true")
    assert f.returncode == 0, f.stdout + f.stderr
    assert peak < LIMIT, f"ringflowd peak RssAnon {peak >> 20} MiB"
    assert s["lost"].get("artifacts_failed", 0) == 0, s
    c = MlflowClient(mlflow_server)
    run = [r for r in c.search_runs([c.get_experiment_by_name(exp_name).experiment_id])
           if r.data.tags.get("inspect.eval_id") == out["eval_id"] or
           r.data.params.get("eval_id") == out["eval_id"]]
    assert run, "no task run"
    sizes = {a.path: a.file_size for a in c.list_artifacts(run[0].info.run_id, "inspect")}
    # The log is read off the loop, and status says so meanwhile.
    assert out["artifact_jobs_seen"] == 1, out
    assert sizes["inspect/events.json"] > 90 << 20, sizes
    assert sizes["inspect/messages.json"] > 1 << 20, sizes
    logs_up = {a.path: a.file_size for a in c.list_artifacts(run[0].info.run_id, "inspect/logs")}
    assert logs_up == {f"inspect/logs/flood.{fmt}": out["log_bytes"]}, logs_up
    # events_count, filled in from the log at the task's end, for every row.
    path = c.download_artifacts(run[0].info.run_id, "inspect/samples.json", str(tmp_path))
    table = json.loads(Path(path).read_text())
    col = table["columns"].index("events_count")
    assert len(table["data"]) == 2000
    assert {r[col] for r in table["data"]} == {50}
    # The log without its samples, keys after "samples" included.
    path = c.download_artifacts(run[0].info.run_id, f"eval_logs/{out['eval_id']}.json",
                                str(tmp_path))
    header = json.loads(Path(path).read_text())
    assert header["eval"]["eval_id"] == out["eval_id"] and "samples" not in header, header
    if fmt == "json":
        assert header["reductions"][0]["scorer"] == "match", header
