"""The ring's shared memory is writable by every process that maps it.  A
committed record header with an impossible length (what a buggy or hostile
same-user producer can leave) must cost ringflowd that record only: counted
and reported once, the records after it uploaded to a real MLflow server, no
busy loop of log lines (the old ringflowd wrote 180,000 identical lines in
5 s), and a restarted ringflowd does not meet the damage again."""

from __future__ import annotations

import os
import struct
import time

from rf_rawring import RawRing
from test_bad_input import good_run
from test_ops import status_json
from test_sidecar import Sidecar, cleanup, exp_name, wait_finished  # noqa: F401

DATA_OFF = 4096 + 1024 * 64  # RF_RING_DATA_OFF: descriptor, counters, slots


def test_corrupt_header_at_head_is_skipped_counted_and_gone_after_restart(
        mlflow_server, tmp_path, exp_name):  # noqa: F811
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-damage-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    sc = sc2 = None
    try:
        w = RawRing(ring, spool)
        assert w.rc == 0, w.error
        # The first record (at head, position 0) gets a forged length; the
        # eval's records after it are intact.
        assert w.write(3, b"\x81\xa1v\x01" + b"x" * 100) == 0
        for t, payload in good_run("dmg-run", "dmg-eval", time.time() - 60):
            assert w.write(t, payload) == 0
        w.close()
        with open(f"/dev/shm{ring}", "r+b") as f:
            f.seek(DATA_OFF)
            f.write(struct.pack("<i", 0x7FFFFFF0))

        sc = Sidecar(mlflow_server, ring, spool, exp_name)
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, timeout=90)
        time.sleep(1.0)  # what a spinning loop would log meanwhile
        rc, st = status_json(ring, spool)
        assert st["ring_stats"]["corrupt"] == 1
        assert st["ring_stats"]["corrupt_bytes"] == 8 + 104  # the damaged record only
        log = sc.stop()
        damage = [ln for ln in log.splitlines() if "corrupt record" in ln]
        assert 1 <= len(damage) <= 2, log[-3000:]  # said once (and in the exit report)
        assert len(log) < 20000, f"{len(log)} bytes of log"
        assert "ring_corrupt=1" in log

        # A restart: the damage was freed with the batch, nothing new counted.
        sc2 = Sidecar(mlflow_server, ring, spool, exp_name)
        time.sleep(1.0)
        log2 = sc2.stop()
        assert "corrupt records skipped" not in log2, log2[-3000:]
        rc, st = status_json(ring, spool)
        assert st["ring_stats"]["corrupt"] == 1
    finally:
        for s in (sc, sc2):
            if s is not None:
                cleanup(s, ring)
        if os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")


def test_forged_consumer_pid_does_not_stop_autostart(tmp_path):
    """The hook autostarts a sidecar unless consumer_alive() says one is
    attached.  Any process mapping the ring can write the consumer pid in it:
    pointing it at a live unrelated process (pid 1) made the old check
    (kill(pid, 0)) answer True for good, so no sidecar was ever started."""
    import ringflow

    ring = f"/rf-pytest-pid-{os.getpid()}"
    try:
        p = ringflow.Producer(ring=ring, spool_dir=str(tmp_path), capacity=65536)
        assert p.consumer_alive() is False
        with open(f"/dev/shm{ring}", "r+b") as f:
            f.seek(512 + 4)  # the consumer block: parked (u32), then consumer_pid (i32)
            f.write(struct.pack("<i", 1))
        assert p.consumer_alive() is False
        # A real consumer is seen (a C consumer handle in this process).
        w = RawRing(ring, tmp_path, flags=0x4)  # RF_RING_CONSUMER
        assert w.rc == 0, w.error
        assert p.consumer_alive() is True
        w.close()
        assert p.consumer_alive() is False
    finally:
        if os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")
