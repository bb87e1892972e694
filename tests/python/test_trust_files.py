"""File trust in the spool (issue 15, item 1): in group mode the spool
directory is 0770, so every member of the group can plant names in it.  A
real second uid (a system user made here, in a group made here) plants a
symlink to a victim file, a file of its own, or a FIFO where ringflowd keeps
its journal, log, id map and stats file: the victim is never touched and
ringflowd says clearly what is wrong and what to do."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from rf_rawring import RawRing
from test_bad_input import good_run
from test_sidecar import RINGFLOWD, Sidecar, cleanup, exp_name, wait_finished  # noqa: F401

MATE, MATE_GROUP = "rftrustmate", "rftrust"
VICTIM_TEXT = b"ssh-ed25519 AAAA precious key of the owner\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to create the second user of group mode")


@pytest.fixture(scope="module")
def mate() -> tuple[int, int]:
    """(uid, gid) of a second local user in a group of its own (made once)."""
    try:
        gid = grp.getgrnam(MATE_GROUP).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "-r", MATE_GROUP], check=True, capture_output=True)
        gid = grp.getgrnam(MATE_GROUP).gr_gid
    try:
        uid = pwd.getpwnam(MATE).pw_uid
    except KeyError:
        subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "-g", MATE_GROUP, MATE],
                       check=True, capture_output=True)
        uid = pwd.getpwnam(MATE).pw_uid
    return uid, gid


@pytest.fixture
def shared(mate):
    """A group-mode spool (root:rftrust 0770) the mate can reach, and a victim
    file of the owner's (0600) outside it."""
    top = Path(tempfile.mkdtemp(prefix="rf-trust-"))
    os.chmod(top, 0o711)
    spool = top / "spool"
    spool.mkdir()
    os.chown(spool, 0, mate[1])
    os.chmod(spool, 0o770)
    victim = top / "authorized_keys"
    victim.write_bytes(VICTIM_TEXT)
    os.chmod(victim, 0o600)
    yield spool, victim
    shutil.rmtree(top, ignore_errors=True)


def as_mate(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, user=MATE, group=MATE_GROUP, capture_output=True)


def plant(kind: str, where: Path, victim: Path) -> None:
    if kind == "symlink":
        as_mate("ln", "-s", str(victim), str(where))
    elif kind == "mates-file":
        as_mate("sh", "-c", f"printf 'mine\\n' > '{where}'")
    elif kind == "fifo":
        as_mate("mkfifo", str(where))
    else:
        raise AssertionError(kind)


def victim_untouched(victim: Path) -> None:
    assert victim.read_bytes() == VICTIM_TEXT
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


def group_env(ring: str, spool: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool),
                RINGFLOW_RING_GROUP="1", MLFLOW_TRACKING_URI="http://127.0.0.1:9",
                RINGFLOW_AUTOSTART="0", **extra)


def unlink_ring(ring: str) -> None:
    if os.path.exists(f"/dev/shm{ring}"):
        os.unlink(f"/dev/shm{ring}")


@pytest.mark.parametrize("kind", ["symlink", "mates-file", "fifo"])
def test_planted_journal_is_refused_and_the_victim_untouched(kind, mate, shared):
    spool, victim = shared
    ring = f"/rf-pytest-trust-j-{os.getpid()}"
    journal = spool / f"journal-{ring[1:]}.rfj"
    plant(kind, journal, victim)
    before = journal.lstat()
    try:
        p = subprocess.run([str(RINGFLOWD), "--idle-exit-ms", "300"], env=group_env(ring, spool),
                           capture_output=True, text=True, timeout=60)
    finally:
        unlink_ring(ring)
    assert p.returncode != 0, p.stderr
    assert str(journal) in p.stderr, p.stderr
    want = {"symlink": "is a symbolic link", "mates-file": f"owned by uid {mate[0]}",
            "fifo": "is a FIFO"}[kind]
    assert want in p.stderr and "remove it" in p.stderr, p.stderr
    victim_untouched(victim)
    after = journal.lstat()  # the planted entry itself is left as it was
    assert (after.st_mode, after.st_uid, after.st_size) == (before.st_mode, before.st_uid,
                                                           before.st_size)


@pytest.mark.parametrize("kind", ["symlink", "mates-file"])
def test_planted_log_stops_detach_with_a_clear_error(kind, mate, shared):
    spool, victim = shared
    ring = f"/rf-pytest-trust-l-{os.getpid()}"
    log = spool / "ringflowd.log"
    plant(kind, log, victim)
    try:
        p = subprocess.run([str(RINGFLOWD), "--detach", "--idle-exit-ms", "300"],
                           env=group_env(ring, spool), capture_output=True, text=True, timeout=60)
    finally:
        unlink_ring(ring)
    assert p.returncode != 0, p.stderr
    assert "cannot detach" in p.stderr and str(log) in p.stderr, p.stderr
    victim_untouched(victim)
    if kind == "mates-file":
        assert log.read_text() == "mine\n"


def test_planted_id_map_and_stats_file_are_not_followed(mate, shared, mlflow_server,
                                                        exp_name, monkeypatch):  # noqa: F811
    """The run id map and the stats file, planted as symlinks to the victim:
    ringflowd serves the ring, the run arrives, the victim is untouched and
    the refusals are reported."""
    from mlflow.tracking import MlflowClient

    spool, victim = shared
    ring = f"/rf-pytest-trust-m-{os.getpid()}"
    idmap = spool / f"idmap-{exp_name}.jsonl"
    stats = spool / f"ringflowd-{ring[1:]}.stats"
    plant("symlink", idmap, victim)
    plant("symlink", stats, victim)
    logdir = Path(tempfile.mkdtemp(prefix="rf-trust-log-"))
    monkeypatch.setenv("RINGFLOW_RING_GROUP", "1")  # the ring is 0660: a group ring
    sc = Sidecar(mlflow_server, ring, spool, exp_name, log_dir=logdir)
    try:
        w = RawRing(ring)
        assert w.rc == 0, w.error
        for type_, payload in good_run("trust-run", "trust-eval", time.time() - 10):
            assert w.write(type_, payload) == 0
        w.close()
        wait_finished(MlflowClient(mlflow_server), exp_name, 60)
        log = sc.stop()
    finally:
        cleanup(sc, ring)
        shutil.rmtree(logdir, ignore_errors=True)
    victim_untouched(victim)
    assert f"stats file: {stats} is a symbolic link" in log, log
    assert idmap.is_symlink() and stats.is_symlink()


SYNTH = Path(__file__).resolve().parents[2] / "build" / "release" / "examples" / "synthetic_eval"
NOBODY = 65534


def run_as_mate(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RINGFLOW_") and k != "XDG_RUNTIME_DIR"}
    env.update(MLFLOW_TRACKING_URI="http://127.0.0.1:9", RINGFLOW_AUTOSTART="0", HOME="/")
    return subprocess.run(cmd, env=env, user=MATE, group=MATE_GROUP, capture_output=True,
                          text=True, timeout=60, cwd="/")


def test_squatted_default_ring_and_spool_are_named_with_what_to_do(mate):
    """Another user (nobody) took the mate's default names first:
    /dev/shm/ringflow-<uid> and /tmp/ringflow-<uid>.  The C producer and
    ringflowd say which path, whose it is and what to do, not just
    "Permission denied"."""
    uid = mate[0]
    shm, spool = Path(f"/dev/shm/ringflow-{uid}"), Path(f"/tmp/ringflow-{uid}")
    assert not shm.exists() and not spool.exists(), "leftovers of the mate's default names"
    shm.write_bytes(b"\0" * 4096)
    os.chown(shm, NOBODY, NOBODY)
    os.chmod(shm, 0o600)
    spool.mkdir(mode=0o700)
    os.chown(spool, NOBODY, NOBODY)
    try:
        daemon = str(RINGFLOWD.resolve())  # run from "/": an absolute path
        p = run_as_mate([str(SYNTH), "1"])  # the C producer opens the ring first
        out = p.stdout + p.stderr
        assert p.returncode != 0, out
        assert f"{shm} is owned by uid {NOBODY}" in out, out
        assert "must remove" in out and "RINGFLOW_RING" in out, out
        # ringflowd checks its spool directory before it opens the ring
        p = run_as_mate([daemon, "--idle-exit-ms", "200"])
        out = p.stdout + p.stderr
        assert p.returncode != 0, out
        assert f"spool directory {spool}" in out and f"owner {NOBODY}" in out, out
        assert "must remove it" in out and "RINGFLOW_SPOOL_DIR" in out, out
        shutil.rmtree(spool)  # the spool is free again; the ring name is still taken
        p = run_as_mate([daemon, "--idle-exit-ms", "200"])
        out = p.stdout + p.stderr
        assert p.returncode != 0, out
        assert f"{shm} is owned by uid {NOBODY}" in out, out
        assert "must remove" in out and "RINGFLOW_RING" in out, out
    finally:
        for p in (shm,):
            if p.exists():
                p.unlink()
        shutil.rmtree(spool, ignore_errors=True)
