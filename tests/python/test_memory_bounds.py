"""Producers must not grow ringflowd's memory without bound (issue 15, item
11): 300,000 unique metric names, and a trace whose root never ends holding
100,000 children.  ringflowd's peak heap (the largest RssAnon seen, sampled
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


def flood(mlflow_server, tmp_path, exp: str, *args: str, **extra: str):
    ring = f"/rf-pytest-mem-{args[0]}-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp, INSPECT_MLFLOW_LOG_ARTIFACTS="false", **extra)
    anon = AnonPeak(sc.proc.pid)
    try:
        p = subprocess.run([sys.executable, str(PROG), *args], env=eval_env(ring, spool, **extra),
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-3000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["ok"], out
        f = ctl(ring, spool, "flush", "--quiet", "--timeout", "500")
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
