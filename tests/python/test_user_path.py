"""The user's path, exactly as README.md's "Using it with Inspect AI" tells it.

A fresh virtualenv; `pip install ./producer/python` from this checkout (which
builds ringflowd and ringflow-dump into the package); no build directory on
PATH and no RINGFLOW_SIDECAR: the hook finds and starts the sidecar of its
own installation.  Real `mlflow server`s, real Inspect evals, each in its own
process with its own destination; then `ringflowd flush` and `ringflowd
status` from the venv's bin.

To stay fast the venv reuses the pinned .venv's packages (inspect_ai, mlflow,
setuptools, pip) through a .pth file listing a copy of its site-packages
without ringflow; ringflow itself is pip-installed into the new venv.  Every
test uses its own ring and spool (never another test's or helper's sidecar)
and stops the sidecar its evals started.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import MlflowServer

REPO = Path(__file__).resolve().parents[2]
TASK = REPO / "tests" / "python" / "rf_user_task.py"
PKG = REPO / "producer" / "python"


def _version_of_checkout() -> str:
    return (REPO / "VERSION").read_text().strip()  # the one copy


# ---- the venv ---------------------------------------------------------------


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new virtualenv with ringflow pip-installed from the checkout."""
    root = tmp_path_factory.mktemp("user-venv")
    v = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(v)], check=True)
    site = Path(subprocess.run([str(v / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The pinned packages, minus any ringflow installed there.
    deps = root / "deps"
    deps.mkdir()
    pinned = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()))
    for entry in pinned.iterdir():
        if entry.name.startswith(("ringflow", "__editable__")) or entry.name.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    (site / "pinned-deps.pth").write_text(f"{deps}\n")
    # What the README says, with the pinned setuptools instead of a download.
    p = subprocess.run([str(v / "bin" / "python"), "-m", "pip", "install", "--no-build-isolation",
                        "--no-deps", str(PKG)], capture_output=True, text=True, timeout=900,
                       env=clean_env(v))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return v


def clean_env(v: Path, **extra: str) -> dict[str, str]:
    """The user's environment: the venv's bin and the system's on PATH, nothing of ours."""
    env = {k: val for k, val in os.environ.items()
           if not k.startswith(("RINGFLOW_", "MLFLOW_", "RF_", "INSPECT_", "PYTHON", "COLUMNS"))}
    env["PATH"] = f"{v / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def test_pip_installs_the_programs(venv):
    """ringflowd and ringflow-dump come with the package, as console scripts
    of the venv that exec the programs under ringflow/bin/."""
    env = clean_env(venv)
    out = subprocess.run([str(venv / "bin" / "ringflowd"), "--version"], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["ringflowd", _version_of_checkout()]
    assert subprocess.run([str(venv / "bin" / "ringflow-dump"), "--help"], env=env,
                          capture_output=True).returncode == 0
    code = ("import ringflow, ringflow._sidecar as s, importlib.metadata as m;"
            "print(s.sidecar_binary()); print(m.version('ringflow')); print(ringflow.__version__)")
    got = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert got[0].startswith(str(venv)) and got[0].endswith("ringflow/bin/ringflowd")
    assert got[1] == got[2] == _version_of_checkout()


# ---- per-test ring, spool and sidecar ----------------------------------------


class Setup:
    def __init__(self, venv: Path, tmp: Path, tag: str):
        self.venv, self.tmp = venv, tmp
        self.ring = f"/rf-pytest-user-{tag}-{os.getpid()}"
        self.spool = tmp / "spool"

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_env(self.venv, RINGFLOW_RING=self.ring, RINGFLOW_SPOOL_DIR=str(self.spool),
                        MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", HF_HUB_OFFLINE="1",
                        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                        COLUMNS="1000")  # one log line per warning
        env.update(extra)
        return env

    def eval(self, uri: str, experiment: str | None = None, n: int = 3, **extra: str) -> str:
        """One `inspect eval` in its own process, as the user runs it; its output."""
        p, logs = self.start_eval(uri, experiment, n, **extra)
        return self.finish(p, logs)

    def start_eval(self, uri: str, experiment: str | None = None, n: int = 3, **extra: str):
        env = self.env(MLFLOW_TRACKING_URI=uri, **extra)
        if experiment:
            env["MLFLOW_EXPERIMENT_NAME"] = experiment
        logs = self.tmp / f"logs-{time.time_ns()}"
        shutil.copy(TASK, self.tmp / "my_task.py")  # `inspect eval` takes it relative to cwd
        p = subprocess.Popen([str(self.venv / "bin" / "python"), "-m", "inspect_ai", "eval",
                              "my_task.py", "-T", f"n={n}", "--log-dir", str(logs)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.tmp)
        return p, logs

    @staticmethod
    def finish(p: subprocess.Popen, logs: Path) -> str:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:] + err[-3000:]
        from inspect_ai.log import read_eval_log

        (log,) = logs.glob("*.eval")
        assert read_eval_log(str(log), header_only=True).status == "success"
        return out + err

    def ctl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv / "bin" / "ringflowd"), *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def status(self) -> dict:
        return json.loads(self.ctl("status", "--json", "--interval", "0").stdout)

    def sidecar_pid(self) -> int:
        s = self.status()
        return s["ring_stats"]["consumer_pid"] if s.get("sidecar_alive") else 0

    def stop(self) -> None:
        pid = self.sidecar_pid() if os.path.exists(f"/dev/shm{self.ring}") else 0
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        if os.path.exists(f"/dev/shm{self.ring}"):
            os.unlink(f"/dev/shm{self.ring}")


@pytest.fixture
def user(venv, tmp_path, request):
    s = Setup(venv, tmp_path, request.node.name[5:25].replace("[", "-").replace("]", ""))
    try:
        yield s
    finally:
        s.stop()


def _server(root: Path) -> MlflowServer:
    # Started while the pip build and other tests load the machine: give it
    # more than conftest's default to come up (a bound, not a measurement).
    import conftest

    saved, conftest.SERVER_START_TIMEOUT = conftest.SERVER_START_TIMEOUT, 600.0
    try:
        return MlflowServer(root).start()
    finally:
        conftest.SERVER_START_TIMEOUT = saved


def _serving(tmp_path_factory, name: str):
    """A fixture's body: a server's URI while the fixture lasts, then stopped."""
    srv = _server(tmp_path_factory.mktemp(name))
    try:
        yield srv.uri
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server1(tmp_path_factory):
    yield from _serving(tmp_path_factory, "mlflow-1")


@pytest.fixture(scope="module")
def server2(tmp_path_factory):
    yield from _serving(tmp_path_factory, "mlflow-2")


def _uniq(name: str) -> str:
    return f"{name}-{os.getpid()}-{time.time_ns() % 10**8}"


def check_experiment(uri: str, experiment: str, evals: int, samples: int, traced: bool) -> None:
    """`evals` parent runs each with its task run, FINISHED, every sample's
    metric; traces only if tracing was on."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} not on {uri}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == evals and len(children) == evals, (experiment, len(parents), len(children))
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {p.info.run_id for p in parents}
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    for c in children:
        assert len(client.get_metric_history(c.info.run_id, "sample/includes")) == samples
    traces = client.search_traces(locations=[exp.experiment_id], max_results=500)
    if traced:
        assert len(traces) >= samples * evals  # a trace per sample (the default mode)
    else:
        assert traces == [] or len(traces) == 0


def experiments_with_runs(uri: str) -> set[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return {e.name for e in client.search_experiments()
            if client.search_runs([e.experiment_id], max_results=1)}


def flush_and_status(user: Setup) -> None:
    f = user.ctl("flush", "--timeout", "240", "--quiet")
    assert f.returncode == 0, f.stdout + f.stderr
    s = user.ctl("status", "--interval", "0")
    assert s.returncode == 0, s.stdout + s.stderr


def flushed_runs(user: Setup, uri: str, experiment: str, runs: int) -> list[int]:
    """After a flush: the experiment holds `runs` runs, all FINISHED; the
    number of `sample/includes` values of each task run, sorted."""
    flush_and_status(user)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(found) == runs and all(r.info.status == "FINISHED" for r in found)
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    return sorted(len(client.get_metric_history(r.info.run_id, "sample/includes"))
                  for r in children)


def own_warnings(output: str) -> list[str]:
    """The hook's warnings in an eval's output: Inspect's log handler shows
    them as `WARNING  ringflow: ...`; before it is set up (enablement is
    decided while Inspect loads hooks) Python prints the bare message."""
    pat = re.compile(r"^\s*(\[[^\]]*\]\s*)?(WARNING\s+)?ringflow: ")
    return [line.strip() for line in output.splitlines() if pat.search(line)]


# ---- the path ------------------------------------------------------------------


def test_three_evals_three_destinations(user, server1, server2):
    """README's path: three evals in a row, each to its own destination
    (server 1 / A; server 1 / B traced; server 2 / C), one sidecar for all."""
    s1, s2 = server1, server2
    a, b, c = _uniq("user-A"), _uniq("user-B"), _uniq("user-C")
    out = user.eval(s1, a, 3)
    assert own_warnings(out) == [], out
    pid = user.sidecar_pid()
    assert pid, "the first eval did not start a sidecar"
    user.eval(s1, b, 4, MLFLOW_INSPECT_TRACING="true")
    user.eval(s2, c, 2)
    assert user.sidecar_pid() == pid  # later evals used the running sidecar
    flush_and_status(user)
    check_experiment(s1, a, 1, 3, traced=False)
    check_experiment(s1, b, 1, 4, traced=True)
    check_experiment(s2, c, 1, 2, traced=False)
    assert experiments_with_runs(s1) >= {a, b} and not experiments_with_runs(s1) & {c}
    assert c in experiments_with_runs(s2) and not experiments_with_runs(s2) & {a, b}


def test_autostarted_sidecar_serves_every_eval(user, server1):
    """One destination (what works without per-eval routing): the first eval
    starts the installation's sidecar, the ring records the daemon's pid, the
    second eval uses it, flush and status find it."""
    s1 = server1
    exp = _uniq("user-one")
    out = user.eval(s1, exp, 3)
    assert own_warnings(out) == [], out
    st = user.status()
    pid = st["ring_stats"]["consumer_pid"]
    assert st["sidecar_alive"] and st["sidecar"]["pid"] == pid and st["sidecar"]["current"]
    exe = os.readlink(f"/proc/{pid}/exe")  # the installation's own program
    assert exe.startswith(str(user.venv.resolve())) and exe.endswith("/ringflow/bin/ringflowd")
    out = user.eval(s1, exp, 4)
    assert own_warnings(out) == [], out
    assert user.sidecar_pid() == pid
    log = (user.spool / "ringflowd.log").read_text()
    assert log.count("serving ring") == 1  # no second sidecar was started
    assert flushed_runs(user, s1, exp, 4) == [3, 4]


def test_sidecar_killed_between_evals(user, server1):
    """SIGKILL the autostarted sidecar between evals: the next eval starts a
    new one, and nothing of the first eval is lost."""
    s1 = server1
    exp = _uniq("user-kill")
    user.eval(s1, exp, 3)
    pid = user.sidecar_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not user.sidecar_pid():
            break
        time.sleep(0.1)
    assert not user.sidecar_pid()
    out = user.eval(s1, exp, 2)
    assert own_warnings(out) == [], out
    new = user.sidecar_pid()
    assert new and new != pid
    assert flushed_runs(user, s1, exp, 4) == [2, 3]


def test_two_evals_in_parallel_to_two_experiments(user, server1):
    s1 = server1
    a, b = _uniq("user-parA"), _uniq("user-parB")
    procs = [user.start_eval(s1, a, 3), user.start_eval(s1, b, 5)]
    for p, logs in procs:
        out = user.finish(p, logs)
        assert own_warnings(out) == [], out
    flush_and_status(user)
    check_experiment(s1, a, 1, 3, traced=False)
    check_experiment(s1, b, 1, 5, traced=False)
    # Two evals raced to start a sidecar: one serves, the other stood down.
    assert (user.spool / "ringflowd.log").read_text().count("serving ring") == 1


@pytest.mark.parametrize("uri,why", [
    ("sqlite:///mlflow.db", "is a local store, not a server"),
    ("./mlruns", "is a path, not a server address"),
    ("htp://127.0.0.1:5000", "unknown scheme 'htp'"),
    ("databricks", "Databricks workspaces are not supported"),
])
def test_bad_tracking_uri_is_one_warning_and_no_hang(user, uri, why):
    out = user.eval(uri, "x", 2)  # no hang: the eval just runs (finish() bounds it)
    warnings = own_warnings(out)
    assert len(warnings) == 1 and why in warnings[0] and "ringflow is off" in warnings[0], out
    assert not os.path.exists(f"/dev/shm{user.ring}")  # the hook stayed off: no ring, no sidecar
    # ringflowd itself refuses it at start, with the same reason.
    d = subprocess.run([str(user.venv / "bin" / "ringflowd"), "--tracking-uri", uri],
                       env=user.env(), capture_output=True, text=True, timeout=30)
    assert d.returncode == 2 and why in d.stderr, d.stderr


def test_failed_autostart_is_one_warning_with_the_reason(user, server1):
    """The sidecar cannot start (a typo in RINGFLOW_FSYNC): the eval still
    succeeds, its output has ONE warning quoting ringflowd's reason, and the
    records wait in the ring for a sidecar that can start."""
    s1 = server1
    exp = _uniq("user-fsync")
    out = user.eval(s1, exp, 3, RINGFLOW_FSYNC="alwyas")
    warnings = own_warnings(out)
    assert len(warnings) == 1, out
    assert "could not start the sidecar" in warnings[0] and "RINGFLOW_FSYNC 'alwyas'" in warnings[0]
    assert not user.sidecar_pid()
    # Fixed: the next eval starts it, and the first eval's records go up too.
    user.eval(s1, exp, 2)
    flushed_runs(user, s1, exp, 4)


def test_bad_configuration_is_refused_up_front(user):
    """ringflowd exits 2 with the reason: unknown command, numbers, fsync."""
    bad = [
        (["stats"], {}, "unknown command 'stats'"),
        ([], {"RINGFLOW_FSYNC": "alwyas"}, "RINGFLOW_FSYNC 'alwyas'"),
        (["--flush-ms", "10x"], {}, "--flush-ms '10x'"),
        ([], {"RINGFLOW_METRICS_MS": "0"}, "RINGFLOW_METRICS_MS '0'"),
        ([], {"RINGFLOW_SPOOL_MAX_MB": "-5"}, "RINGFLOW_SPOOL_MAX_MB '-5'"),
        (["--metrics-port", "70000"], {}, "--metrics-port '70000'"),
        ([], {"MLFLOW_TRACKING_URI": ""}, "MLFLOW_TRACKING_URI (or --tracking-uri) is required"),
    ]
    for args, extra, why in bad:
        env = user.env(MLFLOW_TRACKING_URI="http://127.0.0.1:9")
        env.update(extra)
        d = subprocess.run([str(user.venv / "bin" / "ringflowd"), *args], env=env,
                           capture_output=True, text=True, timeout=30)
        assert d.returncode == 2 and why in d.stderr, (args, extra, d.stderr)
    assert not os.path.exists(f"/dev/shm{user.ring}")  # nothing was started


def test_detach_exits_nonzero_when_the_daemon_cannot_start(user, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = user.env(MLFLOW_TRACKING_URI="http://127.0.0.1:9", RINGFLOW_SPOOL_DIR=str(blocker / "spool"))
    d = subprocess.run([str(user.venv / "bin" / "ringflowd"), "--detach"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert d.returncode == 1 and "spool dir" in d.stderr, d.stderr


def test_ring_name_without_slash_is_warned_about(user, server1):
    s1 = server1
    bare = user.ring.lstrip("/")
    out = user.eval(s1, _uniq("user-ring"), 2, RINGFLOW_RING=bare)
    warnings = own_warnings(out)
    assert len(warnings) == 1 and "does not start with '/'" in warnings[0], out
    assert os.path.exists(f"/dev/shm{user.ring}")  # used as '/name'
    flush_and_status(user)


def test_idle_sidecar_exits_and_the_next_eval_restarts_it(user, server1):
    s1 = server1
    exp = _uniq("user-idle")
    user.eval(s1, exp, 2, RINGFLOW_IDLE_EXIT_MS="1500")
    deadline = time.time() + 60
    while user.sidecar_pid() and time.time() < deadline:
        time.sleep(0.2)
    assert not user.sidecar_pid(), "the autostarted sidecar did not exit when idle"
    assert "idle for 1500 ms with nothing pending: exiting" in (user.spool / "ringflowd.log").read_text()
    user.eval(s1, exp, 3)
    assert user.sidecar_pid()
    flushed_runs(user, s1, exp, 4)


# ---- the sdist ------------------------------------------------------------------


def test_sdist_is_self_contained(tmp_path):
    """The sdist carries every C source it needs and builds a wheel with the
    programs in a directory where no checkout is reachable."""
    out = tmp_path / "dist"
    code = "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"
    p = subprocess.run([sys.executable, "-c", code, str(out)], cwd=PKG, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    sdist = out / p.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        t.extractall(tmp_path / "src", filter="data")
    for need in ("LICENSE", "setup.py", "pyproject.toml", "MANIFEST.in", "ringflow/_ringflow.c",
                 "ringflow/_hook.py", "csrc/sidecar/bin/ringflowd.c", "csrc/sidecar/bin/ringflow_dump.c",
                 "csrc/sidecar/ops/rf_config.c", "csrc/ringbuf/rf_ring.c", "csrc/producer/rf_producer.c",
                 "csrc/sidecar/ops/rf_version.h", "csrc/VERSION"):
        assert need in names, need
    for src in (REPO / "sidecar").glob("*/*.[ch]"):
        rel = src.relative_to(REPO).as_posix()
        assert f"csrc/{rel}" in names, rel
    assert not any(n.endswith((".o", ".so")) for n in names)
    (src_dir,) = (tmp_path / "src").iterdir()
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.build_wheel(sys.argv[1]))")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "wheel")], cwd=src_dir,
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    assert "-Werror" not in p.stdout
    whl = tmp_path / "wheel" / p.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        assert {"ringflow/bin/ringflowd", "ringflow/bin/ringflow-dump"} <= names
        info = z.getinfo("ringflow/bin/ringflowd")
        assert (info.external_attr >> 16) & 0o111  # executable
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        text = z.read(entry).decode()
        assert "ringflowd = ringflow._cli:ringflowd" in text
        assert any(n.endswith("licenses/LICENSE") for n in names)


def test_sidecar_of_another_version_is_one_warning(user, server1):
    """An older ringflowd still serving the ring after an upgrade: stood in for
    by a process holding the ring's consumer lock whose program answers
    `--version` with another version (python: "Python 3.x.y")."""
    s1 = server1
    user.spool.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import ctypes, sys, time; sys.path.insert(0, sys.argv[1]); import rf_rawring as r;"
         "so = r.lib(); h = ctypes.c_void_p();"
         "o = r.Opts(flags=r.RF_RING_CREATE | r.RF_RING_CONSUMER, spool_dir=sys.argv[3].encode());"
         "assert so.rf_ring_open(ctypes.byref(h), sys.argv[2].encode(), ctypes.byref(o)) == 0;"
         "print('ready', flush=True); time.sleep(600)",
         str(REPO / "tests" / "python"), user.ring, str(user.spool)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        out = user.eval(s1, _uniq("user-old"), 2)
        warnings = own_warnings(out)
        assert len(warnings) == 1, out
        assert f"pid {holder.pid}" in warnings[0] and "is not this ringflow's" in warnings[0]
        assert f"kill {holder.pid}" in warnings[0]
        assert user.sidecar_pid() == holder.pid  # no second sidecar was started beside it
    finally:
        holder.kill()
        holder.wait()
