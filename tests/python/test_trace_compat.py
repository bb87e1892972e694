"""`import ringflow.tracing as mlflow` stores the same traces as `import mlflow`.

One program written against MLflow's tracing API (rf_compat_prog.py:
decorator on sync, async, generator and async generator functions, context
manager, nested spans, start_span_no_context, exceptions, events,
attributes, chat tools, trace tags set and deleted, metadata, feedback and
expectations on open and finished traces, flush, get_trace, add_trace,
log_trace) runs twice:

  A. with MLflow's own tracing against real MLflow server A;
  B. with ringflow.tracing through a hand-started ringflowd against real
     MLflow server B.

Both stored results are read back with MLflow's client and compared: span
names, types, parentage, inputs, outputs, attributes, events, statuses,
trace state, tags, user metadata and assessments (value, rationale, source,
metadata, error).  Equal but for ids and timings.  What is left out, and why
(each one an id, a timing, or bookkeeping MLflow's client or server adds
that is not the program's):

  span attributes  mlflow.traceRequestId (the trace id), mlflow.spanInputs /
                   mlflow.spanOutputs / mlflow.spanType (compared as the
                   span's inputs, outputs and type)
  trace tags       mlflow.artifactLocation (where the server keeps this
                   trace's data: contains its id)
  trace metadata   only the program's own keys are compared; the mlflow.*
                   ones are the client's environment (mlflow.user,
                   mlflow.source.*), the server's size statistics and
                   schema version, or the linked run
  span attribute   mlflow.spanStartTimeNs (an explicit start time): its value
  exception event  exception.stacktrace: compared by its last line (the
                   frames above it are each tracer's own wrapper code)
  assessments      assessment_id, create/update times, trace_id, valid
  add_trace tags   MLflow's own are compared as a subset: its add_trace does not
                   always store them (see test_same_trace_as_mlflow)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
from conftest import MlflowServer
from test_sidecar import RINGFLOWD, Sidecar, cleanup

PROG = Path(__file__).with_name("rf_compat_prog.py")

SPAN_ATTRS_OUT = {"mlflow.traceRequestId", "mlflow.spanInputs", "mlflow.spanOutputs",
                  "mlflow.spanType"}
TAGS_OUT = {"mlflow.artifactLocation"}


def run_prog(module: str, exp: str, env: dict) -> list[str]:
    p = subprocess.run([sys.executable, str(PROG), module, exp], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])["traces"]


def _val(x) -> str:
    return str(getattr(x, "value", x))


def norm_span(s, names: dict) -> dict:
    events = []
    for e in s.events:
        a = dict(e.attributes or {})
        if "exception.stacktrace" in a:
            a["exception.stacktrace"] = str(a["exception.stacktrace"]).strip().splitlines()[-1]
        events.append({"name": e.name, "attributes": a})
    return {
        "name": s.name,
        "parent": names.get(s.parent_id),
        "span_type": s.span_type,
        "inputs": s.inputs,
        "outputs": s.outputs,
        "attributes": {k: "<time>" if k == "mlflow.spanStartTimeNs" else v
                       for k, v in s.attributes.items() if k not in SPAN_ATTRS_OUT},
        "events": events,
        "status": [_val(s.status.status_code), s.status.description or ""],
    }


def norm_assessment(a) -> dict:
    d = a.to_dictionary()
    for k in ("assessment_id", "create_time", "last_update_time", "trace_id", "valid"):
        d.pop(k, None)
    if d.get("span_id"):
        d["span_id"] = "<span>"
    return d


def norm_trace(t) -> dict:
    names = {s.span_id: s.name for s in t.data.spans}
    spans = sorted((norm_span(s, names) for s in t.data.spans),
                   key=lambda d: (d["name"], json.dumps(d, sort_keys=True, default=str)))
    info = t.info
    return {
        "state": _val(info.state),
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
        "tags": {k: v for k, v in info.tags.items() if k not in TAGS_OUT},
        "metadata": {k: v for k, v in info.trace_metadata.items() if not k.startswith("mlflow.")},
        "spans": spans,
        "assessments": sorted((norm_assessment(a) for a in info.assessments),
                              key=lambda d: json.dumps(d, sort_keys=True, default=str)),
    }


def stored(uri: str, ids: list[str]) -> list[dict]:
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    return [norm_trace(client.get_trace(i)) for i in ids]


@pytest.fixture(scope="module")
def both(mlflow_server, tmp_path_factory):
    """(what MLflow stored, what ringflow stored) for the same program.
    Server A is the session's server; server B is started here."""
    tmp = tmp_path_factory.mktemp("compat")
    b = MlflowServer(tmp / "server-b")
    ring = f"/rf-pytest-compat-{os.getpid()}"
    exp = f"rf-compat-{os.getpid()}"
    sc = None
    try:
        # A second server on a machine this test shares: more time to come up
        # than the session's default (it is not what is tested here).
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(conftest, "SERVER_START_TIMEOUT", max(conftest.SERVER_START_TIMEOUT, 600))
            b.start()
        env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server)
        for k in ("RINGFLOW_DISABLED", "MLFLOW_TRACE_SAMPLING_RATIO"):
            env.pop(k, None)
        ids_a = run_prog("mlflow", exp, env)

        sc = Sidecar(b.uri, ring, tmp / "spool", "rf-compat-default")
        env = dict(env, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(tmp / "spool"),
                   RINGFLOW_AUTOSTART="0", RINGFLOW_SIDECAR=str(RINGFLOWD))
        # The program reads a trace back (get_trace: MLflow's client) from server B;
        # it writes only to the ring (RINGFLOW_AUTOSTART=0: no sidecar of its own).
        env["MLFLOW_TRACKING_URI"] = b.uri
        ids_b = run_prog("ringflow.tracing", exp, env)
        log = sc.stop()
        assert "traces_failed=0" in log and "spans_failed=0" in log, log[-3000:]
        yield stored(mlflow_server, ids_a), stored(b.uri, ids_b)
    finally:
        if sc is not None:
            cleanup(sc, ring)
        b.stop()


@pytest.mark.parametrize("i", [0, 1, 2, 3, 4],
                         ids=["agent", "async_generator", "no_context", "add_trace", "log_trace"])
def test_same_trace_as_mlflow(both, i):
    want, got = both[0][i], both[1][i]
    assert got["state"] == want["state"]
    assert [s["name"] for s in got["spans"]] == [s["name"] for s in want["spans"]]
    for w, g in zip(want["spans"], got["spans"]):
        assert g == w, f"span {w['name']}"
    if i == 3:
        # MLflow's own add_trace does not always store the host trace's tags:
        # in one run of two it lost mlflow.traceName and the copied "kind"
        # (the merge races its exporter).  ringflow always stores them, so
        # here MLflow's tags are a subset of ringflow's.
        assert want["tags"].items() <= got["tags"].items()
        want = dict(want, tags=got["tags"])
    assert got["tags"] == want["tags"]
    assert got["metadata"] == want["metadata"]
    assert got["assessments"] == want["assessments"]
    assert got == want


def test_program_covers_what_it_claims(both):
    """The comparison is not vacuous: the features are in MLflow's result."""
    want = both[0]
    agent = want[0]
    names = {s["name"] for s in agent["spans"]}
    assert {"agent", "retrieve", "llm_generate", "tool_call", "parse", "stream", "postprocess",
            "fails"} <= names
    assert {s["status"][0] for s in agent["spans"]} == {"OK", "ERROR"}
    assert any(e["name"] == "exception" for s in agent["spans"] for e in s["events"])
    assert any("mlflow.chat.tools" in s["attributes"] for s in agent["spans"])
    assert agent["tags"]["reviewed"] == "yes" and "to_delete" not in agent["tags"]
    assert {a["assessment_name"] for a in agent["assessments"]} == {
        "live", "relevance", "correct", "expected_answer"}
    assert {a["assessment_name"] for a in want[2]["assessments"]} == {"judge_failed",
                                                                      "expected_q"}
    assert sorted(s["name"] for s in want[3]["spans"]) == ["child", "host", "manual"]
    assert [s["name"] for s in want[4]["spans"]] == ["logged"]


def test_refused_calls_are_counted(mlflow_server, tmp_path):
    """A tag and a feedback on a trace MLflow does not have: tried (the trace
    could still be on its way), then refused and counted, never silently
    lost; flush still completes."""
    ring = f"/rf-pytest-compat-refused-{os.getpid()}"
    sc = Sidecar(mlflow_server, ring, tmp_path / "spool", "rf-compat-refused")
    try:
        code = ("import ringflow.tracing as mt\n"
                "t = 'tr-' + '0' * 32\n"
                "mt.set_trace_tag(t, 'k', 'v')\n"
                "mt.log_feedback(trace_id=t, name='n', value=1)\n"
                "print(mt.flush_trace_async_logging(timeout_s=120))\n")
        env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(tmp_path / "spool"),
                   RINGFLOW_AUTOSTART="0", RINGFLOW_SIDECAR=str(RINGFLOWD))
        env.pop("MLFLOW_TRACKING_URI", None)
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        assert p.stdout.strip() == "True"  # flush waited for the retries to end
        st = subprocess.run([str(RINGFLOWD), "status", "--json", "--interval", "0"], env=env,
                            capture_output=True, text=True, timeout=60)
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["sidecar"]["traces_failed"] == 2, st.stdout
        sc.stop()
    finally:
        cleanup(sc, ring)
