"""The Inspect hook end to end: real eval() -> hook -> ring -> msgpack-c decode.

Each eval runs in its own process (rf_evals.py) with its own ring; the
records are read back with ringflow-dump (msgpack-c, the sidecar's decoder)
and compared with the log Inspect itself wrote.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVALS = Path(__file__).with_name("rf_evals.py")
DUMP = REPO / "build" / "release" / "bin" / "ringflow-dump"


@pytest.fixture
def ring(ring, tmp_path):
    """conftest's ring and a spool directory."""
    return ring, tmp_path / "spool"


def eval_env(ring_name: str, spool: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",  # the hook never contacts it
        RINGFLOW_RING=ring_name,
        RINGFLOW_SPOOL_DIR=str(spool),
        RINGFLOW_AUTOSTART="0",
    )
    env.pop("RINGFLOW_DISABLED", None)
    env.update(extra)
    return env


def run_eval(env: dict[str, str], log_dir: Path, kind: str, *args: str) -> tuple[str, str, dict]:
    p = subprocess.run(
        [sys.executable, str(EVALS), kind, str(log_dir), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, f"eval failed:\n{p.stdout}\n{p.stderr[-4000:]}"
    lines = p.stdout.strip().splitlines()
    return lines[-3], lines[-2], json.loads(lines[-1])


def dump(ring_name: str) -> list[dict]:
    assert DUMP.exists(), "build first: make"
    p = subprocess.run([str(DUMP), "--ring", ring_name, "--idle-ms", "200"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    assert all("error" not in r for r in recs), "malformed records"
    return recs


def ts(v) -> float:
    return v.timestamp() if isinstance(v, datetime) else datetime.fromisoformat(v).timestamp()


# ---------------------------------------------------------------------------
# A rich eval: tool calls, three scorers (letter grade, dict), two epochs, a
# sample that always errors, one that is retried.

@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    from inspect_ai.log import read_eval_log

    tmp = tmp_path_factory.mktemp("rich")
    name = f"/rf-pytest-rich-{os.getpid()}"
    try:
        location, status, stats = run_eval(eval_env(name, tmp / "spool"), tmp / "logs", "rich")
        recs = dump(name)
    finally:
        if os.path.exists(f"/dev/shm{name}"):
            os.unlink(f"/dev/shm{name}")
    log = read_eval_log(location)
    by_type = defaultdict(list)
    for r in recs:
        by_type[r["type"]].append(r["data"])
    return log, by_type, stats


def test_run_and_task_records_match_log(rich):
    log, recs, stats = rich
    assert stats["errors"] == 0 and stats["encode_errors"] == 0
    (rs,), (re_,) = recs["run_start"], recs["run_end"]
    assert rs["run_id"] == re_["run_id"] == log.eval.run_id
    assert rs["task_names"] == ["rich"] and rs["pid"] > 0
    assert re_["exception"] is None
    assert re_["logs"] == [{"eval_id": log.eval.eval_id, "task": "rich", "status": log.status,
                            "location": log.location}]
    (t,) = recs["task_start"]
    assert t["eval_id"] == log.eval.eval_id and t["task"] == "rich"
    assert t["model"] == "mockllm/model" and t["epochs"] == 2
    assert t["dataset"]["samples"] == 5
    assert t["scorers"] == [s.name for s in log.eval.scorers]
    assert t["generate_config"]["temperature"] == 0.0 and t["generate_config"]["max_tokens"] == 128
    assert [p["solver"] for p in t["plan"]] == [s.solver for s in log.plan.steps]
    (te,) = recs["task_end"]
    assert te["status"] == log.status == "success"
    assert te["total_samples"] == log.results.total_samples == 10
    assert te["completed_samples"] == log.results.completed_samples
    want = {s.name: {k: m.value for k, m in s.metrics.items()} for s in log.results.scores}
    assert {s["name"]: s["metrics"] for s in te["scores"]} == want
    assert te["location"] == log.location
    # Token usage per model, every field, equals Inspect's own totals.
    for model, u in log.stats.model_usage.items():
        got = te["model_usage"][model]
        for field in ("input_tokens", "output_tokens", "total_tokens", "input_tokens_cache_read",
                      "input_tokens_cache_write", "reasoning_tokens", "total_cost"):
            assert got[field] == pytest.approx(getattr(u, field)) if getattr(u, field) is not None \
                else got[field] is None, field


def test_samples_scores_and_errors_match_log(rich):
    log, recs, _ = rich
    ends = {(r["sample_id"], r["epoch"]): r for r in recs["sample_end"]}
    assert set(ends) == {(s.id, s.epoch) for s in log.samples}
    for s in log.samples:
        r = ends[(s.id, s.epoch)]
        assert r["sample_uuid"] == s.uuid and r["run_id"] == log.eval.run_id
        assert r["eval_id"] == log.eval.eval_id and r["task"] == "rich"
        assert r["total_time"] == pytest.approx(s.total_time)
        assert r["working_time"] == pytest.approx(s.working_time)
        assert r["retries"] == len(s.error_retries or [])
        if s.error is not None:
            assert r["status"] == "error" and r["error"] == s.error.message
            assert r["scores"] == {}
        else:
            assert r["status"] == "success" and r["error"] is None
            assert r["output"] == s.output.completion
            assert {k: v["value"] for k, v in r["scores"].items()} == \
                {k: v.value for k, v in s.scores.items()}
            assert {k: v["explanation"] for k, v in r["scores"].items()} == \
                {k: v.explanation for k, v in s.scores.items()}
    # Letter grades and dict scores came through typed.
    q1 = ends[("q1", 1)]["scores"]
    assert q1["grade"]["value"] == "C" and q1["rubric"]["value"]["accuracy"] == 1.0
    assert ends[("boom", 1)]["status"] == "error"
    assert ends[("flaky", 2)]["status"] == "success" and ends[("flaky", 2)]["retries"] == 1


def test_attempts_record_the_retry(rich):
    _, recs, _ = rich
    flaky = sorted((r["epoch"], r["attempt"], r["will_retry"], r["error"] is not None)
                   for r in recs["attempt_end"] if r["sample_id"] == "flaky")
    assert flaky == [(1, 1, True, True), (1, 2, False, False), (2, 1, True, True), (2, 2, False, False)]
    boom = [r for r in recs["attempt_end"] if r["sample_id"] == "boom"]
    assert len(boom) == 4 and all(r["error"] for r in boom)
    starts = Counter((r["sample_id"], r["epoch"]) for r in recs["sample_start"])
    assert set(starts.values()) == {1}  # once per (sample, epoch), not per attempt


def test_model_and_tool_calls_match_log_events(rich):
    log, recs, _ = rich
    calls = recs["model_call"]
    uuids = Counter(r["event_uuid"] for r in calls)
    assert max(uuids.values()) == 1, "a ModelEvent was emitted twice"
    by_event = {r["event_uuid"]: r for r in calls}
    tools = {r["event_uuid"]: r for r in recs["tool_call"]}
    n_model = n_tool = 0
    totals = defaultdict(Counter)
    for s in log.samples:
        for ev in s.events:
            if ev.event == "model":
                n_model += 1
                r = by_event[ev.uuid]
                assert r["sample_uuid"] == s.uuid and r["model"] == ev.model
                # Times are the event's own, not the record's.
                assert r["timestamp"] == pytest.approx(ts(ev.timestamp), abs=1e-3)
                assert r["completed"] == pytest.approx(ts(ev.completed), abs=1e-3)
                assert r["working_time"] == pytest.approx(ev.working_time)
                u = ev.output.usage
                assert (r["input_tokens"], r["output_tokens"]) == (u.input_tokens, u.output_tokens)
                assert r["input_messages"] == len(ev.input)
                assert r["response"] == ev.output.completion
                assert r["max_tokens"] == 128 and r["temperature"] == 0.0
            elif ev.event == "tool":
                n_tool += 1
                r = tools[ev.uuid]
                assert r["function"] == ev.function == "multiply"
                assert r["arguments"] == ev.arguments and r["result"] == "42"
                assert r["working_time"] == pytest.approx(ev.working_time)
        for model, u in (s.model_usage or {}).items():
            totals[model]["input_tokens"] += u.input_tokens
            totals[model]["output_tokens"] += u.output_tokens
    assert n_model == len(calls) == 16 and n_tool == len(tools) == 8
    # Token totals per model from the records equal the log's.
    got = defaultdict(Counter)
    for r in calls:
        got[r["model"]]["input_tokens"] += r["input_tokens"]
        got[r["model"]]["output_tokens"] += r["output_tokens"]
    assert got == totals
    for model, u in log.stats.model_usage.items():
        assert got[model]["input_tokens"] == u.input_tokens
    # Scores, spans and errors from the event stream.
    assert len(recs["score"]) == 3 * 8  # 3 scorers x 8 samples that scored
    assert {r["span_type"] for r in recs["span_begin"]} >= {"solvers", "solver", "scorers", "scorer"}
    assert len(recs["span_begin"]) == len(recs["span_end"])
    assert {r["message"] for r in recs["error"]} == {"RuntimeError('boom sample always fails')"}


def test_every_record_type_round_trips_from_python(ring):
    """Every record type, encoded by the extension, decoded with msgpack-c."""
    import ringflow
    from ringflow import _ringflow

    name, _ = ring
    p = ringflow.Producer(ring=name)
    when = datetime(2026, 11, 23, 12, 0, 0).astimezone()
    types = [getattr(_ringflow, a) for a in dir(_ringflow) if a.startswith("EV_")]
    # every type the C header defines (1..27 with the tracing ones), no gap
    assert sorted(types) == list(range(1, len(types) + 1)) and len(types) >= 27
    assert ringflow.event_name(len(types) + 1) is None
    sent = {}
    for t in types:
        fields = {
            "run_id": "r1", "eval_id": "e1", "task": "t", "sample_uuid": f"u{t}",
            "sample_id": t, "epoch": 1, "time": when, "flag": True, "none": None,
            "value": {"accuracy": 0.5, "label": "C", "n": -3, "list": [1, "x", None, 2.5]},
            "tuple": (1, 2), "bytes": b"\x00\xff", "big": 2**70, "nan": float("nan"),
        }
        assert p.emit(t, fields) is True
        sent[t] = fields
    recs = dump(name)
    assert [r["type_id"] for r in recs] == types
    for r in recs:
        d = r["data"]
        f = sent[r["type_id"]]
        assert r["type"] == ringflow.event_name(r["type_id"])
        assert d["v"] == ringflow.SCHEMA_VERSION
        assert d["time"] == pytest.approx(when.timestamp())
        assert d["value"] == f["value"] and d["tuple"] == [1, 2]
        assert d["bytes"] == {"$bin": "00ff"} and d["big"] == str(2**70)
        assert d["nan"] == "NaN" and d["none"] is None and d["flag"] is True
        assert d["sample_id"] == r["type_id"]
    p.close()


def test_long_text_is_truncated_with_original_size(ring):
    import ringflow

    name, _ = ring
    p = ringflow.Producer(ring=name, max_text=1000)
    text = "é" * 5000  # 10000 bytes
    assert p.emit(ringflow._ringflow.EV_LOG, {"message": text})
    (r,) = dump(name)
    m = r["data"]["message"]
    assert m["truncated"] is True and m["bytes"] == 10000
    assert len(m["text"].encode()) <= 1000 and set(m["text"]) == {"é"}
    assert p.stats()["truncated"] == 1


def test_secrets_never_enter_the_ring(ring, tmp_path):
    name, spool = ring
    canary = "rfcanary-7Qx2-SECRET-9931"
    env = eval_env(name, spool, OPENAI_API_KEY=canary, MLFLOW_TRACKING_TOKEN=canary + "-tok",
                   RF_TEST_SECRET=canary)
    location, status, stats = run_eval(env, tmp_path / "logs", "plain", "3")
    assert status == "success" and stats["redacted"] > 0
    raw = Path(f"/dev/shm{name}").read_bytes()  # before anything consumes it
    assert canary.encode() not in raw
    recs = dump(name)
    assert canary not in json.dumps(recs)
    (t,) = [r["data"] for r in recs if r["type"] == "task_start"]
    assert t["model_args"].get("api_key", "[REDACTED]") == "[REDACTED]"
    assert t["task_args"]["password"] == "[REDACTED]"
    assert t["task_args"]["note"] == "[REDACTED]"  # contains the env secret's value
    inits = [r["data"] for r in recs if r["type"] == "sample_init"]
    assert inits and all(r["input"] == "[REDACTED]" for r in inits)
    # And Inspect's own log did contain it: the test would see a leak.
    from inspect_ai.log import read_eval_log

    assert canary in read_eval_log(location).samples[0].input


def test_hook_never_raises_when_ring_is_full_and_spool_unwritable(ring, tmp_path):
    import ringflow

    name, _ = ring
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be")
    tiny = ringflow.Producer(ring=name, capacity=65536)  # no consumer: it fills
    tiny.close()
    env = eval_env(name, blocker)
    location, status, stats = run_eval(env, tmp_path / "logs", "plain", "200")
    assert status == "success"
    assert stats["errors"] > 0 and stats["records"] > 0  # lost ones are counted
    assert stats["ring_spill_failed"] == stats["errors"]


def test_hook_disabled_when_ring_unusable(tmp_path):
    bad = "/rf-pytest-garbage-%d" % os.getpid()
    Path(f"/dev/shm{bad}").write_bytes(b"x" * 200000)  # not a ring
    os.chmod(f"/dev/shm{bad}", 0o600)
    try:
        for ring_name in (bad, "no-leading-slash/ring"):
            env = eval_env(ring_name, tmp_path / "spool")
            _, status, stats = run_eval(env, tmp_path / "logs", "plain", "3")
            assert status == "success"
            assert stats.get("open_error") and stats["not_opened"] == 0
    finally:
        os.unlink(f"/dev/shm{bad}")


# RINGFLOW_DISABLED under ringflow's one rule (ringflow/_env.py): "on" used
# to leave the hook on (only 1/true/yes counted).
@pytest.mark.parametrize("switch", [{"RINGFLOW_DISABLED": "1"}, {"RINGFLOW_DISABLED": "on"},
                                    {"MLFLOW_TRACKING_URI": ""}])
def test_switches_disable_the_hook(ring, tmp_path, switch):
    name, spool = ring
    env = eval_env(name, spool, **switch)
    _, status, stats = run_eval(env, tmp_path / "logs", "plain", "3")
    assert status == "success" and stats.get("records", 0) == 0
    assert not os.path.exists(f"/dev/shm{name}")  # never even opened


def test_off_word_leaves_the_hook_on(ring, tmp_path):
    name, spool = ring
    env = eval_env(name, spool, RINGFLOW_DISABLED="Off")
    _, status, stats = run_eval(env, tmp_path / "logs", "plain", "3")
    assert status == "success" and stats.get("records", 0) > 0


def test_autostart_starts_sidecar_once_unless_disabled(ring, tmp_path):
    name, spool = ring
    marker = tmp_path / "started"
    fake = tmp_path / "ringflowd"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\n")
    fake.chmod(0o755)
    env = eval_env(name, spool, RINGFLOW_SIDECAR=str(fake), RINGFLOW_AUTOSTART="1")
    run_eval(env, tmp_path / "logs", "plain", "3")
    for _ in range(50):
        if marker.exists():
            break
        import time

        time.sleep(0.1)
    # At run start, and again at run end when no sidecar serves the ring
    # (this fake never does): each time detached, with the idle exit.
    lines = marker.read_text().splitlines()
    assert 1 <= len(lines) <= 2
    assert all(line.split() == ["--detach", "--idle-exit-ms", "600000"] for line in lines)
    marker.unlink()
    env["RINGFLOW_AUTOSTART"] = "0"
    run_eval(env, tmp_path / "logs", "plain", "3")
    import time

    time.sleep(0.5)
    assert not marker.exists()


def test_entry_point_registers_the_hook():
    eps = [e for e in entry_points(group="inspect_ai") if e.name == "ringflow"]
    assert eps and eps[0].value == "ringflow._registry"
    from inspect_ai._util.registry import registry_find

    import ringflow._registry  # noqa: F401

    assert any("ringflow" in str(h) for h in registry_find(lambda i: i.type == "hooks"))


def test_a_failing_callback_never_raises_into_the_eval(caplog):
    """Every hook callback is guarded (_hook._guard): an exception is counted
    in `errors`, the first three are logged under the callback's name, the
    eval never sees it; on_sample_end forgets its sample even then."""
    import asyncio
    import types

    from ringflow._hook import RingflowHooks

    hook = RingflowHooks()
    bad = types.SimpleNamespace(sample_id="s-1", eval_id="e", run_id="r")  # no .log, .sample
    hook._samples["s-1"] = object()  # on_sample_end must drop it whatever fails
    with caplog.at_level("WARNING", logger="ringflow"):
        asyncio.run(hook.on_task_end(bad))
        asyncio.run(hook.on_sample_end(bad))
        asyncio.run(hook.on_eval_set_start(None))
        asyncio.run(hook.on_model_usage(None))
    assert hook.errors == 4
    assert "s-1" not in hook._samples
    logged = [r.getMessage() for r in caplog.records if r.name == "ringflow"]
    assert len(logged) == 3  # the first three only
    for name, msg in zip(("on_task_end", "on_sample_end", "on_eval_set_start"), logged):
        assert msg.startswith(f"ringflow hook: {name} failed: ") and msg.endswith("(eval continues)")
    # The callbacks keep their names (Inspect looks hooks up by method).
    assert RingflowHooks.on_task_end.__name__ == "on_task_end"
