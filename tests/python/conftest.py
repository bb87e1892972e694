"""Shared fixtures for ringflow's Python tests.

Everything here runs offline: the only network is loopback to an mlflow
server that this file starts itself.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # the venv this pytest runs from

# Set before mlflow / inspect_ai are imported anywhere in the session, so
# nothing phones home (CI has no network beyond the package registries).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("INSPECT_DISPLAY", "none")  # no rich live display in logs
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TIKTOKEN_CACHE_DIR", tempfile.mkdtemp(prefix="rf-tiktoken-"))
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

SERVER_START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the server and its uvicorn workers: they share its process group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


class MlflowServer:
    """A real `mlflow server` (sqlite + served artifacts) on a loopback port.
    stop() and start() again keep its port and database (for outage tests)."""

    def __init__(self, root: Path, port: int | None = None, backend_uri: str | None = None,
                 host: str = "127.0.0.1", workers: int = 1, allowed_hosts: str = ""):
        self.root = root
        self.port = port or _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.backend_uri = backend_uri or f"sqlite:///{root}/mlflow.db"
        self.host, self.workers, self.allowed_hosts = host, workers, allowed_hosts
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self) -> "MlflowServer":
        # `python -m mlflow` with this interpreter: a venv's console scripts
        # name the interpreter it was created with, which a copied venv
        # (a git worktree's) does not share packages with.
        log_path = self.root / "server.log"
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.root / "artifacts"),
            "--serve-artifacts",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
            # The default host check already admits localhost/127.0.0.1; naming
            # them keeps this working if a later mlflow narrows the default.
            # Any loopback port: the TLS and fault proxies in front pass their own.
            "--allowed-hosts", "127.0.0.1:*,localhost:*,127.0.0.1,localhost" + self.allowed_hosts,
        ]
        env = dict(os.environ)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        # MLflow 3.x starts a job runner (huey consumers, several processes
        # polling) beside every server for scorer jobs these tests never use;
        # on a 2-core machine running several servers they cost more CPU
        # than the requests under test.  A user's own server may keep it on.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        # The first LLM span naming a provider (mlflow.llm.provider) makes the
        # server fetch a model price catalog from the network; offline that
        # stalls the request ~7 s. Empty turns the fetch off.
        env["MLFLOW_MODEL_CATALOG_URI"] = ""
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")
        # Own session/process group so stop() can kill the worker children too.
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.root,
                                     start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {self.proc.returncode}:\n"
                            + log_path.read_text(errors="replace")[-4000:])
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT:.0f}s:\n"
                            + log_path.read_text(errors="replace")[-4000:])
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
            self.proc = None
        if self.log:
            self.log.close()
            self.log = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` for the session; yields its tracking URI."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def ring(tmp_path):
    """A ring name of this test's own; its segment is removed afterwards."""
    name = f"/rf-pytest-{os.getpid()}-{tmp_path.name[-20:]}"
    yield name
    try:
        os.unlink(f"/dev/shm{name}")
    except FileNotFoundError:
        pass


@pytest.fixture
def inspect_log_dir(tmp_path, monkeypatch):
    """A private Inspect log dir per test (Inspect writes ./logs by default)."""
    d = tmp_path / "inspect-logs"
    d.mkdir()
    monkeypatch.setenv("INSPECT_LOG_DIR", str(d))
    return d


@pytest.fixture
def run_mock_eval(inspect_log_dir):
    """Run a real Inspect AI eval() against mockllm/model.

    Usage: log = run_mock_eval(samples=[("q", "target"), ...],
                               outputs=["answer", ...], usage=ModelUsage(...))
    Every mock output carries `usage`: without it Inspect counts tokens
    itself with tiktoken, which downloads an encoding and fails offline.
    """
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    def _run(samples, outputs, usage: "ModelUsage", scorer=None, **eval_kwargs):
        assert len(outputs) == len(samples), "one mock output per sample"
        custom = []
        for text in outputs:
            out = ModelOutput.from_content(model="mockllm/model", content=text)
            out.usage = usage.model_copy()
            custom.append(out)
        model = get_model("mockllm/model", custom_outputs=custom)
        task = Task(
            dataset=[Sample(input=q, target=t) for q, t in samples],
            solver=generate(),
            scorer=scorer if scorer is not None else match(),
        )
        logs = inspect_eval(task, model=model, log_dir=str(inspect_log_dir),
                            display="none", **eval_kwargs)
        assert len(logs) == 1
        return logs[0]

    return _run


def pytest_configure(config):
    # inspect_ai 0.3.285 passes a tenacity argument tenacity now deprecates;
    # harmless, and not ours to fix, so keep it out of the test output.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:The 'initial' parameter is deprecated:DeprecationWarning",
    )
