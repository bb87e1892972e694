"""What a task_end record names is untrusted (issue 15, items 4, 8, 9):
the log `location` may be a FIFO, a symlink to /dev/zero or a directory (it
must never hang or block ringflowd: skipped, counted, reported); the log is
read once, so swapping it after the check cannot upload another file; and
an `eval_id` that is not a plain name never becomes an artifact path (no PUT
outside the run's own artifacts).  Real ringflowd, real MLflow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import msgpack
import pytest

from faultproxy import FaultProxy
from rf_rawring import RawRing
from test_bad_input import good_run
from test_sidecar import RINGFLOWD, Sidecar, cleanup, exp_name, wait_finished  # noqa: F401

TASK_END = 6


def with_location(recs, location: str):
    out = []
    for t, payload in recs:
        if t == TASK_END:
            f = msgpack.unpackb(payload)
            f["location"] = location
            payload = msgpack.packb(f)
        out.append((t, payload))
    return out


def write_all(ring: str, recs) -> None:
    w = RawRing(ring)
    assert w.rc == 0, w.error
    for t, payload in recs:
        assert w.write(t, payload) == 0
    w.close()


def counter(log: str, name: str) -> int:
    m = re.findall(rf"\b{name}=(\d+)", log)
    assert m, log
    return int(m[-1])


def download_all(client, exp_name: str, dest: Path) -> dict[str, bytes]:
    exp = client.get_experiment_by_name(exp_name)
    out = {}
    for r in client.search_runs([exp.experiment_id]):
        d = dest / r.info.run_id
        d.mkdir(parents=True)
        client.download_artifacts(r.info.run_id, "", str(d))
        for f in d.rglob("*"):
            if f.is_file():
                out[str(f.relative_to(d))] = f.read_bytes()
    return out


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-dev-zero", "directory"])
def test_log_location_that_is_no_regular_file_never_blocks(kind, mlflow_server, tmp_path,
                                                           exp_name):  # noqa: F811
    from mlflow.tracking import MlflowClient

    if kind == "fifo":
        where = tmp_path / "log.eval"
        os.mkfifo(where)
        want = "is a FIFO"
    elif kind == "symlink-to-dev-zero":
        where = tmp_path / "log.json"
        where.symlink_to("/dev/zero")
        want = "symbolic link"
    else:
        where = tmp_path / "log.eval"
        where.mkdir()
        want = "is a directory"
    ring = f"/rf-pytest-tloc-{os.getpid()}"
    sc = Sidecar(mlflow_server, ring, tmp_path / "spool", exp_name)
    try:
        write_all(ring, with_location(good_run("tloc-run", "tloc-eval", time.time() - 10),
                                      str(where)))
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 90)  # the run ends: nothing hangs on the log
        log = sc.stop()  # and SIGTERM is served
    finally:
        cleanup(sc, ring)
    assert counter(log, "artifacts_failed") == 1, log
    assert want in log and str(where) in log, log
    files = download_all(client, exp_name, tmp_path / "dl")
    assert any(k.startswith("sample_results/") for k in files), files.keys()


def test_log_swapped_after_its_check_is_not_what_is_uploaded(mlflow_server, tmp_path,
                                                             exp_name):  # noqa: F811
    """The log is checked at task end; the upload waits (a slow server).  The
    file is then replaced by a symlink to a private key: what arrives is the
    log that was checked, and the key never leaves."""
    from mlflow.tracking import MlflowClient

    eval_id = "swap-eval"
    key_text = b"-----BEGIN OPENSSH PRIVATE KEY----- rfcanary-SWAP-77a1\n"
    key = tmp_path / "id_ed25519"
    key.write_bytes(key_text)
    log = tmp_path / "logs" / "2026-swap.json"
    log.parent.mkdir()
    original = json.dumps({"version": 2, "status": "success",
                           "eval": {"eval_id": eval_id, "task": "t", "model": "mockllm/model"},
                           "samples": []}).encode()
    log.write_bytes(original)
    proxy = FaultProxy(mlflow_server, delay={"/experiments/get-by-name": 8.0})
    ring = f"/rf-pytest-tswap-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(proxy.url, ring, spool, exp_name)
    try:
        recs = with_location(good_run("swap-run", eval_id, time.time() - 10), str(log))
        write_all(ring, recs)
        deadline = time.time() + 60  # every record taken (task_end's check done)
        while True:
            p = subprocess.run([str(RINGFLOWD), "status", "--json", "--interval", "0",
                                "--ring", ring, "--spool-dir", str(spool)],
                               capture_output=True, text=True, timeout=30)
            st = json.loads(p.stdout).get("sidecar") or {} if p.returncode == 0 else {}
            if st.get("records_in", 0) >= len(recs):
                break
            assert time.time() < deadline, p.stdout + p.stderr
            time.sleep(0.1)
        assert proxy.counts.get("/api/2.0/mlflow/runs/create", 0) == 0, "too late to swap"
        log.unlink()
        log.symlink_to(key)
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 90)
        sc.stop()
    finally:
        cleanup(sc, ring)
        proxy.close()
    files = download_all(client, exp_name, tmp_path / "dl")
    assert files.get("inspect/logs/2026-swap.json") == original, files.keys()
    assert not any(b"rfcanary-SWAP" in v for v in files.values())


def test_eval_id_that_is_a_path_puts_nothing_outside_its_run(mlflow_server, tmp_path,
                                                             exp_name):  # noqa: F811
    from mlflow.tracking import MlflowClient

    bad = "../../../../victim-run/artifacts/planted"
    proxy = FaultProxy(mlflow_server)
    ring = f"/rf-pytest-tid-{os.getpid()}"
    sc = Sidecar(proxy.url, ring, tmp_path / "spool", exp_name)
    try:
        write_all(ring, good_run("id-run", bad, time.time() - 10))
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 90)
        log = sc.stop()
    finally:
        cleanup(sc, ring)
        proxy.close()
    exp = client.get_experiment_by_name(exp_name)
    prefixes = [f"/api/2.0/mlflow-artifacts/artifacts/{exp.experiment_id}/{r.info.run_id}/artifacts/"
                for r in client.search_runs([exp.experiment_id])]
    puts = [p for p in proxy.counts if p.startswith("/api/2.0/mlflow-artifacts/")]
    assert puts, proxy.counts  # the tables still went
    for p in puts:
        assert any(p.startswith(x) for x in prefixes) and "/../" not in p, p
    assert counter(log, "artifacts_failed") >= 1 and "not a plain name" in log, log
