"""ringflow.tracing (the Python tracing API) -> ring -> msgpack-c decode.

A real traced program (rf_trace_prog.py) runs in its own process with its
own ring; the records are read back with ringflow-dump (the sidecar's
decoder) and checked against docs/EVENTS.md records 24-27: the tree, span
types, inputs/outputs, attributes, events, an exception, tags, statuses,
sampling decided at the root (never part of a tree), enable/disable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from test_hook import dump  # ringflow-dump's records, none malformed

PROG = Path(__file__).with_name("rf_trace_prog.py")


def run_prog(ring: str, *args: str) -> dict:
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_AUTOSTART="0")
    env.pop("RINGFLOW_DISABLED", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    p = subprocess.run([sys.executable, str(PROG), *args], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    name = f"/rf-pytest-trace-demo-{os.getpid()}"
    try:
        out = run_prog(name, "demo")
        recs = dump(name)
    finally:
        try:
            os.unlink(f"/dev/shm{name}")
        except FileNotFoundError:
            pass
    return out, recs


def spans_of(recs: list[dict]) -> dict[int, dict]:
    """span_id -> {"start": data, "end": data, "events": [...]}."""
    spans: dict[int, dict] = defaultdict(lambda: {"events": []})
    for r in recs:
        d = r["data"]
        if r["type"] == "trace_span_start":
            spans[d["span_id"]]["start"] = d
        elif r["type"] == "trace_span_end":
            spans[d["span_id"]]["end"] = d
        elif r["type"] == "trace_span_event":
            spans[d["span_id"]]["events"].append(d)
    return dict(spans)


def by_name(spans: dict[int, dict], name: str) -> list[dict]:
    return [s for s in spans.values() if s["start"]["name"] == name]


def test_only_the_recorded_trace_is_written(demo):
    out, recs = demo
    types = Counter(r["type"] for r in recs)
    # agent, retrieve, llm_generate, 2 tool_call, parse, stream, postprocess,
    # json_dumps, callback: 10 spans; events: index_lookup, the exception and
    # one chunk event per item of stream(4), as MLflow's; the sampled-out and
    # disabled traces: nothing
    assert types == {"trace_span_start": 10, "trace_span_end": 10, "trace_span_event": 6,
                     "trace_update": 1}
    assert {r["data"]["trace_id"]["$bin"] for r in recs} == {out["trace_id"][3:]}
    for r in recs:
        assert r["data"]["v"] == 1
    names = {r["data"].get("name") for r in recs if r["type"] == "trace_span_start"}
    assert not names & {"never_recorded", "inner", "sampled_out_block"}
    assert out["stats"]["errors"] == 0 and out["stats"]["trace_errors"] == 0


def test_tree_types_and_times(demo):
    _, recs = demo
    spans = spans_of(recs)
    (root,) = [s for s in spans.values() if "parent_id" not in s["start"]]
    rid = root["start"]["span_id"]
    assert root["start"]["name"] == "agent" and root["start"]["span_type"] == "AGENT"
    parent = {s["start"]["name"]: s["start"].get("parent_id") for s in spans.values()
              if s["start"]["name"] != "tool_call"}
    assert parent == {"agent": None, "retrieve": rid, "llm_generate": rid, "parse": rid,
                      "stream": rid, "postprocess": rid, "json_dumps": rid, "callback": rid}
    (gen,) = by_name(spans, "llm_generate")
    tools = by_name(spans, "tool_call")
    assert len(tools) == 2
    # asyncio.gather'ed tasks nest under the coroutine that awaited them
    assert all(t["start"]["parent_id"] == gen["start"]["span_id"] for t in tools)
    types = {s["start"]["name"]: s["start"]["span_type"] for s in spans.values()}
    assert types == {"agent": "AGENT", "retrieve": "RETRIEVER", "llm_generate": "LLM",
                     "tool_call": "TOOL", "parse": "PARSER", "stream": "CUSTOM_STEP",
                     "postprocess": "CHAIN", "json_dumps": "PARSER", "callback": "TOOL"}
    for s in spans.values():
        assert s["start"]["start_ns"] <= s["end"]["end_ns"]
        assert s["start"]["start_ns"] >= root["start"]["start_ns"]
        assert s["end"]["end_ns"] <= root["end"]["end_ns"]
        assert 0 < s["start"]["span_id"] < 2**63


def test_inputs_outputs_and_attributes(demo):
    out, recs = demo
    spans = spans_of(recs)
    (root,) = by_name(spans, "agent")
    # bound arguments with defaults; a secret-looking parameter redacted; an
    # unknown object as its str()
    assert root["start"]["inputs"] == {"question": "why is the sky blue?",
                                       "secret_token": "[REDACTED]", "doc": "Doc(42)"}
    assert root["end"]["outputs"] == out["result"]
    (ret,) = by_name(spans, "retrieve")
    assert ret["start"]["inputs"] == {"query": "why is the sky blue?", "k": 2}
    assert ret["end"]["outputs"] == [{"doc": "d0", "score": 1.0}, {"doc": "d1", "score": 0.5}]
    (gen,) = by_name(spans, "llm_generate")
    # the decorator names the function, as MLflow's does
    assert gen["start"]["attributes"] == {"model": "mock-1", "mlflow.spanFunctionName": "generate"}
    assert gen["end"]["outputs"] == out["result"]["answer"]
    assert sorted(t["end"]["outputs"] for t in by_name(spans, "tool_call")) == [2, 4]
    (st,) = by_name(spans, "stream")
    assert st["end"]["outputs"] == [0, 1, 4, 9]  # a generator's items
    (pp,) = by_name(spans, "postprocess")
    assert pp["start"]["attributes"] == {"stage": "final"}
    assert "inputs" not in pp["start"]
    assert pp["end"]["inputs"] == {"answer": out["result"]["answer"]}  # set after start
    assert pp["end"]["outputs"] == {"final": out["result"]["answer"].upper()}
    assert pp["end"]["attributes"] == {"length": len(out["result"]["answer"]), "ok": True,
                                       "ratio": 0.5}
    (js,) = by_name(spans, "json_dumps")
    assert js["start"]["inputs"]["obj"] == {"k": 1}
    assert js["end"]["outputs"] == '{"k": 1}'
    (cb,) = by_name(spans, "callback")
    assert cb["start"]["inputs"] == {"event": "on_done"}
    assert cb["end"]["outputs"] == "handled"


def test_statuses_events_exception_and_tags(demo):
    _, recs = demo
    spans = spans_of(recs)
    status = {s["start"]["name"]: (s["end"].get("status"), s["end"].get("status_message"))
              for s in spans.values()}
    assert status["agent"] == (None, None)  # absent = OK
    assert status["parse"] == ("ERROR", "ValueError: cannot parse '%%'")
    assert status["postprocess"] == ("CANCELLED", "user stopped")
    assert status["callback"] == ("OK", None)
    (ret,) = by_name(spans, "retrieve")
    (ev,) = ret["events"]
    assert ev["name"] == "index_lookup" and ev["attributes"] == {"shards": 3, "hit": True}
    assert ret["start"]["start_ns"] <= ev["time_ns"] <= ret["end"]["end_ns"]
    (parse,) = by_name(spans, "parse")
    (exc,) = parse["events"]
    assert exc["name"] == "exception"
    assert exc["attributes"]["exception.type"] == "ValueError"
    assert exc["attributes"]["exception.message"] == "cannot parse '%%'"
    assert "Traceback" in exc["attributes"]["exception.stacktrace"]
    assert "in parse" in exc["attributes"]["exception.stacktrace"]
    (upd,) = [r["data"] for r in recs if r["type"] == "trace_update"]
    assert upd["tags"] == {"session": "s-42", "turn": "3"}
    assert upd["metadata"] == {"user_group": "beta", "mlflow.trace.session": "sess-1"}


@pytest.mark.parametrize("rate,lo,hi", [(0.0, 0, 0), (1.0, 400, 400), (0.5, 150, 250)])
def test_sampling_at_the_root(ring, rate, lo, hi):
    """Each trace is never_recorded -> inner: sampled as a whole or not at all."""
    out = run_prog(ring, "sampling", "400", str(rate))
    recs = dump(ring)
    per_trace = Counter(r["data"]["trace_id"]["$bin"] for r in recs)
    assert lo <= len(per_trace) <= hi
    assert set(per_trace.values()) <= {4}  # 2 spans x (start, end): whole trees only
    for r in recs:
        if r["type"] == "trace_span_start" and r["data"]["name"] == "inner":
            assert "parent_id" in r["data"]
    assert out["stats"].get("records", 0) == len(recs)  # never opened at rate 0


def test_api_in_process_without_a_ring_never_raises(tmp_path, monkeypatch):
    """An unusable ring: the traced program runs, nothing raises."""
    code = (
        "import ringflow.tracing as mt\n"
        "@mt.trace\n"
        "def f(x):\n"
        "    with mt.start_span('s') as s:\n"
        "        s.set_attribute('a', 1); s.add_event('e')\n"
        "    mt.update_current_trace(tags={'t': 1})\n"
        "    return x + 1\n"
        "assert f(1) == 2\n"
        "print('ok')\n"
    )
    env = dict(os.environ, RINGFLOW_RING="/../bad/name", RINGFLOW_AUTOSTART="0")
    env.pop("MLFLOW_TRACKING_URI", None)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("ok")


def test_mlflow_compatible_names():
    """What a program written for mlflow's fluent API uses exists here."""
    import ringflow
    import ringflow.tracing as mt
    for n in ("trace", "start_span", "update_current_trace", "get_current_active_span",
              "get_active_trace_id", "get_last_active_trace_id", "start_span_no_context",
              "SpanType", "SpanStatusCode", "SpanEvent", "SpanStatus", "enable", "disable",
              "set_sampling_ratio"):
        assert hasattr(mt, n), n
    for n in ("trace", "start_span", "update_current_trace", "SpanType"):
        assert getattr(ringflow, n) is getattr(mt, n)
    for t in ("LLM", "CHAT_MODEL", "CHAIN", "AGENT", "TOOL", "RETRIEVER", "EMBEDDING",
              "RERANKER", "PARSER", "UNKNOWN"):
        assert getattr(mt.SpanType, t) == t
    with pytest.raises(ValueError):
        mt.set_sampling_ratio(1.5)


def test_mlflow_signatures_and_new_records(ring):
    """MLflow's keyword names: unknown ones raise TypeError (they were
    swallowed); set_experiment by name or id; set_destination; the info
    fields of update_current_trace; log_trace's own times; assessments and
    tags (records 28, 29); async generators traced; the read side says
    clearly that it needs mlflow."""
    code = r'''
import asyncio, json, sys
sys.modules["mlflow"] = None  # as if mlflow were not installed
import ringflow.tracing as mt
out = {}
for call in (lambda: mt.trace(spanType="LLM"), lambda: mt.start_span("s", kind="x"),
             lambda: mt.update_current_trace(tag={"a": 1}),
             lambda: mt.start_span_no_context("s", parent=None),
             lambda: mt.log_feedback(trace_id="tr-1", name="n", score=1),
             lambda: mt.set_experiment(name="e")):
    try:
        call()
        out.setdefault("no_error", []).append(1)
    except TypeError:
        out["type_errors"] = out.get("type_errors", 0) + 1
try:
    mt.set_experiment()
except ValueError:
    out["needs_one"] = True
mt.set_experiment(experiment_id="123")
with mt.start_span("by_id") as s:
    mt.update_current_trace(client_request_id="req-9", state="ERROR", request_preview="rp")
    mt.log_feedback(trace_id=s.trace_id, name="live", value=1.5, rationale="why",
                    source=mt.entities.AssessmentSource("HUMAN", "me"), span_id=s.span_id)
mt.set_trace_tag(s.trace_id, "k", "v")
mt.delete_trace_tag(s.trace_id, "k")
mt.log_expectation(trace_id=s.trace_id, name="exp", value=[1, 2])
mt.set_destination(mt.MlflowExperiment(experiment_id="456"))
tid = mt.log_trace(name="logged", request={"q": 1}, response="a", start_time_ms=1700000000000,
                   execution_time_ms=250)
mt.reset()
mt.set_experiment(experiment_name="by-name")
@mt.trace(span_type="CHAIN")
async def agen(n):
    for i in range(n):
        yield i
async def consume():
    return [x async for x in agen(2)]
out["agen"] = asyncio.run(consume())
try:
    mt.get_trace(tid)
except ImportError as e:
    out["read_side"] = str(e)
out["ids"] = [s.trace_id, tid]
print(json.dumps(out))
'''
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_AUTOSTART="0")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RINGFLOW_DISABLED", None)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["type_errors"] == 6 and "no_error" not in out
    assert out["needs_one"] is True
    assert out["agen"] == [0, 1]
    assert "needs the mlflow package" in out["read_side"]
    recs = dump(ring)
    by_id, logged = (bytes.fromhex(i[3:]) for i in out["ids"])
    tid = lambda d: bytes.fromhex(d["trace_id"]["$bin"]) if isinstance(d["trace_id"], dict) \
        else bytes.fromhex(d["trace_id"][3:])  # noqa: E731
    upd = [r["data"] for r in recs if r["type"] == "trace_update" and tid(r["data"]) == by_id]
    assert {"experiment_id": "123"} in [{k: v for k, v in u.items() if k == "experiment_id"}
                                        for u in upd]
    assert {"client_request_id": "req-9", "state": "ERROR", "request_preview": "rp"} in \
        [u.get("info") for u in upd]
    (fb, ex) = [r["data"] for r in recs if r["type"] == "trace_assessment"]
    assert tid(fb) == by_id and fb["kind"] == "feedback" and fb["value"] == 1.5
    assert fb["rationale"] == "why" and fb["source_type"] == "HUMAN" and fb["source_id"] == "me"
    assert fb["assessment_id"].startswith("a-") and len(fb["span_id"]) == 16
    assert ex["kind"] == "expectation" and ex["value"] == [1, 2] and ex["source_type"] == "HUMAN"
    tags = [r["data"] for r in recs if r["type"] == "trace_tag"]
    assert [(t["key"], t.get("value")) for t in tags] == [("k", "v"), ("k", None)]
    starts = {r["data"]["name"]: r["data"] for r in recs if r["type"] == "trace_span_start"}
    ends = {r["data"]["span_id"]: r["data"] for r in recs if r["type"] == "trace_span_end"}
    lg = starts["logged"]
    assert lg["start_ns"] == 1700000000000 * 10**6 and lg["inputs"] == {"q": 1}
    assert ends[lg["span_id"]]["end_ns"] == 1700000000250 * 10**6
    assert ends[lg["span_id"]]["outputs"] == "a"
    assert {"experiment_id": "456"} in [{k: v for k, v in r["data"].items() if k == "experiment_id"}
                                        for r in recs if r["type"] == "trace_update" and
                                        tid(r["data"]) == logged]
    assert starts["agen"].get("experiment") == "by-name"  # reset() then by name
    assert "experiment" not in starts["by_id"]  # by id: a trace_update carries it
    (ag,) = [e for e in ends.values() if e["span_id"] == starts["agen"]["span_id"]]
    assert ag["outputs"] == [0, 1]
