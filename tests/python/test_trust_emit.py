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


def _blocked_str(tmp_path, tag: str, text: str, write_slow, write_fast):
    """write_slow(p, value) in a thread, with a value whose __str__ blocks
    (returning `text` once released); meanwhile write_fast(p) from this
    thread.  The ring's dump while __str__ blocks, the dump after, and what
    write_slow returned."""
    ring = f"/rf-pytest-{tag}-{os.getpid()}"
    p = _ringflow.Producer(ring=ring, spool_dir=str(tmp_path / "spool"))
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def __str__(self) -> str:
            entered.set()
            release.wait(120)
            return text

    results = []
    t = threading.Thread(target=lambda: results.append(write_slow(p, Slow())))
    t.start()
    try:
        assert entered.wait(60), "__str__ was never called"
        write_fast(p)  # another producer thread
        first = subprocess.run([str(DUMP), "--ring", ring, "--idle-ms", "500"],
                               capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, RINGFLOW_SPOOL_DIR=str(tmp_path / "spool")))
    finally:
        release.set()
        t.join(120)
    try:
        later = subprocess.run([str(DUMP), "--ring", ring, "--idle-ms", "300"],
                               capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f"/dev/shm{ring}")
    return first, later, results


def test_slow_str_does_not_hold_other_producers_records(tmp_path):
    def fast(p):
        assert p.emit(11, {"marker": "fast-record"})

    first, d, results = _blocked_str(tmp_path, "slowstr", "slow-value",
                                     lambda p, v: p.emit(11, {"v": v, "n": 1}), fast)
    assert "fast-record" in first.stdout, first.stdout + first.stderr
    assert results == [True]
    # The slow record is written too, with its str().
    recs = [json.loads(line) for line in d.stdout.splitlines() if line.startswith("{")]
    assert any("slow-value" in json.dumps(r) for r in recs), d.stdout + d.stderr


def test_slow_str_in_span_inputs_does_not_hold_other_records(tmp_path):
    """The same for the tracing records (span start, end, event, update):
    inputs whose __str__ blocks must not keep another thread's span from
    the consumer."""
    from ringflow.tracing import LiveSpan

    def slow_span(p, v):
        s = p.span_start(LiveSpan, None, "slow-span", "UNKNOWN", {"v": v}, None, None)
        s._finish(None, False)

    def fast(p):
        fast = p.span_start(LiveSpan, None, "fast-span", "UNKNOWN", {"x": 1}, None, None)
        fast._finish({"y": 2}, True)

    first, d, _ = _blocked_str(tmp_path, "slowspan", "slow-input", slow_span, fast)
    assert "fast-span" in first.stdout, first.stdout + first.stderr
    assert "slow-input" in d.stdout, d.stdout + d.stderr
