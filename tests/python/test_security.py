"""Security defaults, checked on the real binaries: owner-only files (group
access only by choice), another user's ring refused with a clear message by
every program that opens it, and a canary secret absent from every byte the
pipeline writes on this host (ring, spill files, journal, ringflowd's log).
MLflow's side of the canary (params, tags, metrics, artifacts) is
test_sidecar.py::test_canary_secret_never_reaches_mlflow."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rf_rawring import RawRing
from test_bad_input import good_run
from test_hook import EVALS, REPO, eval_env
from test_sidecar import RINGFLOWD, Sidecar, cleanup, exp_name, wait_finished  # noqa: F401

DUMP = REPO / "build" / "release" / "bin" / "ringflow-dump"
SYNTH = REPO / "build" / "release" / "examples" / "synthetic_eval"
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a ring to nobody")


def mode(p: Path | str) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def foreign_ring(name: str, gid: int, perm: int) -> None:
    """A ring segment owned by `nobody` (as if another user had created it)."""
    r = RawRing(name, capacity=64 << 10)
    assert r.rc == 0, r.error
    r.close()
    os.chown(f"/dev/shm{name}", NOBODY, gid)
    os.chmod(f"/dev/shm{name}", perm)


def open_with(program: str, name: str, tmp: Path, **env_extra: str) -> tuple[int, str]:
    env = dict(os.environ, RINGFLOW_RING=name, RINGFLOW_SPOOL_DIR=str(tmp / "spool"),
               MLFLOW_TRACKING_URI="http://127.0.0.1:9", RINGFLOW_AUTOSTART="0", **env_extra)
    env.pop("RINGFLOW_RING_GROUP", None)
    env.update(env_extra)
    cmd = {
        "ringflowd": [str(RINGFLOWD), "--idle-exit-ms", "200"],
        "ringflow-dump": [str(DUMP), "--ring", name, "--idle-ms", "100"],
        "c-producer": [str(SYNTH), "1"],
        "python-producer": [sys.executable, "-c",
                            f"import ringflow\nringflow.Producer(ring={name!r})"],
    }[program]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


PROGRAMS = ["ringflowd", "ringflow-dump", "c-producer", "python-producer"]


@pytest.mark.parametrize("program", PROGRAMS)
def test_ring_of_another_user_is_refused(program, tmp_path):
    name = f"/rf-pytest-foreign-{os.getpid()}"
    foreign_ring(name, NOBODY, 0o600)
    try:
        rc, out = open_with(program, name, tmp_path)
        assert rc != 0, out
        assert f"owned by uid {NOBODY}" in out and "refusing" in out, out
        # Group access is opt-in, and only for a group we are in: nobody's
        # group is not root's, so it stays refused.
        os.chmod(f"/dev/shm{name}", 0o660)
        rc, out = open_with(program, name, tmp_path, RINGFLOW_RING_GROUP="1")
        assert rc != 0 and f"owned by uid {NOBODY}" in out, out
    finally:
        os.unlink(f"/dev/shm{name}")


@pytest.mark.parametrize("program", ["ringflow-dump", "python-producer"])
def test_group_ring_accepted_only_with_the_opt_in(program, tmp_path):
    """A 0660 ring of another user in one of our groups (root's group 0):
    refused by default, accepted with RINGFLOW_RING_GROUP=1."""
    name = f"/rf-pytest-grp-{os.getpid()}"
    foreign_ring(name, 0, 0o660)
    try:
        rc, out = open_with(program, name, tmp_path)
        assert rc != 0 and f"owned by uid {NOBODY}" in out, out
        assert "RINGFLOW_RING_GROUP=1" in out  # the message says how to opt in
        rc, out = open_with(program, name, tmp_path, RINGFLOW_RING_GROUP="1")
        assert rc == 0, out
    finally:
        os.unlink(f"/dev/shm{name}")


@pytest.mark.parametrize("group", [False, True])
def test_files_are_owner_only_unless_group_is_chosen(group, mlflow_server, tmp_path, exp_name,  # noqa: F811
                                                     monkeypatch):
    """Ring, spill files, journal, id map: 0600 by default, 0660 with
    RINGFLOW_RING_GROUP=1 (whatever the umask)."""
    old = os.umask(0o022)
    try:
        if group:
            monkeypatch.setenv("RINGFLOW_RING_GROUP", "1")
        else:
            monkeypatch.delenv("RINGFLOW_RING_GROUP", raising=False)
        want, want_dir = (0o660, 0o770) if group else (0o600, 0o700)
        # Spill files: a 64 KiB ring with no consumer overflows to the spool.
        spill_ring = f"/rf-pytest-mode-spill-{os.getpid()}"
        spill_spool = tmp_path / "spill-spool"
        w = RawRing(spill_ring, spill_spool, capacity=64 << 10)
        assert w.rc == 0, w.error
        for _ in range(100):  # 200 KiB into 64 KiB
            assert w.write(11, b"x" * 2048) == 0
        w.close()
        try:
            assert mode(f"/dev/shm{spill_ring}") == want
            spills = list(spill_spool.glob("spill-*"))
            assert spills, "the ring did not spill"
            assert {mode(p) for p in spills} == {want}
            assert mode(spill_spool) == want_dir
        finally:
            os.unlink(f"/dev/shm{spill_ring}")
        # The sidecar's own files.
        ring = f"/rf-pytest-mode-{os.getpid()}"
        spool = tmp_path / "spool"
        sc = Sidecar(mlflow_server, ring, spool, exp_name)
        try:
            r = RawRing(ring)
            for type_, payload in good_run("mode-run", "mode-eval", time.time() - 10):
                assert r.write(type_, payload) == 0
            r.close()
            from mlflow.tracking import MlflowClient
            wait_finished(MlflowClient(mlflow_server), exp_name, 60)
            assert mode(f"/dev/shm{ring}") == want
            sc.stop()
        finally:
            cleanup(sc, ring)
        journals = list(spool.glob("journal-*.rfj"))
        idmaps = list(spool.glob("idmap-*.jsonl"))
        assert journals and idmaps
        assert {mode(p) for p in journals + idmaps} == {want}
    finally:
        os.umask(old)


def test_canary_secret_not_in_ring_spill_journal_or_log(tmp_path):
    """The bytes on this host: a real eval whose secret sits in the env, a
    model arg, a task arg and the prompt, written into a small ring with no
    sidecar (so it also spills); then ringflowd, holding the canary as its
    token, journals everything while MLflow is unreachable.  The canary is in
    none of the ring, the spill files, the journal, ringflowd's log."""
    canary = "rfcanary-RAW-77c1-SECRET-2931"
    ring = f"/rf-pytest-rawcanary-{os.getpid()}"
    spool = tmp_path / "spool"
    w = RawRing(ring, spool, capacity=64 << 10)  # small: the eval overflows it
    assert w.rc == 0, w.error
    w.close()
    try:
        env = eval_env(ring, spool, OPENAI_API_KEY=canary, RF_TEST_SECRET=canary)
        p = subprocess.run([sys.executable, str(EVALS), "plain", str(tmp_path / "logs"), "60"],
                           env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        ring_bytes = Path(f"/dev/shm{ring}").read_bytes()
        spills = b"".join(f.read_bytes() for f in spool.glob("spill-*"))
        assert spills, "expected the eval to spill"
        assert b"password" in ring_bytes + spills  # the task arg is recorded, its value is not
        assert canary.encode() not in ring_bytes
        assert canary.encode() not in spills
        # ringflowd takes it all into its journal; MLflow is unreachable.
        denv = dict(env, MLFLOW_TRACKING_TOKEN=canary + "-token", MLFLOW_TRACKING_PASSWORD=canary,
                    MLFLOW_TRACKING_USERNAME="u")
        log = tmp_path / "ringflowd.log"
        d = subprocess.Popen([str(RINGFLOWD), "--shutdown-ms", "200"], env=denv,
                             stderr=open(log, "wb"), stdout=subprocess.DEVNULL)
        deadline = time.time() + 60
        journal = spool / f"journal-{ring[1:]}.rfj"
        while time.time() < deadline:  # until the spill files are ingested (and removed)
            if journal.exists() and journal.stat().st_size > 0 and not list(spool.glob("spill-*")):
                break
            time.sleep(0.2)
        time.sleep(1)
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=60)
        jbytes = journal.read_bytes()
        assert b"password" in jbytes
        assert canary.encode() not in jbytes
        text = log.read_text(errors="replace")
        assert "records=" in text
        assert canary not in text
    finally:
        if os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")


def test_record_cannot_make_the_sidecar_upload_another_file(mlflow_server, tmp_path,
                                                             exp_name):  # noqa: F811
    """task_end's `location` comes from a record: a file there that is not an
    Inspect log (a key, a credentials file) is never uploaded as the raw log."""
    import msgpack
    from mlflow.tracking import MlflowClient

    canary = "rfcanary-FILE-3c0e-SECRET-5521"
    secret = tmp_path / "credentials.json"
    secret.write_text('{"token": "%s"}' % canary)
    ring = f"/rf-pytest-loc-{os.getpid()}"
    sc = Sidecar(mlflow_server, ring, tmp_path / "spool", exp_name)
    try:
        recs = good_run("loc-run", "loc-eval", time.time() - 10)
        end = [i for i, (t, _) in enumerate(recs) if t == 6][0]
        fields = msgpack.unpackb(recs[end][1])
        fields["location"] = str(secret)
        recs[end] = (6, msgpack.packb(fields))
        w = RawRing(ring)
        for type_, payload in recs:
            assert w.write(type_, payload) == 0
        w.close()
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 60)
        sc.stop()
    finally:
        cleanup(sc, ring)
    exp = client.get_experiment_by_name(exp_name)
    names = []
    for r in client.search_runs([exp.experiment_id]):
        dest = tmp_path / "dl" / r.info.run_id
        dest.mkdir(parents=True)
        client.download_artifacts(r.info.run_id, "", str(dest))
        for f in dest.rglob("*"):
            if f.is_file():
                names.append(f.name)
                assert canary not in f.read_text(errors="replace"), f
    assert "sample_results" in " ".join(str(p) for p in (tmp_path / "dl").rglob("*"))  # artifacts went
    assert "credentials.json" not in names
