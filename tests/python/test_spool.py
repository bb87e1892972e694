"""ringflowd's spool under faults: bounded while MLflow is away, a full disk,
a corrupt journal.  Producers are bench/loadgen (Inspect-like tasks whose
every record shows in MLflow as part of a per-task token sum or a sample
metric), so "nothing lost" is checked exactly against what they wrote."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import msgpack
import pytest

from conftest import MlflowServer
from test_load import LOADGEN, MODEL_KEY, check_tasks, counters, wait_all_finished
from test_ops import ctl, free_port, parse_prom, scrape, status_json, wait_for
from test_sidecar import Sidecar, cleanup

pytestmark = pytest.mark.skipif(not LOADGEN.exists(), reason="bench/loadgen not built (make)")


def loadgen(ring: str, spool: Path, tag: str, procs: int, threads: int, records: int,
            sample_every: int, wait: bool = True):
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
    cmd = [str(LOADGEN), tag, str(procs), str(threads), str(records), str(sample_every)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return finish(p) if wait else p


def finish(p: subprocess.Popen, timeout: float = 300) -> tuple[list[dict], dict]:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    retries = sum(x["lifecycle_retries"] for x in lines if "lifecycle_retries" in x)
    return [x for x in lines if "eval_id" in x], dict(lines[-1], lifecycle_retries=retries)


def make_ring(ring: str, spool: Path, capacity: int = 65536) -> None:
    import ringflow

    if os.path.exists(f"/dev/shm{ring}"):
        os.unlink(f"/dev/shm{ring}")
    ringflow.Producer(ring=ring, spool_dir=str(spool), capacity=capacity).close()


def wait_log(sc: Sidecar, pattern: str, timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = sc.log.read_text()
        if re.search(pattern, text):
            return text
        assert sc.proc.poll() is None, text[-3000:]
        time.sleep(0.1)
    pytest.fail(f"no {pattern!r} in ringflowd's log:\n{sc.log.read_text()[-3000:]}")


def check_all_but(client, exp: str, tasks: list[dict], lost: dict) -> None:
    """The eval's one task is in MLflow whole but for the one damaged
    record, whose usage (`lost`) is missing from the totals."""
    (t,) = tasks
    for f in ("input_tokens", "output_tokens", "total_tokens"):
        t[f] -= lost[f]
    t["usage_ok"] -= 1
    check_tasks(client, exp, tasks)


def gate_shown(ring: str, spool: Path, gate: str) -> dict | None:
    """`status --json` if it shows the intake gate as `gate`."""
    st = status_json(ring, spool, "--interval", "0")[1]
    return st if st.get("sidecar", {}).get("gate") == gate else None


@pytest.mark.parametrize("bound", ["spool", "memory"])
def test_bounded_while_mlflow_away(tmp_path, bound):
    """MLflow stopped, producers keep writing: ringflowd journals up to the
    bound (RINGFLOW_SPOOL_MAX_MB=1) or holds up to RINGFLOW_PENDING_MAX rows,
    then stops taking records (said once in its log, counted); the ring fills
    and producers spill to their own files, never waiting.  MLflow back: the
    gate opens and every record lands."""
    from mlflow.tracking import MlflowClient

    server = MlflowServer(tmp_path / "mlflow").start()
    ring = f"/rf-pytest-bound-{bound}-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    make_ring(ring, spool, capacity=1 << 20)
    exp = f"rf-bound-{bound}-{os.getpid()}-{time.time_ns() % 10**6}"
    extra = ({"RINGFLOW_SPOOL_MAX_MB": "1", "RINGFLOW_PENDING_MAX": "0"} if bound == "spool"
             else {"RINGFLOW_SPOOL_MAX_MB": "0", "RINGFLOW_PENDING_MAX": "300"})
    port = free_port()
    sc = Sidecar(server.uri, ring, spool, exp, RINGFLOW_METRICS_PORT=str(port), **extra)
    try:
        client = MlflowClient(server.uri)
        warm, _ = loadgen(ring, spool, f"warm{os.getpid()}{bound}", 1, 1, 100, 10)
        wait_all_finished(client, exp, 2, 60)  # the experiment exists, MLflow answered
        server.stop()
        # First producers: enough for the bound to be reached...
        tasks, _ = loadgen(ring, spool, f"bndA{os.getpid()}{bound}", 2, 2, 5000, 10)
        reason = "spool full" if bound == "spool" else "memory bound"
        wait_log(sc, reason, 60)
        # ...then more, which find the sidecar not taking records: they
        # fill the 1 MiB ring and spill, without waiting.
        t0 = time.time()
        more, summary = loadgen(ring, spool, f"bndB{os.getpid()}{bound}", 2, 2, 5000, 10)
        produce_s = time.time() - t0
        tasks += more
        assert list(spool.glob("spill-*")), "the ring should have filled and spilled"
        text = sc.log.read_text()
        assert text.count(reason) == 1  # said once, not per batch
        # Still held back (MLflow is away): status and /metrics say why.
        gate = "spool_full" if bound == "spool" else "memory"
        # (The snapshot is at most a loop pass old: wait for one taken
        # since the gate closed; it stays closed until MLflow is back.)
        st = wait_for(lambda: gate_shown(ring, spool, gate), 60, f"status to show gate {gate}")
        assert st["sidecar"][f"gate_{gate}"] >= 1 and st["sidecar"]["drained"] is False, st
        out = ctl(ring, spool, "status", "--interval", "0").stdout
        assert f"WARNING: taking no records from the ring ({reason}" in out, out
        m = parse_prom(scrape(port)[2])
        assert m[f'ringflow_intake_paused{{reason="{gate}"}}'] == 1, m
        assert m[f'ringflow_intake_pauses_total{{reason="{gate}"}}'] >= 1, m
        assert sum(v for k, v in m.items() if k.startswith("ringflow_intake_paused{")) == 1
        server.start()
        wait_all_finished(client, exp, 2 + 2 * (2 + 4), 180)
        st = wait_for(lambda: gate_shown(ring, spool, "open"), 60, "status to show gate open")
        assert st["sidecar"]["gate_closed_ms"] > 0, st
        assert parse_prom(scrape(port)[2])[f'ringflow_intake_paused{{reason="{gate}"}}'] == 0
        log_text = sc.stop()
        check_tasks(client, exp, tasks)
    finally:
        cleanup(sc, ring)
        server.stop()
    assert sum(t["failed"] for t in tasks) == 0
    c = counters(log_text)
    assert c["gate_spool_full" if bound == "spool" else "gate_memory"] >= 1
    assert "taking records from the ring again" in log_text
    for k in ("malformed", "ring_dropped", "ring_spill_failed", "journal_errors"):
        assert c[k] == 0, k
    print(json.dumps({"bench": f"bound-{bound}", "records": summary["records"],
                      "produce_s_mlflow_down": round(produce_s, 2),
                      "gate_closed_ms": c["gate_closed_ms"], "ring_spilled": c["ring_spilled"]}))


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"missing capability: cannot mount a tmpfs for the spool ({r.stderr.strip()})")


def test_spool_disk_full_then_space_returns(tmp_path, mlflow_server):
    """The spool is a 2 MiB tmpfs, filled up.  Journal writes fail: ringflowd
    logs it, counts it (journal_errors), keeps the batch in the ring and takes
    no more; the ring fills, producers' spills fail: counted (spill_failed),
    the producer gets -EIO for exactly those records.  Then the tmpfs grows:
    everything that was accepted (written to the ring) lands in MLflow,
    exactly; what failed is exactly what was counted; no crash."""
    from mlflow.tracking import MlflowClient

    spool = tmp_path / "spool"
    _mount_tmpfs(spool, "2m")
    ring = f"/rf-pytest-full-{os.getpid()}"
    exp = f"rf-full-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = None
    try:
        make_ring(ring, spool)
        sc = Sidecar(mlflow_server, ring, spool, exp, log_dir=tmp_path)
        client = MlflowClient(mlflow_server)
        filler = spool / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        assert shutil.disk_usage(spool).free < 65536
        p = loadgen(ring, spool, f"full{os.getpid()}", 1, 2, 5000, 100, wait=False)
        text = wait_log(sc, r"journal .* write failed \(No space left on device\)", 60)
        time.sleep(2)  # producers meet a full ring and a full disk
        assert sc.proc.poll() is None, "ringflowd must not crash on a full disk"
        assert "journal not writable" in text
        filler.unlink()
        subprocess.run(["mount", "-o", "remount,size=64m", str(spool)], check=True)
        tasks, summary = finish(p)
        wait_all_finished(client, exp, 1 + 2, 120)
        log_text = sc.stop()
        check_tasks(client, exp, tasks)  # every accepted record, exactly
    finally:
        if sc:
            cleanup(sc, ring)
        subprocess.run(["umount", "-l", str(spool)], capture_output=True)
    c = counters(log_text)
    failed = sum(t["failed"] for t in tasks)
    ok = sum(t["usage_ok"] + t["samples_ok"] for t in tasks)
    assert failed > 0, "the full disk should have cost some records"
    assert ok + failed == 2 * 5000
    # Every record not written anywhere is counted: the data records the
    # producers saw fail, plus the failed attempts of lifecycle records
    # (run/task start and end), which loadgen retried until they were written.
    assert c["ring_spill_failed"] == failed + summary["lifecycle_retries"]
    assert c["journal_errors"] > 0 and c["gate_journal"] >= 1
    assert c["malformed"] == 0 and c["ring_dropped"] == 0
    print(json.dumps({"bench": "disk-full", "accepted": ok, "failed_counted": failed,
                      "journal_errors": c["journal_errors"],
                      "gate_closed_ms": c["gate_closed_ms"]}))


def _journal_records(path: Path) -> list[tuple[int, int, bytes]]:
    """(offset, type, payload) of each record (rf_journal.c's framing)."""
    data = path.read_bytes()
    off, out = 48, []
    while off + 24 <= len(data):
        ln, typ, _crc, _sub, _pos = struct.unpack_from("<IiIIQ", data, off)
        out.append((off, typ, data[off + 24:off + 24 + ln]))
        off += 24 + ln
    return out


def test_corrupt_journal_quarantined_rest_replayed(tmp_path, mlflow_server):
    """A journal with a damaged record in the middle: on start the damaged
    stretch is copied aside (.corrupt-*), logged and counted, and every record
    before and after it is replayed: MLflow's sums are the producers' sums
    minus exactly the damaged record."""
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-corrupt-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    make_ring(ring, spool, capacity=1 << 22)
    exp = f"rf-corrupt-{os.getpid()}-{time.time_ns() % 10**6}"
    # MLflow unreachable: the journal keeps everything (no run closes).
    sc = Sidecar("http://127.0.0.1:9", ring, spool, exp, RINGFLOW_SPOOL_MAX_MB="0")
    try:
        tasks, _ = loadgen(ring, spool, f"corrupt{os.getpid()}", 1, 1, 3000, 100)
        journal = spool / f"journal-{ring[1:]}.rfj"
        deadline = time.time() + 30
        while len(_journal_records(journal)) < 3000 + 4 and time.time() < deadline:
            time.sleep(0.1)
        sc.proc.kill()
        sc.proc.wait()
    finally:
        cleanup(sc, ring)
    recs = _journal_records(journal)
    assert len(recs) == 3000 + 4
    # Damage one model_usage record in the middle: a payload byte.
    victims = [r for r in recs[1400:1600] if r[1] == 20]
    off, _, payload = victims[0]
    lost = msgpack.unpackb(payload)
    raw = bytearray(journal.read_bytes())
    raw[off + 24 + len(payload) // 2] ^= 0xFF
    journal.write_bytes(bytes(raw))

    make_ring(ring, spool, capacity=1 << 22)  # a new ring: nothing of the old in it
    sc = Sidecar(mlflow_server, ring, spool, exp)
    try:
        client = MlflowClient(mlflow_server)
        wait_all_finished(client, exp, 2, 120)
        log_text = sc.stop()
        assert "corrupt bytes at offset" in log_text and "quarantined as" in log_text
        aside = list(spool.glob("journal-*.corrupt-*"))
        assert len(aside) == 1 and aside[0].stat().st_size == 24 + len(payload)
        c = counters(log_text)
        assert c["journal_corrupt"] == 1 and c["malformed"] == 0
        check_all_but(client, exp, tasks, lost)
    finally:
        cleanup(sc, ring)


def _spill_records(path: Path) -> list[tuple[int, int, bytes]]:
    """(offset, type, payload) of each record (rf_spill.c's framing: a
    32-byte file header, then u32 len | i32 type | u32 crc | u32 0 | payload)."""
    data = path.read_bytes()
    off, out = 32, []
    while off + 16 <= len(data):
        ln, typ, _crc, _z = struct.unpack_from("<IiII", data, off)
        out.append((off, typ, data[off + 16:off + 16 + ln]))
        off += 16 + ln
    return out


def test_corrupt_spill_file_quarantined_rest_ingested(tmp_path, mlflow_server):
    """No sidecar while an eval overflows a 64 KiB ring: records spill.  One
    record in the middle of the spill file is damaged.  A sidecar started
    afterwards ingests the records before and after it, quarantines the file
    as *.corrupt, logs and counts it: MLflow's sums are the producers' minus
    exactly the damaged record."""
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-spillbad-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    make_ring(ring, spool)
    exp = f"rf-spillbad-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = None
    try:
        tasks, _ = loadgen(ring, spool, f"spillbad{os.getpid()}", 1, 1, 3000, 100)
        (spill,) = list(spool.glob("spill-*"))
        recs = _spill_records(spill)
        victims = [r for r in recs[len(recs) // 2:] if r[1] == 20]
        off, _, payload = victims[0]
        lost = msgpack.unpackb(payload)
        raw = bytearray(spill.read_bytes())
        raw[off + 16 + len(payload) // 2] ^= 0xFF
        spill.write_bytes(bytes(raw))
        sc = Sidecar(mlflow_server, ring, spool, exp)
        client = MlflowClient(mlflow_server)
        wait_all_finished(client, exp, 2, 120)
        log_text = sc.stop()
        assert list(spool.glob("spill-*.corrupt")), "the damaged file is kept aside"
        assert re.search(r"level=warn msg=.*spill file .*checksum mismatch; \d+ bytes skipped.*"
                         r"quarantined as", log_text), log_text[-2000:]
        c = counters(log_text)
        assert c["ring_spill_corrupt"] == 1 and c["malformed"] == 0
        check_all_but(client, exp, tasks, lost)
    finally:
        if sc:
            cleanup(sc, ring)
        elif os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")
