"""Producer.emit() runs no Python code while it holds ring space (issue 15,
suspicion): a value whose __str__ is slow (here: blocked until the test
releases it) used to be converted inside the record's claim, so the ring's
consumer could not pass that claim and every other producer's records
waited behind it.  Now values are converted before the claim: while one
thread sits in __str__, another thread's record reaches the consumer."""

from __future__ import annotations

import json
import os
import subprocess
import threading

from ringflow import _ringflow
from test_security import DUMP


def test_slow_str_does_not_hold_other_producers_records(tmp_path):
    ring = f"/rf-pytest-slowstr-{os.getpid()}"
    p = _ringflow.Producer(ring=ring, spool_dir=str(tmp_path / "spool"))
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def __str__(self) -> str:
            entered.set()
            release.wait(120)
            return "slow-value"

    results = []
    t = threading.Thread(target=lambda: results.append(p.emit(11, {"v": Slow(), "n": 1})))
    t.start()
    try:
        assert entered.wait(60), "__str__ was never called"
        assert p.emit(11, {"marker": "fast-record"})  # another producer thread
        d = subprocess.run([str(DUMP), "--ring", ring, "--idle-ms", "500"],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, RINGFLOW_SPOOL_DIR=str(tmp_path / "spool")))
        first = d.stdout
    finally:
        release.set()
        t.join(120)
    try:
        assert "fast-record" in first, first + d.stderr
        assert results == [True]
        # The slow record is written too, with its str().
        d = subprocess.run([str(DUMP), "--ring", ring, "--idle-ms", "300"],
                           capture_output=True, text=True, timeout=120)
        recs = [json.loads(line) for line in d.stdout.splitlines() if line.startswith("{")]
        assert any("slow-value" in json.dumps(r) for r in recs), d.stdout + d.stderr
    finally:
        os.unlink(f"/dev/shm{ring}")


def test_slow_str_in_span_inputs_does_not_hold_other_records(tmp_path):
    """The same for the tracing records (span start, end, event, update):
    inputs whose __str__ blocks must not keep another thread's span from
    the consumer."""
    from ringflow.tracing import LiveSpan

    ring = f"/rf-pytest-slowspan-{os.getpid()}"
    p = _ringflow.Producer(ring=ring, spool_dir=str(tmp_path / "spool"))
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def __str__(self) -> str:
            entered.set()
            release.wait(120)
            return "slow-input"

    def slow_span():
        s = p.span_start(LiveSpan, None, "slow-span", "UNKNOWN", {"v": Slow()}, None, None)
        s._finish(None, False)

    t = threading.Thread(target=slow_span)
    t.start()
    try:
        assert entered.wait(60), "__str__ was never called"
        fast = p.span_start(LiveSpan, None, "fast-span", "UNKNOWN", {"x": 1}, None, None)
        fast._finish({"y": 2}, True)
        d = subprocess.run([str(DUMP), "--ring", ring, "--idle-ms", "500"],
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, RINGFLOW_SPOOL_DIR=str(tmp_path / "spool")))
        first = d.stdout
    finally:
        release.set()
        t.join(120)
    try:
        assert "fast-span" in first, first + d.stderr
        d = subprocess.run([str(DUMP), "--ring", ring, "--idle-ms", "300"],
                           capture_output=True, text=True, timeout=120)
        assert "slow-input" in d.stdout, d.stdout + d.stderr
    finally:
        os.unlink(f"/dev/shm{ring}")
