"""General tracing end to end: a C program and a Python program -> ring ->
ringflowd -> a real MLflow server, checked with MLflow's own client (what the
UI shows): the span tree, span types, statuses, inputs/outputs, events,
attributes, trace tags and metadata; the sampled-out traces absent.

The programs: examples/trace_demo.c (C API) and rf_trace_prog.py demo
(ringflow.tracing, written as an mlflow program with a changed import).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_sidecar import Sidecar, cleanup

REPO = Path(__file__).resolve().parents[2]
PROG = Path(__file__).with_name("rf_trace_prog.py")
DEMO = REPO / "build" / "release" / "examples" / "trace_demo"


@pytest.fixture(scope="module")
def traced(mlflow_server, tmp_path_factory):
    """Both programs run once against one sidecar; yields (client, exp id, C
    trace id, Python program's output)."""
    import json

    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("trace-e2e")
    ring = f"/rf-pytest-trace-e2e-{os.getpid()}"
    exp = f"rf-trace-e2e-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = Sidecar(mlflow_server, ring, tmp / "spool", exp)
    try:
        env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_AUTOSTART="0")
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("RINGFLOW_DISABLED", None)
        assert DEMO.exists(), "build first: make"
        c = subprocess.run([str(DEMO)], env=env, capture_output=True, text=True, timeout=60)
        assert c.returncode == 0, c.stderr
        c_trace = c.stdout.strip().splitlines()[-1]
        p = subprocess.run([sys.executable, str(PROG), "demo"], env=env, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-3000:]
        py = json.loads(p.stdout.strip().splitlines()[-1])
        client = MlflowClient(mlflow_server)
        deadline = time.time() + 60
        want = {c_trace, py["trace_id"]}
        while True:
            e = client.get_experiment_by_name(exp)
            got = client.search_traces(locations=[e.experiment_id]) if e else []
            done = {t.info.trace_id for t in got if t.info.state == "OK" or
                    t.info.state == "ERROR"}
            if want <= done and all(len(t.data.spans) >= 5 for t in got):
                break
            assert time.time() < deadline, f"traces not in MLflow after 60 s: {done}\n" + \
                sc.log.read_text()[-3000:]
            time.sleep(0.3)
        log = sc.stop()
        assert "traces_failed=0" in log and "spans_failed=0" in log, log[-2000:]
        yield client, e.experiment_id, c_trace, py
    finally:
        cleanup(sc, ring)


def spans_by_name(trace) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in trace.data.spans:
        out.setdefault(s.name, []).append(s)
    return out


def test_only_recorded_traces_arrive(traced):
    client, exp_id, c_trace, py = traced
    traces = client.search_traces(locations=[exp_id])
    assert sorted(t.info.trace_id for t in traces) == sorted([c_trace, py["trace_id"]])
    names = {s.name for t in traces for s in t.data.spans}
    # sampled out (C and Python) and disabled (Python): never uploaded
    assert not names & {"sampled_out", "child", "never_recorded", "inner", "sampled_out_block"}


def test_c_program_trace(traced):
    client, _, c_trace, _ = traced
    t = client.get_trace(c_trace)
    assert t.info.state == "OK"
    assert t.info.tags["session"] == "s-42" and t.info.tags["lang"] == "c"
    assert t.info.trace_metadata["user_group"] == "beta"
    s = spans_by_name(t)
    assert sorted(s) == ["answer", "generate", "notify", "retrieve"]
    (root,) = s["answer"]
    assert root.parent_id is None and root.span_type == "AGENT"
    assert root.inputs == {"question": "why is the sky blue?"}
    assert root.outputs == {"answer": "Because of Rayleigh scattering."}
    for name in ("retrieve", "generate", "notify"):
        assert all(x.parent_id == root.span_id for x in s[name])
    (ret,) = s["retrieve"]
    assert ret.span_type == "RETRIEVER"
    assert ret.inputs == {"query": "why is the sky blue?", "k": 2}
    assert ret.outputs == "d0: Rayleigh scattering; d1: sunlight"
    (ev,) = ret.events
    assert ev.name == "index_lookup" and ev.attributes == {"shards": 3, "hit": True}
    gens = sorted(s["generate"], key=lambda x: x.inputs["attempt"])
    assert [g.span_type for g in gens] == ["LLM", "LLM"]
    assert gens[0].status.status_code.value == "ERROR"
    assert gens[0].status.description == "TimeoutError: model took too long"
    (exc,) = gens[0].events
    assert exc.name == "exception"
    assert exc.attributes["exception.type"] == "TimeoutError"
    assert exc.attributes["exception.message"] == "model took too long"
    assert gens[1].status.status_code.value == "OK"
    assert gens[1].outputs == {"text": "Because of Rayleigh scattering.", "tokens": 7}
    assert gens[1].attributes["model"] == "mock-1"
    assert gens[1].attributes["temperature"] == 0.2
    (n,) = s["notify"]
    assert n.span_type == "TOOL" and n.outputs == "notified"
    # CANCELLED: MLflow has OK/ERROR/UNSET only; the detail is kept
    assert n.status.status_code.value == "ERROR"
    assert n.status.description == "user closed the tab"
    assert n.attributes["ringflow.status"] == "CANCELLED"
    for x in t.data.spans:
        assert root.start_time_ns <= x.start_time_ns <= x.end_time_ns <= root.end_time_ns
    # rf_trace_log_assessment / rf_trace_set_tag, during and after the trace
    assert t.info.tags["reviewed"] == "yes"
    a = {x.name: x for x in t.info.assessments}
    assert sorted(a) == ["expected", "relevance"]
    assert a["relevance"].value == 0.9 and a["relevance"].rationale == "cites the cause"
    assert a["relevance"].source.source_type == "LLM_JUDGE"
    assert a["relevance"].source.source_id == "judge-1"
    assert a["expected"].value == "Rayleigh scattering"
    assert a["expected"].source.source_type == "HUMAN"  # MLflow's default for expectations


def test_python_program_trace(traced):
    client, _, _, py = traced
    t = client.get_trace(py["trace_id"])
    assert t.info.state == "OK"
    assert t.info.tags["session"] == "s-42" and t.info.tags["turn"] == "3"
    assert t.info.trace_metadata["user_group"] == "beta"
    assert t.info.trace_metadata["mlflow.trace.session"] == "sess-1"
    s = spans_by_name(t)
    assert sorted(s) == ["agent", "callback", "json_dumps", "llm_generate", "parse",
                         "postprocess", "retrieve", "stream", "tool_call"]
    (root,) = s["agent"]
    assert root.parent_id is None and root.span_type == "AGENT"
    assert root.inputs == {"question": "why is the sky blue?", "secret_token": "[REDACTED]",
                           "doc": "Doc(42)"}
    assert root.outputs == py["result"]
    (gen,) = s["llm_generate"]
    # async: the gathered tool calls nest under the coroutine that awaited them
    assert {x.parent_id for x in s["tool_call"]} == {gen.span_id}
    assert sorted(x.outputs for x in s["tool_call"]) == [2, 4]
    assert gen.span_type == "LLM" and gen.attributes["model"] == "mock-1"
    assert gen.outputs == py["result"]["answer"]
    for name in ("retrieve", "llm_generate", "parse", "stream", "postprocess", "json_dumps",
                 "callback"):
        (x,) = s[name]
        assert x.parent_id == root.span_id, name
    types = {x.name: x.span_type for x in t.data.spans}
    assert types["retrieve"] == "RETRIEVER" and types["stream"] == "CUSTOM_STEP"
    (parse,) = s["parse"]
    assert parse.status.status_code.value == "ERROR"
    assert parse.status.description == "ValueError: cannot parse '%%'"
    (exc,) = parse.events
    assert exc.name == "exception" and exc.attributes["exception.type"] == "ValueError"
    assert "Traceback" in exc.attributes["exception.stacktrace"]
    (ret,) = s["retrieve"]
    assert [e.name for e in ret.events] == ["index_lookup"]
    assert ret.outputs == [{"doc": "d0", "score": 1.0}, {"doc": "d1", "score": 0.5}]
    (pp,) = s["postprocess"]
    assert pp.inputs == {"answer": py["result"]["answer"]}  # set_inputs after the start
    assert pp.outputs == {"final": py["result"]["answer"].upper()}
    assert pp.attributes["stage"] == "final" and pp.attributes["length"] == 32
    assert pp.status.description == "user stopped"
    assert pp.attributes["ringflow.status"] == "CANCELLED"
    (js,) = s["json_dumps"]
    assert js.inputs["obj"] == {"k": 1}
    # its output, the string '{"k": 1}', is shown parsed (as a dict) by MLflow's
    # client: a string that is valid JSON is not told apart from JSON there
    assert js.outputs in ('{"k": 1}', {"k": 1})
    (st,) = s["stream"]
    assert st.outputs == [0, 1, 4, 9]
    (cb,) = s["callback"]
    assert cb.inputs == {"event": "on_done"} and cb.outputs == "handled"
    assert cb.status.status_code.value == "OK"


def test_traces_to_a_deleted_experiment_restore_it(mlflow_server, tmp_path):
    """A program's traces for an experiment someone deleted restore it and
    land there, as tracking does (one experiment resolver for both): not
    uploaded into a deleted experiment nobody sees."""
    import json

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server)
    exp = f"rf-trace-deleted-{os.getpid()}-{time.time_ns() % 10**6}"
    client.delete_experiment(client.create_experiment(exp))
    ring = f"/rf-pytest-trace-del-{os.getpid()}"
    sc = Sidecar(mlflow_server, ring, tmp_path / "spool", exp)
    try:
        env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_AUTOSTART="0")
        env.pop("MLFLOW_TRACKING_URI", None)
        env.pop("RINGFLOW_DISABLED", None)
        p = subprocess.run([sys.executable, str(PROG), "sampling", "3", "1.0"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-3000:]
        assert json.loads(p.stdout.strip().splitlines()[-1])["n"] == 3
        deadline = time.time() + 60
        while True:
            e = client.get_experiment_by_name(exp)
            got = client.search_traces(locations=[e.experiment_id]) \
                if e.lifecycle_stage == "active" else []
            if len(got) == 3:
                break
            assert time.time() < deadline, \
                f"experiment {e.lifecycle_stage}, {len(got)} traces\n" + sc.log.read_text()[-3000:]
            time.sleep(0.3)
        log = sc.stop()
        assert "traces_failed=0" in log, log[-2000:]
    finally:
        cleanup(sc, ring)
