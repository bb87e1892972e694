"""The Inspect AI hook: every hook that carries data becomes ring records.

Rules this file keeps (how Inspect calls its hooks; docs/DESIGN.md, "The Inspect hook"):
- no hook method raises into the eval or awaits I/O: each copies the scalars
  it needs and hands one dict to the C encoder (microseconds);
- enabled() is cached and cannot raise;
- ModelEvents arrive several times: the last state per event uuid is kept
  and emitted once, when the sample moves on;
- event objects are live: what a later rewrite could change is copied at
  delivery, the conversation is never serialised (only its length);
- on_task_end does not fire on cancellation: open tasks are closed in
  on_run_end from the logs;
- BeforeModelGenerate.sample_id is not the sample uuid: it is never joined on.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import os
import socket
import time
from datetime import datetime
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from inspect_ai.hooks import (
    EvalSetEnd,
    EvalSetStart,
    Hooks,
    ModelCacheUsageData,
    ModelRetry,
    ModelUsageData,
    RunEnd,
    RunStart,
    SampleAttemptEnd,
    SampleAttemptStart,
    SampleEnd,
    SampleEvent,
    SampleInit,
    SampleScoring,
    SampleStart,
    TaskEnd,
    TaskStart,
    hooks,
)

from . import _env, _producer, _sidecar
from . import _ringflow as _rf

log = logging.getLogger("ringflow")

EV = _rf  # record type constants: EV.EV_MODEL_CALL, ...
LOG_MODEL_API = _env.flag(_env.LOG_MODEL_API)
_LOG_LEVELS = ("warning", "error", "critical")


def _ts(value: Any) -> float | None:
    """Inspect times (datetime or ISO string) as epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _usage(u: Any) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "input_tokens_cache_read": u.input_tokens_cache_read,
        "input_tokens_cache_write": u.input_tokens_cache_write,
        "reasoning_tokens": u.reasoning_tokens,
        "total_cost": getattr(u, "total_cost", None),
    }


def _dump(model: Any) -> Any:
    """A pydantic model as plain data, without None fields."""
    if model is None:
        return None
    try:
        return model.model_dump(mode="json", exclude_none=True)
    except Exception:  # noqa: BLE001
        return str(model)


def _text(value: Any) -> Any:
    """Tool results, inputs and targets as text (or a list of strings)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            t = getattr(item, "text", None)
            if t is None:
                t = getattr(item, "content", None)
            parts.append(t if isinstance(t, str) else str(item) if not isinstance(item, str) else item)
        return "\n".join(p for p in parts if p)
    t = getattr(value, "text", None)
    return t if isinstance(t, str) else str(value)


_MAX_TRACE_MESSAGES = 64  # the last N input messages of a model call, for its LLM span


def _trace_settings() -> tuple[bool, str | None]:
    """MLFLOW_INSPECT_TRACING / MLFLOW_INSPECT_TRACE_MODE, read at run start as inspect-mlflow."""
    mode = (_env.get(_env.INSPECT_TRACE_MODE) or "").strip().lower() or None
    return _env.inspect_tracing(), mode


def _strip_userinfo(uri: str) -> str:
    """The URI without user:password@ (a password never goes into the ring)."""
    try:
        parts = urlsplit(uri)
        if "@" not in parts.netloc:
            return uri
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    except ValueError:
        return uri.rpartition("@")[2] if "@" in uri else uri


def _destination() -> dict[str, Any]:
    """Where this eval's runs go, read at run start as inspect-mlflow reads it:
    MLFLOW_TRACKING_URI (userinfo stripped), MLFLOW_EXPERIMENT_NAME (default
    inspect_ai), INSPECT_MLFLOW_LOG_ARTIFACTS / MLFLOW_INSPECT_LOG_ARTIFACTS
    (anything but "false" is on, as the sidecar parses them)."""
    uri = (_env.get(_env.TRACKING_URI) or "").strip()
    return {
        "tracking_uri": _strip_userinfo(uri) if uri else None,
        "experiment_name": _env.get(_env.EXPERIMENT_NAME) or "inspect_ai",
        "log_artifacts": _env.log_artifacts(),
    }


def _messages(msgs: Any) -> list[dict[str, Any]]:
    """Chat messages as plain data for an LLM span's inputs (text, tool calls)."""
    out = []
    for m in list(msgs)[-_MAX_TRACE_MESSAGES:]:
        d: dict[str, Any] = {"role": getattr(m, "role", None), "content": getattr(m, "text", None)}
        calls = getattr(m, "tool_calls", None)
        if calls:
            d["tool_calls"] = [{"id": c.id, "function": c.function, "arguments": c.arguments}
                               for c in calls]
        tcid = getattr(m, "tool_call_id", None)
        if tcid:
            d["tool_call_id"] = tcid
        out.append(d)
    return out


class _Sample:
    __slots__ = ("ids", "pending", "emitted", "attempt")

    def __init__(self, ids: dict[str, Any]):
        self.ids = ids  # copied into every record of the sample
        self.pending: dict[str, tuple] = {}  # event uuid -> (live ModelEvent, early copy)
        # event uuid -> what was emitted: a re-delivery after the flush is
        # emitted again only if it changed (readers keep the last per uuid).
        self.emitted: dict[str, dict[str, Any]] = {}
        self.attempt = 1


class _WarningHandler(logging.Handler):
    """Inspect's logger warnings (and worse) as `log` records."""

    def __init__(self, hook: "RingflowHooks"):
        super().__init__(logging.WARNING)
        self.hook = hook

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not record.name.startswith("inspect_ai"):
                return
            fields = {
                "level": record.levelname.lower(),
                "name": record.name,
                "message": record.getMessage(),
                "created": record.created,
            }
            if len(self.hook._runs) == 1:
                fields["run_id"] = next(iter(self.hook._runs))
            _producer.emit(EV.EV_LOG, fields)
        except Exception:  # noqa: BLE001
            pass


def _score_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return float("nan")  # unscored stays NaN
    return value


def _copier(rtype: int, **fields: str | Callable[[Any], Any]) -> Callable[[Any, "_Sample", Any], None]:
    """A sample-event handler that emits `rtype`: the sample's base fields
    (RingflowHooks._base), then each record field in order, copied from the
    event attribute named for it (dotted: "error.message") or computed by a
    function of the event."""
    getters = [(name, operator.attrgetter(how) if isinstance(how, str) else how)
               for name, how in fields.items()]

    def handler(self: "RingflowHooks", s: "_Sample", ev: Any) -> None:
        f = self._base(s, ev)
        for name, get in getters:
            f[name] = get(ev)
        _producer.emit(rtype, f)

    return handler


def _guard(callback: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
    """A hook callback that never raises into the eval: an exception is
    counted in the hook's `errors` and the first three are logged
    (RingflowHooks._fail), under the callback's name."""
    where = callback.__name__

    @functools.wraps(callback)
    async def guarded(self: "RingflowHooks", data: Any) -> None:
        try:
            await callback(self, data)
        except Exception as e:  # noqa: BLE001
            self._fail(where, e)

    return guarded


@hooks(name="ringflow", description="ringflow: eval telemetry to MLflow via a shared-memory ring")
class RingflowHooks(Hooks):
    def __init__(self) -> None:
        self._enabled: bool | None = None
        self._key: tuple | None = None  # the switches _enabled was decided for
        self._samples: dict[str, _Sample] = {}
        self._tasks: dict[str, dict[str, Any]] = {}  # eval_id -> {task, run_id, ended}
        self._runs: dict[str, set[str]] = {}  # run_id -> eval_ids
        self._handler: _WarningHandler | None = None
        self._tracing = False  # MLFLOW_INSPECT_TRACING at the last run start
        self.errors = 0  # hook-side failures (never raised into the eval)

    # ---- enablement -------------------------------------------------------

    def enabled(self) -> bool:
        # Decided again whenever the switches change: a second eval() in
        # this process with another (or no) MLFLOW_TRACKING_URI is honoured.
        # Inspect asks before every hook call, so the check is two lookups.
        env = os.environ
        key = (env.get(_env.TRACKING_URI), env.get(_env.DISABLED))
        if key == self._key:
            return self._enabled  # type: ignore[return-value]
        try:
            e = self._decide(*key)
        except Exception:  # noqa: BLE001 - enabled() must never raise
            e = False
        self._key, self._enabled = key, e
        return e

    def _decide(self, uri: str | None, disabled: str | None) -> bool:
        if _env.flag_value(disabled, False, _env.DISABLED):
            return False
        if not uri:
            return False  # same switch as inspect-mlflow
        why = _sidecar.uri_problem(uri)
        if why:
            _sidecar.warn_once("uri:" + uri, "ringflow: %s. ringflow is off for this eval.", why)
            return False
        if _producer.producer() is None:
            return False
        if self._handler is None:
            self._handler = _WarningHandler(self)
            logging.getLogger("inspect_ai").addHandler(self._handler)
        return True

    def _fail(self, where: str, e: BaseException) -> None:
        self.errors += 1
        if self.errors <= 3:
            log.warning("ringflow hook: %s failed: %r (eval continues)", where, e)

    # ---- eval set / run ---------------------------------------------------

    @_guard
    async def on_eval_set_start(self, data: EvalSetStart) -> None:
        _producer.emit(EV.EV_EVAL_SET_START, {"eval_set_id": data.eval_set_id, "log_dir": data.log_dir, "time": time.time()})

    @_guard
    async def on_eval_set_end(self, data: EvalSetEnd) -> None:
        _producer.emit(EV.EV_EVAL_SET_END, {"eval_set_id": data.eval_set_id, "log_dir": data.log_dir, "time": time.time()})

    @_guard
    async def on_run_start(self, data: RunStart) -> None:
        self._runs[data.run_id] = set()
        # A sidecar for this eval: started if none serves the ring (the
        # previous one may have idled out or been killed since).
        _producer.autostart_sidecar()
        self._tracing, mode = _trace_settings()
        _producer.emit(
            EV.EV_RUN_START,
            {
                "run_id": data.run_id,
                "eval_set_id": data.eval_set_id,
                "task_names": list(data.task_names),
                "time": time.time(),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "tracing": self._tracing,
                "trace_mode": mode,
                **_destination(),
            },
        )

    @_guard
    async def on_run_end(self, data: RunEnd) -> None:
        now = time.time()
        logs = {}
        for lg in data.logs or []:
            try:
                logs[lg.eval.eval_id] = lg
            except Exception:  # noqa: BLE001
                pass
        # Samples still holding model calls (cancelled mid-sample).
        for uuid, s in list(self._samples.items()):
            if s.ids.get("run_id") == data.run_id:
                self._flush(s)
                del self._samples[uuid]
        # on_task_end does not fire on cancellation: close open tasks.
        for eval_id in self._runs.get(data.run_id, ()):
            t = self._tasks.get(eval_id)
            if t is None or t["ended"]:
                continue
            lg = logs.get(eval_id)
            if lg is not None:
                self._emit_task_end(data.eval_set_id, data.run_id, eval_id, t["task"], lg, synthesized=True)
            else:
                _producer.emit(
                    EV.EV_TASK_END,
                    {
                        "run_id": data.run_id,
                        "eval_set_id": data.eval_set_id,
                        "eval_id": eval_id,
                        "task": t["task"],
                        "status": "cancelled",
                        "error": repr(data.exception) if data.exception else None,
                        "synthesized": True,
                        "time": now,
                    },
                )
        exc = None
        if data.exception is not None:
            exc = {"type": type(data.exception).__name__, "message": str(data.exception)}
        _producer.emit(
            EV.EV_RUN_END,
            {
                "run_id": data.run_id,
                "eval_set_id": data.eval_set_id,
                "time": now,
                "exception": exc,
                "logs": [
                    {
                        "eval_id": lg.eval.eval_id,
                        "task": lg.eval.task,
                        "status": lg.status,
                        "location": lg.location,
                    }
                    for lg in logs.values()
                ],
            },
        )
        # The eval's last records may sit in a spill file (the ring
        # was full): sealed into the ring's order now, not at exit.
        _producer.flush()
        for eval_id in self._runs.pop(data.run_id, ()):
            self._tasks.pop(eval_id, None)
        # A long eval may have outlived an idle-exiting (or killed)
        # sidecar: the run's last records must not wait for the next eval.
        _producer.autostart_sidecar()

    # ---- task ----------------------------------------------------------------

    @_guard
    async def on_task_start(self, data: TaskStart) -> None:
        spec = data.spec
        self._tasks[data.eval_id] = {"task": spec.task, "run_id": data.run_id, "ended": False}
        self._runs.setdefault(data.run_id, set()).add(data.eval_id)
        cfg = spec.config
        plan = getattr(data, "plan", None)
        steps = [{"solver": s.solver, "params": s.params} for s in (plan.steps if plan else [])]
        solver = spec.solver or ",".join(s["solver"] for s in steps) or None
        roles = {k: getattr(v, "model", str(v)) for k, v in (spec.model_roles or {}).items()}
        ds = spec.dataset
        _producer.emit(
            EV.EV_TASK_START,
            {
                "run_id": data.run_id,
                "eval_set_id": data.eval_set_id,
                "eval_id": data.eval_id,
                "task": spec.task,
                "task_id": spec.task_id,
                "task_version": spec.task_version,
                "task_file": spec.task_file,
                "task_display_name": spec.task_display_name,
                "model": spec.model,
                "model_base_url": spec.model_base_url,
                "model_args": spec.model_args,
                "model_roles": roles,
                # The model's config overlaid with eval()'s (plan.config).
                "generate_config": {
                    **(_dump(spec.model_generate_config) or {}),
                    **((_dump(plan.config) or {}) if plan is not None else {}),
                },
                "task_args": spec.task_args,
                "dataset": {
                    "name": ds.name,
                    "location": ds.location,
                    "samples": ds.samples,
                    "shuffled": ds.shuffled,
                },
                "solver": solver,
                "solver_args": spec.solver_args,
                "plan": steps,
                "scorers": [s.name for s in (spec.scorers or [])],
                "tags": list(spec.tags or []),
                "epochs": cfg.epochs,
                "limits": {
                    "limit": cfg.limit,
                    "message_limit": cfg.message_limit,
                    "token_limit": cfg.token_limit,
                    "time_limit": cfg.time_limit,
                    "working_limit": cfg.working_limit,
                    "cost_limit": getattr(cfg, "cost_limit", None),
                },
                "config": _dump(cfg),
                "created": _ts(spec.created),
                "metadata": spec.metadata,
            },
        )

    def _emit_task_end(self, eval_set_id, run_id, eval_id, task, lg, synthesized=False) -> None:
        res = lg.results
        scores = []
        for sc in (res.scores if res else []) or []:
            scores.append(
                {
                    "name": sc.name,
                    "scorer": sc.scorer,
                    "reducer": sc.reducer,
                    "scored_samples": sc.scored_samples,
                    "unscored_samples": sc.unscored_samples,
                    "metrics": {k: m.value for k, m in (sc.metrics or {}).items()},
                }
            )
        st = lg.stats
        _producer.emit(
            EV.EV_TASK_END,
            {
                "run_id": run_id,
                "eval_set_id": eval_set_id,
                "eval_id": eval_id,
                "task": task,
                "status": lg.status,
                "error": lg.error.message if lg.error else None,
                "total_samples": res.total_samples if res else None,
                "completed_samples": res.completed_samples if res else None,
                "scores": scores,
                "model_usage": {k: _usage(u) for k, u in (st.model_usage or {}).items()},
                "role_usage": {k: _usage(u) for k, u in (getattr(st, "role_usage", None) or {}).items()},
                "location": lg.location,
                "started_at": _ts(st.started_at),
                "completed_at": _ts(st.completed_at),
                "synthesized": synthesized,
                "time": time.time(),
            },
        )
        t = self._tasks.get(eval_id)
        if t is not None:
            t["ended"] = True

    @_guard
    async def on_task_end(self, data: TaskEnd) -> None:
        t = self._tasks.get(data.eval_id)
        task = t["task"] if t else data.log.eval.task
        self._emit_task_end(data.eval_set_id, data.run_id, data.eval_id, task, data.log)

    # ---- samples ---------------------------------------------------------------

    def _sample(self, data: Any, summary: Any = None) -> _Sample:
        s = self._samples.get(data.sample_id)
        if s is None:
            t = self._tasks.get(data.eval_id)
            ids = {
                "run_id": data.run_id,
                "eval_id": data.eval_id,
                "task": t["task"] if t else None,
                "sample_uuid": data.sample_id,
                "sample_id": summary.id if summary is not None else None,
                "epoch": summary.epoch if summary is not None else None,
            }
            s = self._samples[data.sample_id] = _Sample(ids)
        elif summary is not None and s.ids["sample_id"] is None:
            s.ids["sample_id"] = summary.id
            s.ids["epoch"] = summary.epoch
        return s

    @_guard
    async def on_sample_init(self, data: SampleInit) -> None:
        s = self._sample(data, data.summary)
        f = dict(s.ids)
        f["input"] = _text(data.summary.input)
        f["target"] = data.summary.target
        f["time"] = time.time()
        _producer.emit(EV.EV_SAMPLE_INIT, f)

    @_guard
    async def on_sample_start(self, data: SampleStart) -> None:
        s = self._sample(data, data.summary)
        f = dict(s.ids)
        f["time"] = time.time()
        _producer.emit(EV.EV_SAMPLE_START, f)

    @_guard
    async def on_sample_attempt_start(self, data: SampleAttemptStart) -> None:
        s = self._sample(data, data.summary)
        s.attempt = data.attempt
        f = dict(s.ids)
        f["attempt"] = data.attempt
        f["time"] = time.time()
        _producer.emit(EV.EV_ATTEMPT_START, f)

    @_guard
    async def on_sample_attempt_end(self, data: SampleAttemptEnd) -> None:
        s = self._sample(data, data.summary)
        self._flush(s)
        f = dict(s.ids)
        f["attempt"] = data.attempt
        f["error"] = data.error.message if data.error else None
        f["will_retry"] = data.will_retry
        f["time"] = time.time()
        _producer.emit(EV.EV_ATTEMPT_END, f)

    @_guard
    async def on_sample_scoring(self, data: SampleScoring) -> None:
        s = self._sample(data)
        self._flush(s)
        f = dict(s.ids)
        f["time"] = time.time()
        _producer.emit(EV.EV_SAMPLE_SCORING, f)

    @_guard
    async def on_sample_end(self, data: SampleEnd) -> None:
        try:
            s = self._sample(data)
            self._flush(s)
            smp = data.sample
            if s.ids["sample_id"] is None:
                s.ids["sample_id"] = smp.id
                s.ids["epoch"] = smp.epoch
            f = dict(s.ids)
            err = smp.error
            f["status"] = "error" if err is not None else "success"
            f["error"] = err.message if err is not None else None
            f["limit"] = {"type": smp.limit.type, "limit": smp.limit.limit} if smp.limit else None
            f["started_at"] = _ts(smp.started_at)
            f["completed_at"] = _ts(smp.completed_at)
            f["total_time"] = smp.total_time
            f["working_time"] = smp.working_time
            f["output"] = smp.output.completion if smp.output else None
            f["scores"] = {
                name: {
                    "value": sc.value,
                    "answer": sc.answer,
                    "explanation": sc.explanation,
                    "metadata": sc.metadata,
                }
                for name, sc in (smp.scores or {}).items()
            }
            f["model_usage"] = {k: _usage(u) for k, u in (smp.model_usage or {}).items()}
            f["message_count"] = len(smp.messages) if smp.messages is not None else None
            f["retries"] = len(smp.error_retries) if smp.error_retries else 0
            f["attempt"] = s.attempt
            f["time"] = time.time()
            _producer.emit(EV.EV_SAMPLE_END, f)
        finally:
            self._samples.pop(data.sample_id, None)

    # ---- sample events -----------------------------------------------------------

    def _flush(self, s: _Sample) -> None:
        if s.pending:
            pending, s.pending = s.pending, {}
            for uuid, (ev, early) in pending.items():
                f = self._model_fields(s, ev, early)
                if s.emitted.get(uuid) != f:
                    s.emitted[uuid] = f
                    _producer.emit(EV.EV_MODEL_CALL, f)

    def _base(self, s: _Sample, ev: Any) -> dict[str, Any]:
        f = dict(s.ids)
        f["attempt"] = s.attempt
        f["event_uuid"] = ev.uuid
        f["span_id"] = ev.span_id
        return f

    @_guard
    async def on_sample_event(self, data: SampleEvent) -> None:
        ev = data.event
        kind = ev.event
        s = self._samples.get(data.sample_id) or self._sample(data)
        if kind == "model":
            # Inspect re-delivers a ModelEvent as it completes.  What a
            # later rewrite could change (the input, condensed into refs;
            # the raw call, rewritten to attachments) is copied now; the
            # rest only becomes more final and is read once, at the flush.
            early = (len(ev.input),
                     (ev.call.request, ev.call.response) if LOG_MODEL_API and ev.call else None,
                     _messages(ev.input) if self._tracing else None)
            s.pending[ev.uuid] = (ev, early)
            return
        handler = self._dispatch.get(kind)
        if handler is None:
            return
        if s.pending:
            self._flush(s)
        handler(self, s, ev)

    def _model_fields(self, s: _Sample, ev: Any, early: tuple) -> dict[str, Any]:
        # One dict display, not 30 item stores: this runs on every delivery.
        out = ev.output
        cfg = ev.config
        u = out.usage if out is not None else None
        choice = out.choices[0] if out is not None and out.choices else None
        f = {
            **s.ids,
            "attempt": s.attempt,
            "event_uuid": ev.uuid,
            "span_id": ev.span_id,
            "model": ev.model,
            "role": ev.role,
            "timestamp": ev.timestamp,
            "completed": ev.completed,
            "working_start": ev.working_start,
            "working_time": ev.working_time,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
            "cache": ev.cache,
            "retries": ev.retries,
            "error": ev.error,
            "stop_reason": choice.stop_reason if choice is not None else None,
            "input_messages": early[0],
            "tool_calls": len(choice.message.tool_calls or ()) if choice is not None else 0,
            "response": out.completion if out is not None else None,
        }
        if u is not None:
            f.update(_usage(u))
        if early[1] is not None:
            f["request_raw"], f["response_raw"] = early[1]
        if early[2] is not None:
            f["input"] = early[2]
        return f

    # Each sample event's record: the base fields, then each record field
    # copied from the event attribute named for it (a dotted path), or
    # computed from the event.
    _on_tool = _copier(
        EV.EV_TOOL_CALL, tool_call_id="id", function="function", arguments="arguments",
        result=lambda ev: _text(ev.result),
        error=lambda ev: ({"type": ev.error.type, "message": ev.error.message}
                          if ev.error is not None else None),
        truncated=lambda ev: list(ev.truncated) if ev.truncated else None,
        timestamp="timestamp", completed="completed", working_start="working_start",
        working_time="working_time", agent="agent", failed="failed")
    _on_score = _copier(
        EV.EV_SCORE, scorer="scorer", value=lambda ev: _score_value(ev.score.value),
        answer="score.answer", explanation="score.explanation", metadata="score.metadata",
        target="target", intermediate="intermediate", timestamp="timestamp")
    _on_span_begin = _copier(EV.EV_SPAN_BEGIN, span_id="id", parent_id="parent_id",
                             span_type="type", name="name", timestamp="timestamp",
                             working_start="working_start")
    _on_span_end = _copier(EV.EV_SPAN_END, span_id="id", timestamp="timestamp",
                           working_start="working_start")
    _on_error = _copier(EV.EV_ERROR, message="error.message", traceback="error.traceback",
                        timestamp="timestamp")
    _on_limit = _copier(EV.EV_SAMPLE_LIMIT, limit_type="type", message="message", limit="limit",
                        timestamp="timestamp")

    _dispatch = {
        "tool": _on_tool,
        "score": _on_score,
        "span_begin": _on_span_begin,
        "span_end": _on_span_end,
        "error": _on_error,
        "sample_limit": _on_limit,
    }

    # ---- model hooks (inline in Model.generate: keep them cheap) ---------------

    @_guard
    async def on_model_usage(self, data: ModelUsageData) -> None:
        f = _usage(data.usage) or {}
        f.update(
            run_id=data.run_id,
            eval_id=data.eval_id,
            task=data.task_name,
            model=data.model_name,
            call_duration=data.call_duration,
            retries=data.retries,
            time=time.time(),
        )
        _producer.emit(EV.EV_MODEL_USAGE, f)

    @_guard
    async def on_model_cache_usage(self, data: ModelCacheUsageData) -> None:
        f = _usage(data.usage) or {}
        f.update(model=data.model_name, time=time.time())
        _producer.emit(EV.EV_MODEL_CACHE_USAGE, f)

    @_guard
    async def on_model_retry(self, data: ModelRetry) -> None:
        t = self._tasks.get(data.eval_id) if data.eval_id else None
        _producer.emit(
            EV.EV_MODEL_RETRY,
            {
                "run_id": data.run_id,
                "eval_id": data.eval_id,
                "task": data.task_name or (t["task"] if t else None),
                "sample_uuid": data.sample_id,  # ModelRetry carries the sample uuid
                "model": data.model_name,
                "attempt": data.attempt,
                "wait_time": data.wait_time,
                "exception_type": data.exception_type,
                "status_code": data.status_code,
                "time": time.time(),
            },
        )
