"""MLflow equal to Inspect's own log, field by field (docs/MAPPING.md).

One varied real eval (two models, tool calls of which some fail, C/I/P/N,
numeric and dict scores, 2 epochs, a retried and a failing sample; mockllm
outputs with usage) goes hook -> ring -> ringflowd -> a real MLflow server,
traced.  Then every run, param, tag, metric (values and step counts), the
events table and the trace assessments are compared with the .eval logs read
with inspect_ai.log.read_eval_log, through MLflow's own client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import test_sidecar as ts
from test_hook import EVALS, eval_env


def v2f(v):
    from inspect_ai.scorer import value_to_float

    return value_to_float()(v)


@pytest.fixture(scope="module")
def varied(mlflow_server, tmp_path_factory):
    from inspect_ai.log import read_eval_log
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("fidelity")
    ring = f"/rf-pytest-fid-{os.getpid()}"
    exp = f"rf-fidelity-{os.getpid()}-{time.time_ns() % 10**6}"
    sc = ts.Sidecar(mlflow_server, ring, tmp / "spool", exp, RINGFLOW_SHUTDOWN_MS="120000")
    try:
        env = eval_env(ring, tmp / "spool", MLFLOW_INSPECT_TRACING="true")
        p = subprocess.run([sys.executable, str(EVALS), "varied", str(tmp / "logs")], env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        locations = json.loads(p.stdout.strip().splitlines()[-1])
        text = sc.stop()
    finally:
        ts.cleanup(sc, ring)
    logs = [read_eval_log(x) for x in locations]
    client = MlflowClient(mlflow_server)
    parents, children = ts.runs_of(client, exp)
    by_eval = {c.data.tags["inspect.eval_id"]: c for c in children}
    return logs, client, exp, parents, by_eval, text, tmp


def events_of(log, kind=None):
    return [e for s in log.samples for e in s.events if kind is None or e.event == kind]


def failed_tool(e) -> bool:
    return e.event == "tool" and (e.error is not None or bool(e.failed))


def table(client, run_id, name, tmp):
    path = client.download_artifacts(run_id, f"inspect/{name}.json", str(tmp))
    t = json.loads(Path(path).read_text())
    return [dict(zip(t["columns"], row)) for row in t["data"]]


def test_eval_is_varied(varied):
    """The comparison below covers what it claims to (guards the fixture)."""
    logs, *_ = varied
    assert len(logs) == 2 and len({lg.eval.model for lg in logs}) == 2
    values = [sc.value for lg in logs for s in lg.samples for sc in (s.scores or {}).values()]
    assert {"C", "I", "P", "N"} <= {v for v in values if isinstance(v, str)}
    assert any(isinstance(v, float) for v in values) and any(isinstance(v, dict) for v in values)
    assert all(any(failed_tool(e) for e in events_of(lg)) for lg in logs)
    assert all(any(s.error for s in lg.samples) for lg in logs)
    assert any(s.error_retries for lg in logs for s in lg.samples)
    assert all(lg.eval.config.epochs == 2 for lg in logs)


def test_events_table_is_the_logs_events(varied):
    """inspect/events.json: one row per event of the log, every type, in order."""
    logs, client, _, _, by_eval, _, tmp = varied
    for log in logs:
        rid = by_eval[log.eval.eval_id].info.run_id
        rows = table(client, rid, "events", tmp / log.eval.eval_id)
        assert len(rows) == len(events_of(log))
        assert Counter(r["event_type"] for r in rows) == Counter(e.event for e in events_of(log))
        assert {"span_begin", "span_end", "state", "sample_init", "score", "error", "model", "tool"} \
            <= {r["event_type"] for r in rows}
        for s in log.samples:
            mine = [r for r in rows if (r["sample_id"], r["epoch"]) == (s.id, s.epoch)]
            assert [r["event_index"] for r in mine] == list(range(len(s.events)))
            for r, e in zip(mine, s.events):
                assert r["event_type"] == e.event and r["task_name"] == log.eval.task
                assert r["eval_id"] == log.eval.eval_id
                if e.event == "model":
                    assert r["model"] == e.model and r["completion"] == e.output.completion
                    assert r["usage_input_tokens"] == e.output.usage.input_tokens
                    assert r["usage_output_tokens"] == e.output.usage.output_tokens
                    assert r["usage_total_cost"] == pytest.approx(e.output.usage.total_cost)
                elif e.event == "tool":
                    assert r["tool_function"] == e.function
                    assert json.loads(r["tool_arguments"]) == e.arguments
                    assert (r["tool_error"] is not None) == (e.error is not None)
                elif e.event == "error":
                    assert r["error"] == e.error.message
        samples = table(client, rid, "samples", tmp / log.eval.eval_id)
        assert {(r["sample_id"], r["epoch"]): r["events_count"] for r in samples} == \
            {(s.id, s.epoch): len(s.events) for s in log.samples}


def test_tool_error_once_per_failed_call(varied):
    """event/tool_error: value 1, once per failed call; summing reads the errors."""
    logs, client, _, _, by_eval, _, _ = varied
    for log in logs:
        rid = by_eval[log.eval.eval_id].info.run_id
        errs = client.get_metric_history(rid, "event/tool_error")
        failed = [e for e in events_of(log, "tool") if failed_tool(e)]
        assert failed and len(errs) == len(failed)
        assert all(m.value == 1.0 for m in errs)
        calls = client.get_metric_history(rid, "event/tool_call")
        assert len(calls) == len(events_of(log, "tool"))
        assert {m.step for m in errs} <= {m.step for m in calls}


def test_assessments_are_the_metric_numbers(varied):
    """Feedback values are value_to_float's numbers (the sample/<scorer> metric's),
    dict scores one per key; raw value kept in metadata and on the EVALUATOR span."""
    logs, client, exp, _, by_eval, _, _ = varied
    e = client.get_experiment_by_name(exp)
    n = 0
    for log in logs:
        rid = by_eval[log.eval.eval_id].info.run_id
        traces = client.search_traces(locations=[e.experiment_id], run_id=rid, max_results=500)
        found = {(t.info.tags["inspect.sample_id"], int(t.info.tags["inspect.epoch"])): t for t in traces}
        per_name: dict[str, list[float]] = {}
        for s in log.samples:
            t = found[(str(s.id), s.epoch)]
            got = {a.name: a for a in t.info.assessments}
            want = {}
            for name, sc in (s.scores or {}).items():
                if isinstance(sc.value, dict):
                    for k, v in sc.value.items():
                        want[f"inspect/{name}/{k}"] = (v2f(v), v, sc.explanation)
                else:
                    want[f"inspect/{name}"] = (v2f(sc.value), sc.value, sc.explanation)
            assert set(got) == set(want)
            for name, (num, raw, expl) in want.items():
                a = got[name]
                assert isinstance(a.value, float) and a.value == pytest.approx(num), name
                assert a.metadata["inspect.raw_value"] == (raw if isinstance(raw, str) else json.dumps(raw))
                assert a.rationale == (expl or None)  # an empty explanation is none
                per_name.setdefault(name, []).append(a.value)
                n += 1
            scores = [sp for sp in t.data.spans if sp.span_type == "EVALUATOR"
                      and sp.name.startswith("score:")]
            raws = {sp.attributes["inspect.scorer"]: sp.attributes["inspect.raw_value"] for sp in scores}
            assert raws == {k: sc.value for k, sc in (s.scores or {}).items()}
        for name, values in per_name.items():  # the same numbers as the run's metric
            hist = client.get_metric_history(rid, "sample/" + name[len("inspect/"):])
            assert sorted(m.value for m in hist) == pytest.approx(sorted(values))
    assert n >= 40
