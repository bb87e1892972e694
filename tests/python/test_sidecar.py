"""ringflowd against a real MLflow server: real evals through hook -> ring ->
ringflowd -> MLflow, checked through MLflow's own client against the log
Inspect wrote.  Faults (429 then 200, a 400 for one entity) come from a proxy
in front of the real server."""

from __future__ import annotations

import json
import math
import re
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from faultproxy import FaultProxy
from test_hook import EVALS, REPO, eval_env

FLOOD = Path(__file__).with_name("rf_flood_prog.py")

# RF_RINGFLOWD: another build of the daemon (make test runs these tests again
# with the ASan+UBSan one: a leak or UB makes it exit non-zero, which fails).
RINGFLOWD = Path(os.environ.get("RF_RINGFLOWD") or REPO / "build" / "release" / "bin" / "ringflowd")


def value_to_float(v):
    """Inspect's value_to_float rules (the reference the sidecar follows)."""
    from inspect_ai.scorer import value_to_float as v2f

    return v2f()(v)


class Sidecar:
    def __init__(self, uri: str, ring: str, spool: Path, experiment: str,
                 log_dir: Path | None = None, **extra: str):
        # The destination an eval names in its run_start (its own env):
        # eval_env(..., **sc.dest) sends the eval where this sidecar points.
        self.dest = dict(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME=experiment)
        if "INSPECT_MLFLOW_LOG_ARTIFACTS" in extra:
            self.dest["INSPECT_MLFLOW_LOG_ARTIFACTS"] = extra["INSPECT_MLFLOW_LOG_ARTIFACTS"]
        env = dict(os.environ)
        env.update(MLFLOW_TRACKING_URI=uri, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool),
                   MLFLOW_EXPERIMENT_NAME=experiment, RINGFLOW_FLUSH_MS="100", **extra)
        spool.mkdir(parents=True, exist_ok=True)
        self.log = (log_dir or spool) / f"ringflowd.test.{time.time_ns()}.log"
        self.proc = subprocess.Popen([str(RINGFLOWD)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"))
        deadline = time.time() + 20  # serving the ring: signals are handled from here on
        while "serving ring" not in self.log.read_text():
            assert self.proc.poll() is None and time.time() < deadline, self.log.read_text()
            time.sleep(0.02)

    def stop(self) -> str:
        """SIGTERM: it flushes what is pending, then exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0
        return self.log.read_text()


def cleanup(sc: Sidecar, ring: str, *procs: subprocess.Popen | None) -> None:
    """After a test, pass or fail: no sidecar (nor producer `procs`) left
    running, no ring left behind."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
    if sc.proc.poll() is None:
        sc.proc.kill()
        sc.proc.wait()
    if os.path.exists(f"/dev/shm{ring}"):
        os.unlink(f"/dev/shm{ring}")


def run_eval(env, log_dir: Path, kind: str, *args: str) -> str:
    p = subprocess.run([sys.executable, str(EVALS), kind, str(log_dir), *args], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout.strip().splitlines()[-3]


@pytest.fixture
def exp_name(request):
    return f"rf-{request.node.name[:40]}-{os.getpid()}-{time.time_ns() % 10**6}"


def runs_of(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, "experiment not created"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def wait_finished(client, experiment: str, timeout: float, runs: int = 2) -> None:
    """Poll until the experiment holds `runs` runs, all FINISHED (or time out)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        exp = client.get_experiment_by_name(experiment)
        found = client.search_runs([exp.experiment_id]) if exp else []
        if len(found) == runs and all(r.info.status == "FINISHED" for r in found):
            return
        time.sleep(0.2)


def history(client, run_id, key):
    return client.get_metric_history(run_id, key)


def samples_in(client, experiment: str, key: str, n: int, timeout: float) -> None:
    """Poll until the task run holds at least n values of `key` (or time out:
    the caller's own checks then say what is missing)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id]) if exp else []
        child = next((r for r in runs if "mlflow.parentRunId" in r.data.tags), None)
        if child and len(history(client, child.info.run_id, key)) >= n:
            return
        time.sleep(0.1)


def flood_result(p: subprocess.Popen, timeout: float) -> dict:
    """What an rf_flood_prog.py process wrote (its last stdout line), once it
    exited cleanly having written all of it."""
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    written = json.loads(out.strip().splitlines()[-1])
    assert written["ok"], written
    return written


def steady_landed(client, experiment: str, written: dict) -> None:
    """A `steady` flood's eval is in MLflow: both runs FINISHED, each
    sample's metric once (none lost, none twice)."""
    parents, children = runs_of(client, experiment)
    assert len(parents) == 1 and len(children) == 1
    c = children[0]
    assert c.info.status == "FINISHED" and parents[0].info.status == "FINISHED"
    steps = [m.step for m in history(client, c.info.run_id, "sample/match")]
    assert sorted(steps) == list(range(written["samples"]))


@pytest.fixture(scope="module")
def rich_run(mlflow_server, tmp_path_factory):
    """One rich eval (tool calls, 3 scorers, 2 epochs, an erroring and a
    retried sample) whose model name has characters MLflow rejects in keys."""
    from inspect_ai.log import read_eval_log

    tmp = tmp_path_factory.mktemp("sidecar-rich")
    ring = f"/rf-pytest-sc-{os.getpid()}"
    exp = f"rf-rich-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = Sidecar(mlflow_server, ring, tmp / "spool", exp)
    try:
        env = eval_env(ring, tmp / "spool", RF_TEST_MODEL="mockllm/vertex@model:v1", **sc.dest)
        location = run_eval(env, tmp / "logs", "rich")
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
    return read_eval_log(location), exp, log_text


def test_runs_tags_params_and_status(rich_run, mlflow_server):
    from mlflow.tracking import MlflowClient

    log, exp, sidecar_log = rich_run
    client = MlflowClient(mlflow_server)
    parents, children = runs_of(client, exp)
    assert len(parents) == 1 and len(children) == 1
    p, c = parents[0], children[0]
    assert p.info.run_name == f"inspect-{log.eval.run_id[:8]}"
    assert p.data.tags["inspect.run_id"] == log.eval.run_id
    assert p.data.tags["inspect.tasks"] == "rich" and p.data.tags["inspect.task_count"] == "1"
    assert c.data.tags["mlflow.parentRunId"] == p.info.run_id
    assert c.info.run_name == "rich"
    assert c.data.tags["inspect.eval_id"] == log.eval.eval_id
    assert c.data.tags["inspect.run_id"] == log.eval.run_id
    assert c.data.tags["inspect.task"] == "rich"
    assert c.data.tags["inspect.model"] == "mockllm/vertex@model:v1"
    assert c.data.params["task"] == "rich" and c.data.params["model"] == "mockllm/vertex@model:v1"
    assert c.data.params["dataset.samples"] == "5"
    assert c.data.params["temperature"] == "0.0" and c.data.params["max_tokens"] == "128"
    assert c.data.params["solver"] == ",".join(s.solver for s in log.plan.steps)
    assert c.info.status == "FINISHED" and p.info.status == "FINISHED"
    assert "rejected=0" in sidecar_log and "malformed=0" in sidecar_log


def test_sample_metrics_match_log(rich_run, mlflow_server):
    from mlflow.tracking import MlflowClient

    log, exp, _ = rich_run
    client = MlflowClient(mlflow_server)
    _, (c,) = runs_of(client, exp)
    scored = [s for s in log.samples if s.scores]
    for scorer in ("match", "grade"):
        got = sorted(m.value for m in history(client, c.info.run_id, f"sample/{scorer}"))
        want = sorted(value_to_float(s.scores[scorer].value) for s in scored)
        assert got == pytest.approx(want), scorer
    # Dict scores become one metric per key.
    acc = sorted(m.value for m in history(client, c.info.run_id, "sample/rubric/accuracy"))
    assert acc == sorted(s.scores["rubric"].value["accuracy"] for s in scored)
    tt = history(client, c.info.run_id, "sample/total_time")
    assert sorted(m.value for m in tt) == pytest.approx(sorted(s.total_time for s in log.samples))
    assert sorted(m.step for m in tt) == list(range(len(log.samples)))  # completion order
    wt = history(client, c.info.run_id, "sample/working_time")
    assert len(wt) == len(log.samples)


def test_task_metrics_match_log(rich_run, mlflow_server):
    from mlflow.tracking import MlflowClient

    log, exp, _ = rich_run
    client = MlflowClient(mlflow_server)
    _, (c,) = runs_of(client, exp)
    m = c.data.metrics
    for s in log.results.scores:
        for name, metric in s.metrics.items():
            assert m[f"{s.name}/{name}"] == pytest.approx(metric.value), f"{s.name}/{name}"
    assert m["total_samples"] == log.results.total_samples
    assert m["completed_samples"] == log.results.completed_samples
    # The model name has '@': its usage metrics are there, under a sanitised key.
    ((model, u),) = log.stats.model_usage.items()
    key = "usage/mockllm/vertex_model:v1"
    assert m[f"{key}/input_tokens"] == u.input_tokens
    assert m[f"{key}/output_tokens"] == u.output_tokens
    assert m[f"{key}/total_tokens"] == u.total_tokens
    assert m[f"{key}/input_cache_read_tokens"] == u.input_tokens_cache_read
    assert m[f"{key}/reasoning_tokens"] == u.reasoning_tokens
    assert m[f"{key}/total_cost_usd"] == pytest.approx(u.total_cost)
    assert m["cost/total_usd"] == pytest.approx(u.total_cost)
    times = sorted(s.total_time for s in log.samples)
    assert m["latency/per_sample_mean_seconds"] == pytest.approx(sum(times) / len(times))
    n_model = sum(1 for s in log.samples for e in s.events if e.event == "model")
    n_tool = sum(1 for s in log.samples for e in s.events if e.event == "tool")
    assert m["total_model_calls"] == n_model and m["total_tool_calls"] == n_tool
    # Live event metrics: once per unique event.
    assert len(history(client, c.info.run_id, "event/model_call")) == n_model
    assert len(history(client, c.info.run_id, "event/tool_call")) == n_tool
    tokens = sum(x.value for x in history(client, c.info.run_id, "event/input_tokens"))
    assert tokens == u.input_tokens


def test_two_processes_one_sidecar_and_faults(mlflow_server, tmp_path, exp_name):
    """Two concurrent Inspect processes into one ringflowd, behind a proxy
    that answers 429 to the first log-batches and 400 to a batch carrying one
    particular metric: everything else lands, the 400 is reported, once."""
    from mlflow.tracking import MlflowClient

    proxy = FaultProxy(mlflow_server, fail_batches=3, reject_key="sample/total_time", reject_step=7)
    ring = f"/rf-pytest-two-{os.getpid()}"
    sc = Sidecar(proxy.url, ring, tmp_path / "spool", exp_name)
    try:
        env = eval_env(ring, tmp_path / "spool", **sc.dest)
        procs = [subprocess.Popen([sys.executable, str(EVALS), "plain", str(tmp_path / f"logs{i}"), "30"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
        proxy.close()
    client = MlflowClient(mlflow_server)
    parents, children = runs_of(client, exp_name)
    assert len(parents) == 2 and len(children) == 2
    for c in children:
        assert c.info.status == "FINISHED"
        assert len(history(client, c.info.run_id, "sample/includes")) == 30
        steps = sorted(m.step for m in history(client, c.info.run_id, "sample/total_time"))
        assert steps == [s for s in range(30) if s != 7]  # only the refused entity is missing
        assert c.data.metrics["total_samples"] == 30
    assert proxy.injected[429] == 3 and proxy.injected[400] >= 2
    assert "rejected=2 " in log_text and "injected: metric sample/total_time refused" in log_text
    # Batched: many entities per request, not one request per metric.
    import re

    sent = sum(int(re.search(rf"{k}=(\d+)", log_text).group(1)) for k in ("metrics", "params", "tags"))
    batches = proxy.counts["/api/2.0/mlflow/runs/log-batch"]
    assert sent / batches >= 5, (sent, proxy.counts)


def test_restart_reuses_runs(mlflow_server, tmp_path, exp_name):
    """A sidecar restarted mid-eval keeps writing into the same runs."""
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-restart-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name)
    try:
        env = eval_env(ring, spool, **sc.dest)
        p = subprocess.Popen([sys.executable, str(EVALS), "plain", str(tmp_path / "logs"), "120", "10"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = MlflowClient(mlflow_server)
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until the runs exist
            exp = client.get_experiment_by_name(exp_name)
            if exp and len(client.search_runs([exp.experiment_id])) == 2:
                break
            time.sleep(0.2)
        sc.stop()
        sc = Sidecar(mlflow_server, ring, spool, exp_name)
        out = p.communicate(timeout=300)
        assert p.returncode == 0, out
        sc.stop()
    finally:
        cleanup(sc, ring)
    parents, children = runs_of(client, exp_name)
    assert len(parents) == 1 and len(children) == 1  # no run created twice
    assert children[0].info.status == "FINISHED" and parents[0].info.status == "FINISHED"
    assert children[0].data.metrics["total_samples"] == 120


def test_deleted_experiment_is_restored(mlflow_server, tmp_path, exp_name):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    client.delete_experiment(client.create_experiment(exp_name))
    ring = f"/rf-pytest-del-{os.getpid()}"
    sc = Sidecar(mlflow_server, ring, tmp_path / "spool", exp_name)
    try:
        run_eval(eval_env(ring, tmp_path / "spool", **sc.dest), tmp_path / "logs", "plain", "3")
        sc.stop()
    finally:
        cleanup(sc, ring)
    exp = client.get_experiment_by_name(exp_name)
    assert exp.lifecycle_stage == "active"
    assert len(client.search_runs([exp.experiment_id])) == 2


def test_sigkill_mid_eval_loses_nothing_duplicates_nothing(mlflow_server, tmp_path, exp_name):
    """ringflowd SIGKILLed mid-eval and restarted: every sample metric lands
    exactly once, no run is created twice (journal replay + id map)."""
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-kill-{os.getpid()}"
    spool = tmp_path / "spool"
    client = MlflowClient(mlflow_server)
    sc = Sidecar(mlflow_server, ring, spool, exp_name)
    try:
        env = eval_env(ring, spool, **sc.dest)
        p = subprocess.Popen([sys.executable, str(EVALS), "plain", str(tmp_path / "logs"), "150", "10"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples_in(client, exp_name, "sample/includes", 20, 120)  # the eval still running
        assert p.poll() is None, "eval finished before the kill: make it longer"
        sc.proc.kill()  # SIGKILL: no flush, no cleanup
        sc.proc.wait()
        sc = Sidecar(mlflow_server, ring, spool, exp_name)
        out = p.communicate(timeout=300)
        assert p.returncode == 0, out
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
    assert "replayed" in log_text
    parents, children = runs_of(client, exp_name)
    assert len(parents) == 1 and len(children) == 1
    c = children[0]
    assert c.info.status == "FINISHED" and parents[0].info.status == "FINISHED"
    steps = [m.step for m in history(client, c.info.run_id, "sample/total_time")]
    assert sorted(steps) == list(range(150))  # each sample once: none lost, none twice
    assert len(history(client, c.info.run_id, "sample/includes")) == 150
    assert c.data.metrics["total_samples"] == 150


def test_sigterm_while_records_keep_coming_exits_in_time_and_loses_nothing(mlflow_server,
                                                                           tmp_path, exp_name):
    """`systemctl restart ringflowd` while a producer writes a record every
    2 ms (the ring never stays empty for long): ringflowd must stop taking
    records and exit within its flush window (RINGFLOW_SHUTDOWN_MS, 2 s here),
    and the next ringflowd carries on with nothing lost or doubled."""
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-term-{os.getpid()}"
    spool = tmp_path / "spool"
    client = MlflowClient(mlflow_server)
    sc = Sidecar(mlflow_server, ring, spool, exp_name, RINGFLOW_SHUTDOWN_MS="2000")
    p = None
    try:
        p = subprocess.Popen([sys.executable, str(FLOOD), "steady", "20", "2"],
                             env=eval_env(ring, spool, **sc.dest), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        samples_in(client, exp_name, "sample/match", 100, 60)  # more keep coming
        sent = time.time()
        sc.proc.send_signal(signal.SIGTERM)
        try:
            assert sc.proc.wait(timeout=20) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("ringflowd did not exit within 20 s of SIGTERM while records kept coming")
        assert p.poll() is None, "the producer ended before ringflowd exited: make it longer"
        assert time.time() - sent < 20
        sc = Sidecar(mlflow_server, ring, spool, exp_name)
        written = flood_result(p, 120)
        sc.stop()
    finally:
        cleanup(sc, ring, p)
    steady_landed(client, exp_name, written)


def test_a_running_evals_metrics_arrive_while_it_runs_in_few_batches(mlflow_server, tmp_path,
                                                                     exp_name):
    """A long eval's sample metrics are in MLflow while its run is still
    RUNNING, sent every RINGFLOW_METRICS_MS (5 s by default) or per full
    log-batch, not every second: a 14 s eval writing ~3 metrics every 40 ms
    costs a handful of log-batches, and its end sends the rest at once."""
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-live-{os.getpid()}"
    spool = tmp_path / "spool"
    client = MlflowClient(mlflow_server)
    proxy = FaultProxy(mlflow_server)
    sc = Sidecar(proxy.url, ring, spool, exp_name)  # RINGFLOW_METRICS_MS: the default
    p, live = None, 0
    try:
        p = subprocess.Popen([sys.executable, str(FLOOD), "steady", "14", "40"],
                             env=eval_env(ring, spool, **sc.dest), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        while p.poll() is None:
            exp = client.get_experiment_by_name(exp_name)
            runs = client.search_runs([exp.experiment_id]) if exp else []
            child = next((r for r in runs if "mlflow.parentRunId" in r.data.tags), None)
            if child and child.info.status == "RUNNING":
                live = max(live, len(history(client, child.info.run_id, "sample/match")))
            time.sleep(0.5)
        written = flood_result(p, 30)
        sc.stop()
    finally:
        cleanup(sc, ring, p)
        proxy.close()
    steady_landed(client, exp_name, written)
    # Seen while it ran (the run RUNNING): at least the first 5 s interval's.
    assert live >= written["samples"] / 4, (live, written)
    # ~14 s at 5 s: <= 3 timed batches per run, plus the params and the ends.
    batches = proxy.counts["/api/2.0/mlflow/runs/log-batch"]
    assert batches <= 9, (batches, dict(proxy.counts))


def test_artifacts_present_and_parseable(rich_run, mlflow_server, tmp_path):
    import json as _json

    from mlflow.tracking import MlflowClient

    log, exp, _ = rich_run
    client = MlflowClient(mlflow_server)
    _, (c,) = runs_of(client, exp)
    rid = c.info.run_id
    listed = {f.path for f in client.list_artifacts(rid, "inspect")}
    assert {"inspect/tasks.json", "inspect/samples.json", "inspect/sample_scores.json",
            "inspect/events.json", "inspect/model_usage.json", "inspect/messages.json"} <= listed

    def table(name):
        t = _json.loads(Path(client.download_artifacts(rid, f"inspect/{name}.json", str(tmp_path))).read_text())
        return [dict(zip(t["columns"], row)) for row in t["data"]]

    (task,) = table("tasks")
    assert task["task_name"] == "rich" and task["eval_id"] == log.eval.eval_id
    samples = table("samples")
    assert {(s["sample_id"], s["epoch"]) for s in samples} == {(s.id, s.epoch) for s in log.samples}
    scores = table("sample_scores")
    scored = [s for s in log.samples if s.scores]
    assert len(scores) == sum(len(s.scores) for s in scored)
    for row in scores:  # every row has its sample and explanation (inspect-mlflow's lack them)
        smp = next(s for s in scored if (s.id, s.epoch) == (row["sample_id"], row["epoch"]))
        assert row["explanation"] == smp.scores[row["scorer"]].explanation
    usage = table("model_usage")
    assert all(isinstance(u["total_cost"], float) and u["total_cost"] > 0 for u in usage)  # not cast to int
    events = table("events")
    assert sum(e["event_type"] == "tool" for e in events) == \
        sum(1 for s in log.samples for e in s.events if e.event == "tool")
    results = _json.loads(Path(client.download_artifacts(
        rid, f"sample_results/{log.eval.eval_id}.json", str(tmp_path))).read_text())
    assert len(results) == len(log.samples) and all("score/match" in r for r in results if not r["error"])
    # The raw Inspect log, byte for byte.
    name = Path(log.location).name
    got = Path(client.download_artifacts(rid, f"inspect/logs/{name}", str(tmp_path))).read_bytes()
    assert got == Path(log.location).read_bytes()
    # From Inspect's own .eval (zstd members): the conversation and the header.
    messages = table("messages")
    assert len(messages) == sum(len(s.messages) for s in log.samples)
    assert {m["role"] for m in messages} >= {"user", "assistant", "tool"}
    header = _json.loads(Path(client.download_artifacts(
        rid, f"eval_logs/{log.eval.eval_id}.json", str(tmp_path))).read_text())
    assert header["eval"]["eval_id"] == log.eval.eval_id and header["status"] == log.status
    assert "samples" not in header or not header["samples"]
    logged = _json.loads(c.data.tags["mlflow.loggedArtifacts"])
    assert {x["path"] for x in logged} >= {"inspect/samples.json", "inspect/sample_scores.json"}


def test_artifacts_switch_off(mlflow_server, tmp_path, exp_name):
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-noart-{os.getpid()}"
    sc = Sidecar(mlflow_server, ring, tmp_path / "spool", exp_name, INSPECT_MLFLOW_LOG_ARTIFACTS="false")
    try:
        run_eval(eval_env(ring, tmp_path / "spool", **sc.dest), tmp_path / "logs", "plain", "3")
        sc.stop()
    finally:
        cleanup(sc, ring)
    client = MlflowClient(mlflow_server)
    _, (c,) = runs_of(client, exp_name)
    assert client.list_artifacts(c.info.run_id) == []
    assert c.data.metrics["total_samples"] == 3  # the rest is unaffected


def test_mlflow_down_60s_mid_eval_loses_nothing(tmp_path, exp_name):
    """The MLflow server stopped for 60 s mid-eval, then restarted: the eval
    never waits on it (the hook only writes the ring), ringflowd keeps
    draining, retries, and every sample's metrics land once."""
    from conftest import MlflowServer
    from mlflow.tracking import MlflowClient

    server = MlflowServer(tmp_path / "mlflow").start()
    ring = f"/rf-pytest-down-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(server.uri, ring, spool, exp_name)
    try:
        env = eval_env(ring, spool, **sc.dest)
        t_eval = time.time()
        p = subprocess.Popen([sys.executable, str(EVALS), "plain", str(tmp_path / "logs"), "200", "4"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = MlflowClient(server.uri)
        deadline = time.time() + 120
        while time.time() < deadline:  # the runs exist and samples are flowing
            exp = client.get_experiment_by_name(exp_name)
            runs = client.search_runs([exp.experiment_id]) if exp else []
            child = next((r for r in runs if "mlflow.parentRunId" in r.data.tags), None)
            if child and history(client, child.info.run_id, "sample/includes"):
                break
            time.sleep(0.1)
        server.stop()
        t_down = time.time()
        out = p.communicate(timeout=600)  # the eval goes on without MLflow
        assert p.returncode == 0, out
        # Reported, not asserted (timing): the same eval without an outage
        # takes about as long (the hook only writes shared memory).
        print(f"eval wall time {time.time() - t_eval:.1f} s, MLflow stopped "
              f"{t_down - t_eval:.1f} s into it")
        eval_done_during_outage = time.time() - t_down < 60
        time.sleep(max(0.0, 60 - (time.time() - t_down)))
        server.start()
        client = MlflowClient(server.uri)
        deadline = time.time() + 120  # ringflowd catches up on its own
        while time.time() < deadline:
            _, children = runs_of(client, exp_name)
            if children and children[0].info.status == "FINISHED":
                break
            time.sleep(0.2)
        print(f"caught up {time.time() - t_down - 60:.1f} s after the server was back")
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
        server.stop()
    server.start()
    try:
        client = MlflowClient(server.uri)
        parents, children = runs_of(client, exp_name)
        assert len(parents) == 1 and len(children) == 1
        c = children[0]
        assert c.info.status == "FINISHED" and c.data.metrics["total_samples"] == 200
        steps = sorted(m.step for m in history(client, c.info.run_id, "sample/total_time"))
        assert steps == list(range(200))  # every sample once
        m = re.search(r"retries=(\d+)", log_text)
        assert m and int(m.group(1)) > 0  # it did have to retry
        print(f"eval finished during the outage: {eval_done_during_outage}")
    finally:
        server.stop()


def test_no_sidecar_during_eval_larger_than_ring(mlflow_server, tmp_path, exp_name):
    """No ringflowd while an eval writes more than the ring holds: the hook
    spills to files; a sidecar started afterwards ingests ring and spill files
    and every sample lands once."""
    import ringflow
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-nosc-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    ringflow.Producer(ring=ring, spool_dir=str(spool), capacity=65536).close()  # 64 KiB
    sc = None
    try:
        run_eval(eval_env(ring, spool, MLFLOW_TRACKING_URI=mlflow_server,
                          MLFLOW_EXPERIMENT_NAME=exp_name), tmp_path / "logs", "plain", "300")
        spilled = list(spool.glob("spill-*"))
        assert spilled, "the eval should have outgrown the ring"
        sc = Sidecar(mlflow_server, ring, spool, exp_name)
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 120)
        log_text = sc.stop()
    finally:
        if sc:
            cleanup(sc, ring)
        elif os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")
    parents, children = runs_of(client, exp_name)
    assert len(parents) == 1 and len(children) == 1
    c = children[0]
    assert c.info.status == "FINISHED" and c.data.metrics["total_samples"] == 300
    steps = sorted(m.step for m in history(client, c.info.run_id, "sample/total_time"))
    assert steps == list(range(300))
    assert not list(spool.glob("spill-*")), "ingested spill files are removed"
    assert "ring_spilled=0" not in log_text


@pytest.mark.parametrize("mode", ["verify_default", "ca_path", "insecure"])
def test_tls_verification(mlflow_server, tmp_path, exp_name, mode):
    """TLS is verified by default (a self-signed server is refused, reported,
    nothing sent); MLFLOW_TRACKING_SERVER_CERT_PATH trusts it; only
    MLFLOW_TRACKING_INSECURE_TLS=true turns verification off."""
    from mlflow.tracking import MlflowClient

    from tlsproxy import TlsProxy, make_cert

    key, cert = make_cert(tmp_path)
    proxy = TlsProxy(mlflow_server, key, cert)
    extra = {"ca_path": {"MLFLOW_TRACKING_SERVER_CERT_PATH": str(cert)},
             "insecure": {"MLFLOW_TRACKING_INSECURE_TLS": "true"}}.get(mode, {})
    ring = f"/rf-pytest-tls-{os.getpid()}"
    sc = Sidecar(proxy.url, ring, tmp_path / "spool", exp_name, RINGFLOW_SHUTDOWN_MS="2000", **extra)
    try:
        run_eval(eval_env(ring, tmp_path / "spool", **sc.dest), tmp_path / "logs", "plain", "3")
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, (60 if mode != "verify_default" else 5))
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
        proxy.close()
    exp = client.get_experiment_by_name(exp_name)
    if mode == "verify_default":
        assert exp is None  # nothing went to an unverified server
        assert proxy.handshake_failures > 0
        assert "certificate" in log_text.lower()  # the reason is reported
    else:
        assert len(client.search_runs([exp.experiment_id])) == 2


def test_canary_secret_never_reaches_mlflow(mlflow_server, tmp_path, exp_name):
    """A secret in the environment, a model arg, a task arg and the prompt
    text, and the sidecar's own token: none of it in MLflow's params, tags,
    metrics or artifacts, nor in ringflowd's log.  The sidecar has the eval's
    environment, as when the hook starts it: the conversation and header it
    copies from Inspect's log are redacted, and the raw log (a zip it cannot
    edit) is withheld because it holds the secret."""
    from mlflow.tracking import MlflowClient

    canary = "rfcanary-E2E-5b9d-SECRET-0417"
    ring = f"/rf-pytest-canary-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name, MLFLOW_TRACKING_TOKEN=canary + "-token",
                 OPENAI_API_KEY=canary)
    try:
        env = eval_env(ring, spool, OPENAI_API_KEY=canary, RF_TEST_SECRET=canary, **sc.dest)
        run_eval(env, tmp_path / "logs", "plain", "3")
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name(exp_name)
    seen = []
    for r in client.search_runs([exp.experiment_id]):
        seen += [str(r.data.params), str(r.data.tags), str(r.data.metrics)]
        dest = tmp_path / "dl" / r.info.run_id
        dest.mkdir(parents=True)
        client.download_artifacts(r.info.run_id, "", str(dest))
        for f in dest.rglob("*"):
            if f.is_file():
                seen.append(f.read_text(errors="replace"))
                assert not f.name.endswith(".eval"), "the raw log holds the secret"
    blob = "\n".join(seen)
    assert "task_arg.password" in blob  # the param is there, its value is not
    assert '"messages.json"' in blob or "message_index" in blob  # the conversation went, redacted
    assert canary not in blob
    assert canary not in log_text
    assert "raw Inspect log withheld" in log_text
