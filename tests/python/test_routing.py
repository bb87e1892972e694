"""One ringflowd, many destinations: each eval's runs go to the tracking URI
and experiment its own environment names (run_start), never to another's.

Real parts: two real MLflow servers, real Inspect evals in separate
processes, one hand-started ringflowd (the pip/autostart path is
test_user_path.py).  Faults come from faultproxy.py in front of a real
server: a closed port, a 401 for everything, and header recording."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MlflowServer
from faultproxy import FaultProxy
from test_hook import EVALS, eval_env
from test_sidecar import Sidecar, cleanup

SAMPLES = 4


@pytest.fixture(scope="module")
def server2(tmp_path_factory):
    """A second real MLflow server (its own database); a loaded host may need
    longer than the usual start bound for a second one."""
    import conftest

    bound = conftest.SERVER_START_TIMEOUT
    conftest.SERVER_START_TIMEOUT = max(bound, 400.0)
    try:
        s = MlflowServer(tmp_path_factory.mktemp("mlflow2")).start()
    finally:
        conftest.SERVER_START_TIMEOUT = bound
    try:
        yield s.uri
    finally:
        s.stop()


def tag() -> str:
    return f"{os.getpid()}-{time.time_ns() % 10**7}"


def dead_port() -> int:
    with socket.socket() as s:  # a loopback port nobody listens on (yet)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_eval(ring: str, spool: Path, logs: Path, uri: str, exp: str, **extra: str):
    env = eval_env(ring, spool, MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME=exp, **extra)
    return subprocess.Popen([sys.executable, str(EVALS), "plain", str(logs), str(SAMPLES)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen):
    from inspect_ai.log import read_eval_log

    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    return read_eval_log(out.strip().splitlines()[-3])


def runs(client, exp: str):
    e = client.get_experiment_by_name(exp)
    return client.search_runs([e.experiment_id], max_results=100) if e else []


def wait_runs(client, exp: str, timeout: float, n: int = 2) -> list:
    deadline = time.time() + timeout
    found = []
    while time.time() < deadline:
        found = runs(client, exp)
        if len(found) == n and all(r.info.status == "FINISHED" for r in found):
            break
        time.sleep(0.3)
    return found


def traces(client, exp: str) -> list:
    e = client.get_experiment_by_name(exp)
    return client.search_traces(locations=[e.experiment_id], max_results=500) if e else []


def check_destination(client, exp: str, log, traced: bool) -> None:
    """Exactly the eval's parent + task run, FINISHED, every sample's score;
    traces (one per sample) only when the eval asked for them."""
    found = runs(client, exp)
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 1, [r.info.run_name for r in found]
    assert {r.info.status for r in found} == {"FINISHED"}
    child = children[0]
    assert child.data.tags["inspect.eval_id"] == log.eval.eval_id
    assert parents[0].data.tags["inspect.run_id"] == log.eval.run_id
    hist = client.get_metric_history(child.info.run_id, "sample/includes")
    assert len(hist) == len(log.samples) == SAMPLES
    got = traces(client, exp)
    assert len(got) == (len(log.samples) if traced else 0), exp


def test_three_evals_three_destinations_one_sidecar(mlflow_server, server2, tmp_path):
    """(server1, A), (server1, B traced), (server2, C) at the same time through
    one ringflowd whose own destination is a fourth experiment: each
    experiment holds exactly its own runs, traces only in B, nothing lands in
    the sidecar's experiment or on the wrong server."""
    from mlflow import MlflowClient

    t = tag()
    ring, spool = f"/rf-pytest-route3-{os.getpid()}", tmp_path / "spool"
    own, a, b, c = (f"rf-route-{x}-{t}" for x in ("own", "A", "B", "C"))
    sc = Sidecar(mlflow_server, ring, spool, own)
    try:
        procs = [start_eval(ring, spool, tmp_path / "la", mlflow_server, a),
                 start_eval(ring, spool, tmp_path / "lb", mlflow_server, b,
                            MLFLOW_INSPECT_TRACING="true"),
                 start_eval(ring, spool, tmp_path / "lc", server2, c)]
        logs = [finish(p) for p in procs]
        c1, c2 = MlflowClient(mlflow_server), MlflowClient(server2)
        for client, exp in ((c1, a), (c1, b), (c2, c)):
            wait_runs(client, exp, 180)
        text = sc.stop()
    finally:
        cleanup(sc, ring)
    check_destination(c1, a, logs[0], traced=False)
    check_destination(c1, b, logs[1], traced=True)
    check_destination(c2, c, logs[2], traced=False)
    for client, exp in ((c1, c), (c1, own), (c2, a), (c2, b), (c2, own)):
        assert not runs(client, exp), f"{exp} should be empty on {client.tracking_uri}"
    assert "traces_failed=0" in text and "rejected=0" in text, text[-3000:]


def test_failing_destinations_do_not_stall_others_and_restart_keeps_routing(
        mlflow_server, server2, tmp_path):
    """Runs to a closed port and to a server answering 401 retry without
    holding back a traced eval to a working server; then ringflowd is killed
    (-9) and restarted: the journal replays the run_starts, so the dead
    destination's runs (its address now served) land there, and the
    delivered eval is not duplicated."""
    from mlflow import MlflowClient

    t = tag()
    ring, spool = f"/rf-pytest-routefail-{os.getpid()}", tmp_path / "spool"
    port = dead_port()
    dead = f"http://127.0.0.1:{port}"
    deny = FaultProxy(mlflow_server, status=401)
    own, x, y, z = (f"rf-route-{n}-{t}" for n in ("own", "X", "Y", "Z"))
    proxy = None
    sc = Sidecar(mlflow_server, ring, spool, own)
    try:
        # The failing ones first, so their retries are under way.
        px = start_eval(ring, spool, tmp_path / "lx", dead, x, MLFLOW_INSPECT_TRACING="true")
        pz = start_eval(ring, spool, tmp_path / "lz", deny.url, z, MLFLOW_INSPECT_TRACING="true")
        log_x, log_z = finish(px), finish(pz)
        log_y = finish(start_eval(ring, spool, tmp_path / "ly", mlflow_server, y,
                                  MLFLOW_INSPECT_TRACING="true"))
        c1 = MlflowClient(mlflow_server)
        wait_runs(c1, y, 180)
        check_destination(c1, y, log_y, traced=True)  # delivered while X and Z fail
        assert deny.counts, "the 401 destination was never tried"
        assert not runs(c1, z) and not runs(c1, x)
        sc.proc.send_signal(signal.SIGKILL)
        sc.proc.wait()
        proxy = FaultProxy(server2, port=port)  # the dead address now reaches server2
        sc = Sidecar(mlflow_server, ring, spool, own)
        c2 = MlflowClient(server2)
        wait_runs(c2, x, 180)
        text = sc.stop()
    finally:
        cleanup(sc, ring)
        deny.close()
        if proxy:
            proxy.close()
    assert "replayed" in text, text[-2000:]
    check_destination(c2, x, log_x, traced=True)
    check_destination(c1, y, log_y, traced=True)  # replayed, reused: still one of each
    assert not runs(c1, x) and not runs(c1, own) and not runs(c2, y)
    assert log_z.status == "success"


@pytest.mark.parametrize("credential_ring", [False, True])
def test_sidecar_credentials_stay_with_its_own_server(mlflow_server, server2, tmp_path,
                                                      credential_ring):
    """The sidecar's token and Basic credentials go to its own server only; a
    destination on another host:port gets no Authorization at all -- except
    on the ring the hook picks for one credential set (owner-only), where the
    user paired these credentials with these evals."""
    from mlflow import MlflowClient

    t = tag()
    canary = f"rfcanary-route-{t}"
    ring = (f"/ringflow-{os.geteuid()}-c{os.getpid() & 0xffffffff:08x}" if credential_ring
            else f"/rf-pytest-routecred-{os.getpid()}")
    spool = tmp_path / "spool"
    mine, foreign = FaultProxy(mlflow_server), FaultProxy(server2)
    own, f = f"rf-route-own-{t}", f"rf-route-foreign-{t}"
    sc = Sidecar(mine.url, ring, spool, own, MLFLOW_TRACKING_TOKEN=canary + "-tok",
                 MLFLOW_TRACKING_USERNAME="rfuser", MLFLOW_TRACKING_PASSWORD=canary)
    try:
        p_own = start_eval(ring, spool, tmp_path / "lo", mine.url, own)
        p_for = start_eval(ring, spool, tmp_path / "lf", foreign.url, f)
        finish(p_own), finish(p_for)
        wait_runs(MlflowClient(mlflow_server), own, 180)
        wait_runs(MlflowClient(server2), f, 180)
        sc.stop()
    finally:
        cleanup(sc, ring)
        mine.close()
        foreign.close()
    basic = base64.b64encode(f"rfuser:{canary}".encode()).decode()
    assert len(runs(MlflowClient(server2), f)) == 2
    assert mine.headers_seen and foreign.headers_seen
    assert all(h.get("Authorization") == f"Basic {basic}" for h in mine.headers_seen)
    seen = repr(foreign.headers_seen)
    if credential_ring:
        assert all(h.get("Authorization") == f"Basic {basic}" for h in foreign.headers_seen)
    else:
        assert canary not in seen and basic not in seen
        assert not any("Authorization" in h for h in foreign.headers_seen), seen[:2000]


def test_unusable_destinations_are_refused_and_counted_never_misrouted(mlflow_server, tmp_path):
    """run_starts naming a destination ringflowd cannot serve (not http(s), not
    a string) lose only their own run, counted, instead of landing in the
    sidecar's experiment; a URI with user:password@ is served without them."""
    import msgpack
    from mlflow import MlflowClient

    from rf_rawring import RawRing
    from test_bad_input import RUN_START, good_run, rec

    t = tag()
    ring, spool = f"/rf-pytest-routebad-{os.getpid()}", tmp_path / "spool"
    own, ok = f"rf-route-own-{t}", f"rf-route-userinfo-{t}"
    sc = Sidecar(mlflow_server, ring, spool, own, RINGFLOW_SHUTDOWN_MS="5000")
    try:
        w = RawRing(ring, spool)
        assert w.rc == 0, w.error
        t0 = time.time() - 60
        userinfo = mlflow_server.replace("http://", "http://someone:pw-not-sent@")
        for i, uri in enumerate(["file:///tmp/mlruns", 12345, "sqlite:///x.db", userinfo]):
            run = good_run(f"bad-run-{t}-{i}", f"bad-eval-{t}-{i}", t0)
            fields = msgpack.unpackb(run[0][1])
            fields.update(tracking_uri=uri, experiment_name=ok if uri == userinfo else own)
            run[0] = rec(RUN_START, **{k: v for k, v in fields.items() if k != "v"})
            for type_, payload in run:
                assert w.write(type_, payload) == 0
        w.close()
        client = MlflowClient(mlflow_server)
        wait_runs(client, ok, 60)
        text = sc.stop()
    finally:
        cleanup(sc, ring)
    assert len(runs(client, ok)) == 2
    assert not runs(client, own), "a refused run was sent to the sidecar's own experiment"
    assert re.search(r"refused_runs=3 refused_records=(\d+)", text), text[-2000:]
    assert int(re.search(r"refused_records=(\d+)", text).group(1)) == 3 * len(run)
    assert "pw-not-sent" not in text


def test_run_start_names_the_eval_destination_without_its_password(tmp_path):
    """The hook's run_start carries the eval's destination as its environment
    says it; the URI's password is in neither the record nor the ring."""
    from test_hook import dump, run_eval

    ring = f"/rf-pytest-routehook-{os.getpid()}"
    secret = f"pw-{tag()}-route"
    try:
        env = eval_env(ring, tmp_path / "spool",
                       MLFLOW_TRACKING_URI=f"https://someone:{secret}@mlflow.example:8443/base",
                       MLFLOW_EXPERIMENT_NAME="exp-hook", INSPECT_MLFLOW_LOG_ARTIFACTS="False",
                       MLFLOW_INSPECT_TRACING="true", MLFLOW_INSPECT_TRACE_MODE="run")
        run_eval(env, tmp_path / "logs", "plain", "2")
        raw = Path(f"/dev/shm{ring}").read_bytes()
        (rs,) = [r["data"] for r in dump(ring) if r["type"] == "run_start"]
    finally:
        if os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")
    assert rs["tracking_uri"] == "https://mlflow.example:8443/base"
    assert rs["experiment_name"] == "exp-hook"
    assert rs["log_artifacts"] is False
    assert rs["tracing"] is True and rs["trace_mode"] == "run"
    assert secret.encode() not in raw


def test_ring_is_chosen_by_credential_set(tmp_path):
    """No credentials: the default ring.  Credentials (or a URI password): one
    ring per set, the same for the same set in any order, another for another
    set; RINGFLOW_RING wins.  An eval with a token writes to that ring."""
    from ringflow._producer import ring_name

    uid = os.geteuid()
    assert ring_name({"MLFLOW_TRACKING_URI": "http://h:5000"}) is None
    a = ring_name({"MLFLOW_TRACKING_TOKEN": "t1", "MLFLOW_TRACKING_USERNAME": "u"})
    assert re.fullmatch(rf"/ringflow-{uid}-c[0-9a-f]{{8}}", a)
    assert a == ring_name({"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_TOKEN": "t1"})
    assert a != ring_name({"MLFLOW_TRACKING_TOKEN": "t2", "MLFLOW_TRACKING_USERNAME": "u"})
    b = ring_name({"MLFLOW_TRACKING_URI": "http://u:p@h:5000"})
    assert b and b != ring_name({"MLFLOW_TRACKING_URI": "http://u:q@h:5000"})
    assert ring_name({"RINGFLOW_RING": "/mine", "MLFLOW_TRACKING_TOKEN": "t1"}) == "/mine"

    from test_hook import run_eval

    token = f"tok-{tag()}"
    want = ring_name({"MLFLOW_TRACKING_TOKEN": token})
    marker, fake = tmp_path / "started", tmp_path / "ringflowd"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\n")
    fake.chmod(0o755)
    env = eval_env("/unused", tmp_path / "spool", MLFLOW_TRACKING_TOKEN=token,
                   RINGFLOW_SIDECAR=str(fake), RINGFLOW_AUTOSTART="1")
    env.pop("RINGFLOW_RING")
    try:
        run_eval(env, tmp_path / "logs", "plain", "1")
        assert os.path.exists(f"/dev/shm{want}")
        for _ in range(50):  # the autostarted sidecar is told which ring
            if marker.exists():
                break
            time.sleep(0.1)
        # Every start (the hook tries again at run end when none came up)
        # names the ring: the first line is the first start's arguments.
        starts = marker.read_text().splitlines()
        assert starts and all(line.split()[:3] == ["--detach", "--ring", want] for line in starts)
    finally:
        if os.path.exists(f"/dev/shm{want}"):
            os.unlink(f"/dev/shm{want}")
