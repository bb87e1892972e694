"""MLflow traces from real Inspect evals: hook -> ring -> ringflowd -> a real
MLflow server (and a copy to an OTLP receiver on loopback), checked through
MLflow's own client against the log Inspect wrote.

Model calls take 30 ms here (RF_TEST_MODEL_DELAY), so a span stamped with the
time a record arrived, or a zero-length one, fails the timing checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import test_sidecar as ts
from faultproxy import FaultProxy
from test_hook import REPO, eval_env

ARTIFACTS = REPO / "tests" / "artifacts"


class OtlpReceiver:
    """A minimal OTLP/HTTP JSON collector: keeps every request's spans and headers."""

    def __init__(self):
        self.requests: list[tuple[dict, dict]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[dict]:
        out = []
        for _, body in self.requests:
            for rs in body["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    out.extend(ss["spans"])
        return out

    def close(self):
        self.server.shutdown()


def traced_eval(mlflow_server, tmp: Path, mode: str = "sample", **sidecar_env: str):
    from inspect_ai.log import read_eval_log

    ring = f"/rf-pytest-tr-{mode}-{os.getpid()}"
    exp = f"rf-traces-{mode}-{os.getpid()}-{time.time_ns() % 10**6}"
    # SIGTERM flushes everything (a loaded CI host may need more than 10 s).
    sidecar_env.setdefault("RINGFLOW_SHUTDOWN_MS", "120000")
    sc = ts.Sidecar(mlflow_server, ring, tmp / "spool", exp, **sidecar_env)
    try:
        env = eval_env(ring, tmp / "spool", MLFLOW_INSPECT_TRACING="true",
                       MLFLOW_INSPECT_TRACE_MODE=mode, RF_TEST_MODEL_DELAY="0.03", **sc.dest)
        location = ts.run_eval(env, tmp / "logs", "rich")
        log_text = sc.stop()
    finally:
        ts.cleanup(sc, ring)
    return read_eval_log(location), exp, log_text


@pytest.fixture(scope="module")
def receiver():
    r = OtlpReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def sample_traces(mlflow_server, tmp_path_factory, receiver):
    from mlflow import MlflowClient

    log, exp, log_text = traced_eval(
        mlflow_server, tmp_path_factory.mktemp("traces-sample"),
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.url,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-rf-test=abc%20def,x-other=1",
        MLFLOW_TRACKING_TOKEN="rf-mlflow-token-not-for-collectors")
    client = MlflowClient(mlflow_server)
    e = client.get_experiment_by_name(exp)
    traces = client.search_traces(locations=[e.experiment_id], max_results=500)
    return log, exp, log_text, client, e, traces


def assessment_names(s) -> set[str]:
    """inspect/<scorer>, or inspect/<scorer>/<key> per key of a dict score."""
    out = set()
    for k, sc in (s.scores or {}).items():
        out |= {f"inspect/{k}/{x}" for x in sc.value} if isinstance(sc.value, dict) else {f"inspect/{k}"}
    return out


def by_sample(traces):
    return {(t.info.tags["inspect.sample_id"], int(t.info.tags["inspect.epoch"])): t for t in traces}


def test_one_trace_per_sample_tagged_and_linked(sample_traces):
    log, exp, log_text, client, e, traces = sample_traces
    assert "traces_failed=0" in log_text and "spans_failed=0" in log_text, log_text
    assert len(traces) == len(log.samples)
    assert set(by_sample(traces)) == {(str(s.id), s.epoch) for s in log.samples}
    _, children = ts.runs_of(client, exp)
    (task_run,) = children
    for t in traces:
        tags = t.info.tags
        assert tags["inspect.run_id"] == log.eval.run_id
        assert tags["inspect.eval_id"] == log.eval.eval_id
        assert tags["inspect.task"] == log.eval.task
        assert tags["mlflow.traceName"].startswith(f"sample:{tags['inspect.sample_id']}")
        assert t.info.trace_metadata["mlflow.sourceRun"] == task_run.info.run_id
    linked = client.search_traces(locations=[e.experiment_id], run_id=task_run.info.run_id,
                                  max_results=500)
    assert len(linked) == len(traces)


def _ns(ts_) -> int:
    return int(round(ts_.timestamp() * 1e9))


def test_span_tree_types_and_true_timings(sample_traces):
    log, _, _, _, _, traces = sample_traces
    found = by_sample(traces)
    checked = {"LLM": 0, "TOOL": 0}
    for s in log.samples:
        t = found[(str(s.id), s.epoch)]
        spans = {sp.span_id: sp for sp in t.data.spans}
        roots = [sp for sp in spans.values() if sp.parent_id is None]
        assert len(roots) == 1 and roots[0].span_type == "CHAIN"
        assert roots[0].name.startswith("sample:")
        by_event = {sp.attributes["inspect.event_uuid"]: sp for sp in spans.values()
                    if "inspect.event_uuid" in sp.attributes}
        by_ispan = {sp.attributes["inspect.span_id"]: sp for sp in spans.values()
                    if "inspect.span_id" in sp.attributes}
        for ev in s.events:
            if ev.event == "span_begin" and ev.id in by_ispan and ev.parent_id in by_ispan:
                # Inspect's own nesting is kept.
                assert spans[by_ispan[ev.id].parent_id] is by_ispan[ev.parent_id]
            if ev.event not in ("model", "tool") or ev.uuid not in by_event:
                continue
            sp = by_event[ev.uuid]
            assert sp.span_type == ("LLM" if ev.event == "model" else "TOOL")
            # The event's own times, within 1 ms; never the arrival time.
            assert abs(sp.start_time_ns - _ns(ev.timestamp)) <= 1_000_000
            assert abs(sp.end_time_ns - _ns(ev.completed)) <= 1_000_000
            assert sp.attributes["working_time"] == pytest.approx(ev.working_time, rel=1e-6)
            if ev.event == "model":
                assert sp.end_time_ns - sp.start_time_ns >= 25_000_000  # the 30 ms call
                u = sp.attributes["mlflow.chat.tokenUsage"]
                assert u["input_tokens"] == ev.output.usage.input_tokens
                assert u["output_tokens"] == ev.output.usage.output_tokens
                assert sp.attributes["mlflow.llm.model"] == ev.model
                assert sp.inputs["input"][0]["role"] == "user"
            checked["LLM" if ev.event == "model" else "TOOL"] += 1
        scores = [sp for sp in spans.values() if sp.span_type == "EVALUATOR" and
                  sp.name.startswith("score:")]
        for sp in scores:  # under their scorer's span
            assert spans[sp.parent_id].name == sp.name.split(":", 1)[1]
    assert checked["LLM"] >= 10 and checked["TOOL"] >= 4, checked


def test_assessments_equal_logged_scores(sample_traces):
    log, _, _, _, _, traces = sample_traces
    found = by_sample(traces)
    n = 0
    for s in log.samples:
        t = found[(str(s.id), s.epoch)]
        got = {a.name: a for a in t.info.assessments}
        assert set(got) == assessment_names(s)
        for name, sc in (s.scores or {}).items():
            v = sc.value
            # value_to_float's numbers (C 1, P 0.5, ...), dict scores one per key
            for aname, num in ({f"inspect/{name}/{k}": x for k, x in v.items()} if isinstance(v, dict)
                               else {f"inspect/{name}": v}).items():
                a = got[aname]
                assert a.value == pytest.approx(ts.value_to_float(num))
                assert a.rationale == (sc.explanation or None)
                assert a.source.source_type == "CODE" and a.source.source_id == "inspect_ai"
                n += 1
    assert n >= 20


def test_error_spans_marked(sample_traces):
    log, _, _, _, _, traces = sample_traces
    found = by_sample(traces)
    failed = [s for s in log.samples if s.error is not None]
    assert failed, "the rich eval has an always-failing sample"
    for s in failed:
        t = found[(str(s.id), s.epoch)]
        assert t.info.state.value == "ERROR"
        root = [sp for sp in t.data.spans if sp.parent_id is None][0]
        assert root.status.status_code.value == "ERROR"
        assert any(e.name == "exception" for e in root.events)
    ok = [found[(str(s.id), s.epoch)] for s in log.samples if s.error is None]
    assert all(t.info.state.value == "OK" for t in ok)


def test_otlp_export_copy(sample_traces, receiver):
    _, _, log_text, _, _, traces = sample_traces
    got = receiver.spans()
    mlflow_spans = {(t.info.trace_id[3:], sp.span_id) for t in traces for sp in t.data.spans}
    assert {(s["traceId"], s["spanId"]) for s in got} == mlflow_spans
    for headers, _ in receiver.requests:
        h = {k.lower(): v for k, v in headers.items()}
        assert h["x-rf-test"] == "abc def" and h["x-other"] == "1"
        assert "authorization" not in h  # MLflow's credentials stay with MLflow
        assert h["content-type"].startswith("application/json")
    assert "export_failed=0" in log_text


def test_run_mode_one_trace_with_hierarchy(mlflow_server, tmp_path):
    from mlflow import MlflowClient

    log, exp, log_text = traced_eval(mlflow_server, tmp_path, mode="run")
    client = MlflowClient(mlflow_server)
    e = client.get_experiment_by_name(exp)
    (t,) = client.search_traces(locations=[e.experiment_id], max_results=10)
    spans = {sp.span_id: sp for sp in t.data.spans}
    (root,) = [sp for sp in spans.values() if sp.parent_id is None]
    assert root.name == f"eval_run:{log.eval.run_id[:8]}"
    tasks = [sp for sp in spans.values() if sp.parent_id == root.span_id]
    assert [sp.name for sp in tasks] == [f"task:{log.eval.task}"]
    samples = [sp for sp in spans.values() if sp.parent_id == tasks[0].span_id]
    assert len(samples) == len(log.samples)
    assert len(t.info.assessments) == sum(len(assessment_names(s)) for s in log.samples)
    parents, _ = ts.runs_of(client, exp)
    assert t.info.trace_metadata["mlflow.sourceRun"] == parents[0].info.run_id


def test_run_reads_finished_only_once_its_traces_are_in(mlflow_server, tmp_path):
    """Automation waits for a run to read FINISHED, then reads its traces:
    with trace calls answered slowly (0.4 s each, so the last traces land
    seconds after the run's own data), every trace linked to the task run
    must already be there, assessments included, the moment it is FINISHED.
    The sidecar keeps running: nothing here waits for its shutdown flush."""
    from inspect_ai.log import read_eval_log
    from mlflow import MlflowClient

    from faultproxy import FaultProxy

    proxy = FaultProxy(mlflow_server, delay={"/api/3.0/mlflow/traces": 0.4})
    ring = f"/rf-pytest-tr-hold-{os.getpid()}"
    exp = f"rf-traces-hold-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = ts.Sidecar(proxy.url, ring, tmp_path / "spool", exp)
    try:
        env = eval_env(ring, tmp_path / "spool", MLFLOW_INSPECT_TRACING="true", **sc.dest)
        log = read_eval_log(ts.run_eval(env, tmp_path / "logs", "rich"))
        client = MlflowClient(mlflow_server)
        deadline = time.time() + 120
        while True:  # the task run, the moment it reads FINISHED
            _, children = ts.runs_of(client, exp) if client.get_experiment_by_name(exp) else (0, [])
            if children and children[0].info.status == "FINISHED":
                break
            assert time.time() < deadline, "the task run never read FINISHED"
            time.sleep(0.05)
        e = client.get_experiment_by_name(exp)
        traces = client.search_traces(locations=[e.experiment_id], run_id=children[0].info.run_id,
                                      max_results=500)
        text = sc.stop()
    finally:
        ts.cleanup(sc, ring)
        proxy.close()
    assert set(by_sample(traces)) == {(str(s.id), s.epoch) for s in log.samples}
    for s in log.samples:
        t = by_sample(traces)[(str(s.id), s.epoch)]
        assert {a.name for a in t.info.assessments} == assessment_names(s)
    held = re.search(r"run_ends_held=(\d+) run_end_hold_expired=(\d+)", text)
    assert held and int(held[1]) >= 1 and held[2] == "0", text[-2000:]


def test_tracing_switch_reads_true_only_as_inspect_mlflow(mlflow_server, tmp_path):
    """MLFLOW_INSPECT_TRACING is on iff it reads "true" (any case), in the
    hook and in the sidecar alike, as in inspect-mlflow: "1" traces nothing,
    while the runs are logged as usual."""
    from mlflow import MlflowClient

    ring = f"/rf-pytest-tr-switch-{os.getpid()}"
    exp = f"rf-traces-switch-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = ts.Sidecar(mlflow_server, ring, tmp_path / "spool", exp, MLFLOW_INSPECT_TRACING="1")
    try:
        env = eval_env(ring, tmp_path / "spool", MLFLOW_INSPECT_TRACING="1", **sc.dest)
        ts.run_eval(env, tmp_path / "logs", "rich")
        sc.stop()
    finally:
        ts.cleanup(sc, ring)
    client = MlflowClient(mlflow_server)
    e = client.get_experiment_by_name(exp)
    parents, children = ts.runs_of(client, exp)
    assert parents and children and children[0].info.status == "FINISHED"
    assert client.search_traces(locations=[e.experiment_id], max_results=10) == []


def test_traces_held_while_mlflow_away_are_sent_after_restart(mlflow_server, tmp_path):
    """MLflow unreachable for a whole traced eval, ringflowd stopped with no
    flush window: it says how many traces it still holds, keeps them in its
    journal, and the next ringflowd (same ring, same spool) puts every one
    into MLflow, scores included."""
    import socket

    from inspect_ai.log import read_eval_log
    from mlflow import MlflowClient

    with socket.socket() as s:  # a loopback port nobody listens on (yet)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        dead = f"http://127.0.0.1:{port}"
    ring = f"/rf-pytest-tr-away-{os.getpid()}"
    exp = f"rf-traces-away-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = ts.Sidecar(dead, ring, tmp_path / "spool", exp, RINGFLOW_SHUTDOWN_MS="0")
    proxy = None
    try:
        env = eval_env(ring, tmp_path / "spool", MLFLOW_INSPECT_TRACING="true", **sc.dest)
        log = read_eval_log(ts.run_eval(env, tmp_path / "logs", "rich"))
        first = sc.stop()
        held = [ln for ln in first.splitlines() if "stopping with work not yet in MLflow" in ln]
        assert held and f"({len(log.samples)} traces held)" in held[0], first[-3000:]
        # The eval's runs go where it said: the same address, now served
        # (a relay to the real server on that port).
        proxy = FaultProxy(mlflow_server, port=port)
        sc = ts.Sidecar(dead, ring, tmp_path / "spool", exp, RINGFLOW_SHUTDOWN_MS="120000")
        client = MlflowClient(mlflow_server)
        ts.wait_finished(client, exp, 120)
        second = sc.stop()
    finally:
        ts.cleanup(sc, ring)
        if proxy:
            proxy.close()
    assert "traces_failed=0" in second and "stopping with work" not in second, second[-3000:]
    e = client.get_experiment_by_name(exp)
    traces = client.search_traces(locations=[e.experiment_id], max_results=500)
    assert set(by_sample(traces)) == {(str(s.id), s.epoch) for s in log.samples}
    for s in log.samples:
        t = by_sample(traces)[(str(s.id), s.epoch)]
        assert {a.name for a in t.info.assessments} == assessment_names(s)


def test_mlflow_ui_shows_a_sample_trace(sample_traces, mlflow_server):
    """Headless Chromium renders the MLflow UI's view of one sample trace; the
    screenshot is kept under tests/artifacts/ and the rendered page must name
    the trace's spans."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.fail("chromium is not installed (scripts/install-deps.sh installs it)")
    _, _, _, _, e, traces = sample_traces
    t = max(traces, key=lambda x: (len(x.data.spans), x.info.tags["mlflow.traceName"]))
    url = (f"{mlflow_server}/#/experiments/{e.experiment_id}/traces"
           f"?selectedEvaluationId={t.info.trace_id}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "mlflow_ui_trace.png"
    shot.unlink(missing_ok=True)
    common = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1600,1000",
              "--virtual-time-budget=30000", "--run-all-compositor-stages-before-draw",
              "--user-data-dir=" + str(ARTIFACTS / ".chromium")]
    p = subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, text=True,
                       timeout=180)
    assert shot.exists() and shot.stat().st_size > 10_000, p.stderr[-2000:]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                         timeout=180).stdout
    names = {sp.name for sp in t.data.spans}
    assert t.info.tags["mlflow.traceName"] in dom or any(n in dom for n in names), dom[-3000:]
    for name in ("solvers", "generate", "scorers", "model:mockllm/model", "tool:multiply"):
        assert name in dom, f"the trace view does not show span {name!r}"
