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
import signal
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
        env = eval_env(ring, tmp / "spool", MLFLOW_INSPECT_TRACING="true", **sc.dest)
        p = subprocess.run([sys.executable, str(EVALS), "varied", str(tmp / "logs")], env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        locations = json.loads(p.stdout.strip().splitlines()[-1])
        # SIGTERM: everything is flushed, then exit 0 (a loaded host may need minutes).
        sc.proc.send_signal(signal.SIGTERM)
        assert sc.proc.wait(timeout=300) == 0, sc.log.read_text()[-3000:]
        text = sc.log.read_text()
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


def expected_metrics(log) -> dict[str, list[float]]:
    """Every metric ringflow writes for this log: key -> values (any order)."""
    want: dict[str, list[float]] = {}

    def put(k, v):
        want.setdefault(k, []).append(float(v))

    for s in log.samples:
        for name, sc in (s.scores or {}).items():
            if isinstance(sc.value, dict):
                for k, v in sc.value.items():
                    put(f"sample/{name}/{k}", v2f(v))
            else:
                put(f"sample/{name}", v2f(sc.value))
        put("sample/total_time", s.total_time)
        put("sample/working_time", s.working_time)
    models = events_of(log, "model")
    for i, e in enumerate(models):
        put("event/model_call", i)
        put("event/input_tokens", e.output.usage.input_tokens)
        put("event/output_tokens", e.output.usage.output_tokens)
        put("event/model_time", e.working_time)
    tools = events_of(log, "tool")
    for i, e in enumerate(tools):
        put("event/tool_call", i)
        put("event/tool_time", e.working_time)
        if failed_tool(e):
            put("event/tool_error", 1)
    for sc in log.results.scores:
        for name, m in sc.metrics.items():
            put(f"{sc.name}/{name}", m.value)
    put("total_samples", log.results.total_samples)
    put("completed_samples", log.results.completed_samples)
    cost = 0.0
    for model, u in log.stats.model_usage.items():
        for field, key in (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
                           ("total_tokens", "total_tokens"),
                           ("input_tokens_cache_read", "input_cache_read_tokens"),
                           ("input_tokens_cache_write", "input_cache_write_tokens"),
                           ("reasoning_tokens", "reasoning_tokens"), ("total_cost", "total_cost_usd")):
            if getattr(u, field) is not None:
                put(f"usage/{model}/{key}", getattr(u, field))
        cost += u.total_cost or 0
    put("cost/total_usd", cost)
    times = sorted(s.total_time for s in log.samples)
    import statistics

    put("latency/per_sample_mean_seconds", statistics.fmean(times))
    put("latency/per_sample_p50_seconds", statistics.quantiles(times, n=100, method="inclusive")[49])
    put("latency/per_sample_p95_seconds", statistics.quantiles(times, n=100, method="inclusive")[94])
    put("latency/per_sample_working_mean_seconds", statistics.fmean(s.working_time for s in log.samples))
    from datetime import datetime

    put("latency/total_seconds", (datetime.fromisoformat(log.stats.completed_at)
                                  - datetime.fromisoformat(log.stats.started_at)).total_seconds())
    put("total_model_calls", len(models))
    put("total_tool_calls", len(tools))
    return want


def test_whole_mapping_equals_the_log(varied):
    """Every run, tag, param and metric (each value, each step count) from the log."""
    logs, client, _, parents, by_eval, text, tmp = varied
    assert "rejected=0" in text and "malformed=0" in text, text[-2000:]
    (parent,) = parents
    run_id = logs[0].eval.run_id
    assert parent.info.run_name == f"inspect-{run_id[:8]}" and parent.info.status == "FINISHED"
    ptags = {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")}
    assert ptags == {"inspect.run_id": run_id, "inspect.task_count": str(len(logs)),
                     "inspect.tasks": ", ".join(lg.eval.task for lg in logs),
                     "ringflow.key": f"run:{run_id}"}
    assert not parent.data.params and not parent.data.metrics
    assert set(by_eval) == {lg.eval.eval_id for lg in logs}
    for log in logs:
        run = by_eval[log.eval.eval_id]
        rid = run.info.run_id
        assert run.info.run_name == log.eval.task and run.info.status == "FINISHED"
        tags = {k: v for k, v in run.data.tags.items()
                if not k.startswith("mlflow.") or k == "mlflow.parentRunId"}
        assert tags == {"mlflow.parentRunId": parent.info.run_id, "inspect.eval_id": log.eval.eval_id,
                        "inspect.run_id": run_id, "inspect.task": log.eval.task,
                        "inspect.model": log.eval.model, "ringflow.key": f"task:{log.eval.eval_id}"}
        gc = log.plan.config  # the eval()'s generate config
        want_params = {"task": log.eval.task, "model": log.eval.model,
                       "task_version": str(log.eval.task_version),
                       "dataset.samples": str(log.eval.dataset.samples),
                       "solver": ",".join(s.solver for s in log.plan.steps),
                       "temperature": str(gc.temperature), "max_tokens": str(gc.max_tokens)}
        if log.eval.dataset.name:
            want_params["dataset.name"] = log.eval.dataset.name
        for k, v in (log.eval.task_args or {}).items():
            want_params[f"task_arg.{k}"] = str(v)
        if log.eval.tags:
            want_params["tags"] = ", ".join(log.eval.tags)
        assert run.data.params == want_params
        want = expected_metrics(log)
        assert set(run.data.metrics) == set(want), set(run.data.metrics) ^ set(want)
        for key, values in want.items():
            hist = client.get_metric_history(rid, key)
            assert len(hist) == len(values), key
            assert sorted(m.value for m in hist) == pytest.approx(sorted(values), rel=1e-6, abs=1e-6), key
            if key in ("sample/total_time", "sample/working_time") or \
                    (key.startswith("event/") and key != "event/tool_error"):  # completion / call order
                assert sorted(m.step for m in hist) == list(range(len(values))), key
        # Token totals: the per-call metrics add up to the log's usage.
        (u,) = [x for m, x in log.stats.model_usage.items()]
        assert sum(m.value for m in client.get_metric_history(rid, "event/input_tokens")) == u.input_tokens
        assert sum(m.value for m in client.get_metric_history(rid, "event/output_tokens")) == u.output_tokens
        listed = {f.path for f in client.list_artifacts(rid, "inspect")}
        assert {f"inspect/{n}.json" for n in ("tasks", "samples", "sample_scores", "events",
                                             "model_usage", "messages")} <= listed
        assert json.loads(run.data.tags["mlflow.loggedArtifacts"])


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


def test_trace_tags_link_and_root_span(varied):
    """Per-sample traces: tags and metadata from the log, linked to the task run."""
    logs, client, exp, _, by_eval, _, _ = varied
    e = client.get_experiment_by_name(exp)
    for log in logs:
        rid = by_eval[log.eval.eval_id].info.run_id
        traces = client.search_traces(locations=[e.experiment_id], run_id=rid, max_results=500)
        assert len(traces) == len(log.samples)
        found = {(t.info.tags["inspect.sample_id"], int(t.info.tags["inspect.epoch"])): t for t in traces}
        for s in log.samples:
            t = found[(str(s.id), s.epoch)]
            name = f"sample:{s.id}" + (f" (epoch {s.epoch})" if s.epoch > 1 else "")
            tags = {k: v for k, v in t.info.tags.items() if k.startswith("inspect.") or k == "mlflow.traceName"}
            assert tags == {"mlflow.traceName": name, "inspect.run_id": log.eval.run_id,
                            "inspect.eval_id": log.eval.eval_id, "inspect.task": log.eval.task,
                            "inspect.sample_id": str(s.id), "inspect.sample_uuid": s.uuid,
                            "inspect.epoch": str(s.epoch)}
            assert t.info.trace_metadata["mlflow.sourceRun"] == rid
            assert t.info.state.value == ("ERROR" if s.error else "OK")
            (root,) = [sp for sp in t.data.spans if sp.parent_id is None]
            assert root.name == name and root.span_type == "CHAIN"
            assert root.attributes["inspect.sample_uuid"] == s.uuid
            assert root.attributes["total_time"] == pytest.approx(s.total_time)
            n_model = sum(1 for sp in t.data.spans if sp.span_type == "LLM")
            n_tool = sum(1 for sp in t.data.spans if sp.span_type == "TOOL")
            assert (n_model, n_tool) == (sum(ev.event == "model" for ev in s.events),
                                         sum(ev.event == "tool" for ev in s.events))
