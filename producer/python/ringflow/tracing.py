"""MLflow traces from any Python program, through the ring.

The names and behaviour follow MLflow's fluent tracing API where they overlap,
so a program switches by changing its import::

    import ringflow.tracing as mlflow          # was: import mlflow
    from ringflow.tracing import SpanType      # was: from mlflow.entities import SpanType

    @mlflow.trace(span_type=SpanType.TOOL)
    def search(query: str, k: int = 3) -> list[str]: ...

    with mlflow.start_span("step", span_type=SpanType.CHAIN) as span:
        span.set_inputs({"x": 1})
        span.set_outputs(search("x"))
    mlflow.update_current_trace(tags={"session": "s-42"})

A span costs two records written in the calling thread (docs/EVENTS.md,
records 24-27); ringflowd turns them into MLflow traces.  Nothing here does
I/O or raises into the caller: a record that cannot be written is counted
(ringflow.stats()).  Sampling and enable/disable are decided once per trace,
at its root; the spans of an unrecorded trace are no-ops and write nothing.
The current span lives in a contextvar, so asyncio tasks nest correctly.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import sys
import types
from typing import Any, Callable

from . import _env, _producer, _ringflow
from ._assessments import (
    Assessment, AssessmentError, AssessmentSource, AssessmentSourceType, Expectation, Feedback,
    log_assessment, log_expectation, log_feedback,
)

log = logging.getLogger("ringflow")

__all__ = [
    "Assessment", "AssessmentError", "AssessmentSource", "AssessmentSourceType", "Expectation",
    "Feedback", "LiveSpan", "MlflowExperiment", "NoOpSpan", "SpanEvent", "SpanStatus",
    "SpanStatusCode", "SpanType", "add_trace", "configure", "delete_trace_tag", "disable",
    "enable", "flush_trace_async_logging", "get_active_trace_id", "get_current_active_span",
    "get_last_active_trace_id", "get_trace", "is_enabled", "log_assessment", "log_expectation",
    "log_feedback", "log_trace", "reset", "search_traces", "set_destination", "set_experiment",
    "set_sampling_ratio", "set_span_chat_tools", "set_trace_tag", "start_span",
    "start_span_no_context", "trace", "update_current_trace",
]


from ._trace_types import (  # noqa: E402
    SpanEvent, SpanStatus, SpanStatusCode, SpanType, _status_name,
)


# ---- configuration ---------------------------------------------------------

def _env_rate() -> float:
    for name in (_env.TRACE_SAMPLE_RATE, _env.TRACE_SAMPLING_RATIO):
        v = _env.get(name)
        if v:
            try:
                r = float(v)
                if 0.0 <= r <= 1.0:
                    return r
            except ValueError:
                pass
            log.warning("ringflow: ignoring %s=%r (want 0.0-1.0)", name, v)
    return 1.0


_enabled = not _env.trace_disabled()
_rate = _env_rate()
_experiment: str | None = _env.get(_env.TRACE_EXPERIMENT)
_experiment_id: str | None = None
# set_destination(..., context_local=True): this context's experiment id.
_dest_ctx: contextvars.ContextVar[str | None] = contextvars.ContextVar("ringflow_dest",
                                                                      default=None)
_started_sidecar = False


def enable() -> None:
    """Record new traces (the default unless RINGFLOW_DISABLED or
    RINGFLOW_TRACE_DISABLED is on, _env.py)."""
    global _enabled
    _enabled = True


def disable() -> None:
    """Record no new traces; traces already started complete."""
    global _enabled
    _enabled = False


def is_enabled() -> bool:
    return _enabled


def set_sampling_ratio(ratio: float) -> None:
    """Fraction of traces recorded (0.0-1.0), decided at each root."""
    global _rate
    r = float(ratio)
    if not 0.0 <= r <= 1.0:
        raise ValueError("sampling ratio must be within 0.0-1.0")
    _rate = r


class _Experiment:
    """What set_experiment returns: the destination as far as it is known
    here (the sidecar looks the name up, or creates it, when it uploads)."""

    __slots__ = ("name", "experiment_id")

    def __init__(self, name: str | None, experiment_id: str | None):
        self.name = name
        self.experiment_id = experiment_id

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, experiment_id={self.experiment_id!r})"


def set_experiment(experiment_name: str | None = None,
                   experiment_id: str | None = None) -> _Experiment:
    """Destination MLflow experiment of new traces, by name (created by the
    sidecar when missing) or by id: exactly one, as MLflow's set_experiment."""
    global _experiment, _experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise ValueError("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    if experiment_name is not None:
        if not str(experiment_name):
            raise ValueError("experiment_name must be a non-empty string")
        _experiment, _experiment_id = str(experiment_name), None
    else:
        _experiment, _experiment_id = None, str(experiment_id)
    return _Experiment(_experiment, _experiment_id)


class MlflowExperiment:
    """A trace destination: an MLflow experiment by id (MLflow's
    MlflowExperiment / MlflowExperimentLocation)."""

    def __init__(self, experiment_id: str | None = None):
        self.experiment_id = experiment_id

    def __repr__(self) -> str:
        return f"MlflowExperiment(experiment_id={self.experiment_id!r})"


def set_destination(destination: Any, *, context_local: bool = False) -> None:
    """Send new traces to this experiment (an object with `experiment_id`:
    ours, or MLflow's MlflowExperiment / MlflowExperimentLocation).
    context_local: only in this context (thread, asyncio task)."""
    eid = getattr(destination, "experiment_id", None)
    if not eid:
        raise ValueError(f"unsupported trace destination {destination!r}: ringflow sends "
                         "traces to MLflow experiments (want one with an experiment_id)")
    if context_local:
        _dest_ctx.set(str(eid))
        return
    global _experiment, _experiment_id
    _experiment, _experiment_id = None, str(eid)


def reset() -> None:
    """Back to the environment's configuration: enablement, sampling, the
    experiment (RINGFLOW_TRACE_EXPERIMENT, else the sidecar's), no
    destination; the last active trace is forgotten."""
    global _enabled, _rate, _experiment, _experiment_id, _last_root_id
    _enabled = not _env.trace_disabled()
    _rate = _env_rate()
    _experiment = _env.get(_env.TRACE_EXPERIMENT)
    _experiment_id = None
    _dest_ctx.set(None)
    _last_root_id = None
    _last_local.__dict__.clear()


def configure(enabled: bool | None = None, sampling_ratio: float | None = None,
              experiment: str | None = None) -> None:
    if enabled is not None:
        enable() if enabled else disable()
    if sampling_ratio is not None:
        set_sampling_ratio(sampling_ratio)
    if experiment is not None:
        set_experiment(experiment)


# ---- spans -----------------------------------------------------------------

FUNCTION_NAME = "mlflow.spanFunctionName"
LOG_LEVEL = "mlflow.spanLogLevel"
START_TIME_NS = "mlflow.spanStartTimeNs"
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _level(level: Any) -> int:
    """MLflow's SpanLogLevel (an enum, its name or its number) as its number."""
    v = getattr(level, "value", level)
    if isinstance(v, str):
        if v.strip().upper() not in _LEVELS:
            raise ValueError(f"Invalid SpanLogLevel name {level!r}. Expected one of "
                             f"{list(_LEVELS)}.")
        return _LEVELS[v.strip().upper()]
    return int(v)


def _with_level(attrs: dict | None, level: Any) -> dict | None:
    return attrs if level is None else dict(attrs or {}, **{LOG_LEVEL: _level(level)})
DESCRIPTION = "mlflow.spanDescription"
CHAT_TOOLS = "mlflow.chat.tools"
CHUNK_EVENT = "mlflow.chunk.item.{index}"
CHUNK_VALUE = "mlflow.chunk.value"


class NoOpSpan:
    """The span of a trace that is not recorded: every method does nothing."""

    __slots__ = ()
    trace_id = request_id = span_id = parent_id = name = span_type = None
    inputs = outputs = None
    attributes: dict = {}

    def set_inputs(self, inputs: Any) -> None: pass
    def set_outputs(self, outputs: Any) -> None: pass
    def set_attribute(self, key: str, value: Any) -> None: pass
    def set_log_level(self, level: Any) -> None: pass
    def set_attributes(self, attributes: dict) -> None: pass
    def get_attribute(self, key: str) -> Any: return None
    def add_event(self, event: SpanEvent) -> None: pass
    def record_exception(self, exception: BaseException | str) -> None: pass
    def set_status(self, status: Any) -> None: pass
    def end(self, outputs: Any = None, attributes: dict | None = None, status: Any = None,
            end_time_ns: int | None = None) -> None: pass

    def __bool__(self) -> bool:  # `if span:` tells a recorded span from this
        return False


NO_OP_SPAN = NoOpSpan()
_UNSET = object()

# The current span: a LiveSpan, NO_OP_SPAN inside an unrecorded trace, or None.
_current: contextvars.ContextVar[Any] = contextvars.ContextVar("ringflow_span", default=None)


class LiveSpan(_ringflow.SpanBase):
    """A recorded span (MLflow's LiveSpan).  Its state lives in the C base
    (made by Producer.span_start); the end record is written by _finish()."""

    __slots__ = ()

    # ids as MLflow shows them
    @property
    def trace_id(self) -> str:
        return "tr-" + self._tid.hex()

    request_id = trace_id

    @property
    def span_id(self) -> str:
        return format(self._sid, "016x")

    @property
    def parent_id(self) -> str | None:
        return format(self._psid, "016x") if self._psid else None

    @property
    def inputs(self) -> Any:
        return self._new_inputs if self._has_new_inputs else self._inputs

    @property
    def outputs(self) -> Any:
        return self._outputs if self._has_outputs else None

    @property
    def attributes(self) -> dict:
        return dict(self._attrs or {})

    def get_attribute(self, key: str) -> Any:
        return (self._attrs or {}).get(key)

    def set_inputs(self, inputs: Any) -> None:
        self._new_inputs = inputs
        self._has_new_inputs = True

    def set_outputs(self, outputs: Any) -> None:
        self._outputs = outputs
        self._has_outputs = True

    def set_attribute(self, key: str, value: Any) -> None:
        if self._attrs is None:
            self._attrs = {}
        self._attrs[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        if self._attrs is None:
            self._attrs = {}
        self._attrs.update(attributes)

    def set_log_level(self, level: Any) -> None:
        """The span's severity (MLflow's SpanLogLevel or its name); unset,
        the sidecar derives it from the span type as MLflow's client does."""
        self.set_attribute(LOG_LEVEL, _level(level))

    def set_status(self, status: Any) -> None:
        if isinstance(status, SpanStatus) or hasattr(status, "status_code"):
            self._status = _status_name(status.status_code)
            self._msg = getattr(status, "description", "") or None
        else:
            self._status = _status_name(status)

    def add_event(self, event: SpanEvent | str, attributes: dict | None = None) -> None:
        """Written at once.  Takes a SpanEvent (ours or MLflow's), or a name
        and attributes."""
        if isinstance(event, str):
            event = SpanEvent(event, attributes=attributes)
        try:
            self._event(str(event.name), dict(event.attributes) if event.attributes else None,
                        int(event.timestamp) if event.timestamp else None)
        except Exception:  # noqa: BLE001 - never raise into the caller
            _producer.count_error()

    def record_exception(self, exception: BaseException | str) -> None:
        """The OTel "exception" event, and status ERROR "<type>: <message>"."""
        if isinstance(exception, str):
            exception = Exception(exception)
        if not isinstance(exception, BaseException):
            raise TypeError("The `exception` parameter must be an Exception instance or a string.")
        self.add_event(SpanEvent.from_exception(exception))
        self._status = "ERROR"
        self._msg = f"{type(exception).__name__}: {exception}"

    def end(self, outputs: Any = None, attributes: dict | None = None, status: Any = None,
            end_time_ns: int | None = None) -> None:
        """Write the end record (once): outputs (None: those set before),
        attributes merged, status (default OK), end time (default now)."""
        if attributes:
            self.set_attributes(attributes)
        if status is not None:
            self.set_status(status)
        if outputs is not None:
            self.set_outputs(outputs)
        try:
            self._finish(None, False, int(end_time_ns) if end_time_ns else None)
        except Exception:  # noqa: BLE001
            _producer.count_error()

    def __repr__(self) -> str:
        return f"LiveSpan(name={self.name!r}, trace_id={self.trace_id}, span_id={self.span_id})"


def _root_recorded(rate: float | None = None) -> bool:
    """Enablement and sampling, decided once per trace at its root."""
    r = _rate if rate is None else rate
    return _enabled and (r >= 1.0 or random.random() < r)


_last_root_id: str | None = None


class _Last(__import__("threading").local):
    trace_id: str | None = None


_last_local = _Last()


def _trace_fields(span: LiveSpan, fields: dict[str, Any]) -> None:
    """A trace_update (27) of span's trace with these fields."""
    fields["trace_id"] = span._tid
    if not _producer.emit(_ringflow.EV_TRACE_UPDATE, fields):
        _producer.count_error()


def _new_span(parent: LiveSpan | None, name: str, span_type: str, inputs: Any,
              attributes: dict | None, start_ns: int | None = None,
              experiment_id: str | None = None):
    """A recorded span: child of `parent`, or a new trace's root (None)."""
    try:
        if parent is not None:
            return parent._prod.span_start(LiveSpan, parent, name, span_type, inputs,
                                           attributes, None, start_ns)
        p = _producer._producer or _producer.producer()
        if p is None:
            return NO_OP_SPAN
        global _started_sidecar, _last_root_id
        if not _started_sidecar:
            _started_sidecar = True
            if _env.get(_env.TRACKING_URI):
                _producer.autostart_sidecar()
        eid = experiment_id or _dest_ctx.get() or _experiment_id
        root = p.span_start(LiveSpan, None, name, span_type, inputs, attributes,
                            None if eid else _experiment, start_ns)
        if eid:
            _trace_fields(root, {"experiment_id": eid})
        _last_root_id = _last_local.trace_id = root.trace_id
        return root
    except Exception:  # noqa: BLE001 - a bad name or type must not break the caller
        _producer.count_error()
        return NO_OP_SPAN


class _Scope:
    """One span's scope, the single helper behind start_span and the four
    decorator variants (sync, async, generator, async generator): open()
    starts the span (or a no-op one in an unrecorded trace), activate() /
    deactivate() make it the current span around the code that runs inside
    it (a generator's body only while it runs), close() ends it with the
    exception or the outputs.

    `with scope:` runs one piece of that code (a call, or one step of a
    generator) with the span current; an exception leaving it ends the span:
    a call's with the exception; a stream's (items not None) with the items
    when it is the generator's end (StopIteration, StopAsyncIteration), else
    with the error.  The exception goes on to the caller."""

    __slots__ = ("span", "_tok", "items", "reducer")

    def __init__(self, stream: bool = False,
                 reducer: Callable[[list], Any] | None = None) -> None:
        self.span: Any = NO_OP_SPAN
        self._tok = None
        self.items: list | None = [] if stream else None  # a stream's items so far
        self.reducer = reducer

    def __enter__(self) -> "_Scope":
        self.activate()
        return self

    def __exit__(self, etype, exc, tb) -> bool:
        self.deactivate()
        if exc is None:
            return False
        if self.items is None:
            self.close(exc)
        elif isinstance(exc, (StopIteration, StopAsyncIteration)):
            self.close_stream(self.items, None, self.reducer)
        else:
            self.close_stream(self.items, exc, None)
        return False

    def open(self, name: str, span_type: str, attributes: dict | None, inputs: Any = None,
             rate: float | None = None, experiment_id: str | None = None) -> Any:
        parent = _current.get()
        if parent is NO_OP_SPAN or (parent is None and not _root_recorded(rate)):
            self.span = NO_OP_SPAN
        else:
            self.span = _new_span(parent, name, span_type, inputs, attributes,
                                  experiment_id=experiment_id)
        return self.span

    def activate(self) -> None:
        self._tok = _current.set(self.span)

    def deactivate(self) -> None:
        if self._tok is not None:
            _current.reset(self._tok)
            self._tok = None

    def close(self, exc: BaseException | None = None, result: Any = _UNSET) -> None:
        """An exception: recorded (event, status ERROR).  A result: the
        outputs unless set inside the span already (as MLflow's decorator)."""
        span = self.span
        if span is NO_OP_SPAN:
            return
        try:
            if exc is not None:
                span.record_exception(exc)
            if result is _UNSET or span._has_outputs:
                span._finish(None, False)
            else:
                span._finish(result, True)
        except Exception:  # noqa: BLE001
            _producer.count_error()

    def close_stream(self, items: list, exc: BaseException | None,
                     reducer: Callable[[list], Any] | None) -> None:
        """A generator's span: an error as MLflow's (exception event, status
        ERROR), else the items (or reducer(items)) as outputs."""
        span = self.span
        if span is NO_OP_SPAN:
            return
        if exc is not None:
            span.add_event(SpanEvent.from_exception(exc))
            span.end(status=SpanStatusCode.ERROR)
            return
        out: Any = items
        if reducer is not None:
            try:
                out = reducer(items)
            except Exception:  # noqa: BLE001 - as MLflow: the items stay the outputs
                log.debug("ringflow: output_reducer failed", exc_info=True)
        self.close(result=out)

    def chunk(self, item: Any) -> None:
        """A stream item: kept for the outputs, and MLflow's chunk event."""
        index = len(self.items)  # type: ignore[arg-type]
        self.items.append(item)  # type: ignore[union-attr]
        if self.span is NO_OP_SPAN:
            return
        try:
            value = json.dumps(item, default=str)
        except Exception:  # noqa: BLE001
            value = str(item)
        self.span.add_event(SpanEvent(CHUNK_EVENT.format(index=index),
                                      attributes={CHUNK_VALUE: value}))

    def stopped(self) -> None:
        """The consumer stopped a stream early: the items so far are its outputs."""
        self.close_stream(self.items, None, self.reducer)  # type: ignore[arg-type]


class start_span:  # noqa: N801 - a context manager named like MLflow's function
    """`with start_span(name, span_type, attributes) as span:` a child of the
    current span (or a new trace's root), current inside the block.  An
    exception leaving the block is recorded on the span and re-raised."""

    __slots__ = ("_name", "_type", "_attrs", "_eid", "_run", "_scope")

    def __init__(self, name: str = "span", span_type: str | None = SpanType.UNKNOWN,
                 attributes: dict[str, Any] | None = None, trace_destination: Any = None,
                 log_level: Any = None, run_id: str | None = None, links: Any = None,
                 description: str | None = None):
        self._name = name
        self._type = span_type or SpanType.UNKNOWN
        self._attrs = _with_level(dict(attributes) if attributes else None, log_level)
        if description is not None:
            self._attrs = dict(self._attrs or {}, **{DESCRIPTION: description})
        self._eid = getattr(trace_destination, "experiment_id", None)
        self._run = run_id
        self._scope = _Scope()

    def __enter__(self):
        sc = self._scope
        span = sc.open(self._name, self._type, self._attrs, experiment_id=self._eid)
        if self._run and span is not NO_OP_SPAN and span.parent_id is None:
            _trace_fields(span, {"metadata": {"mlflow.sourceRun": str(self._run)}})
        sc.activate()
        return span

    def __exit__(self, etype, exc, tb):
        self._scope.deactivate()
        self._scope.close(exc)
        return False


def start_span_no_context(name: str, span_type: str = SpanType.UNKNOWN,
                          parent_span: LiveSpan | NoOpSpan | None = None, inputs: Any = None,
                          attributes: dict[str, Any] | None = None,
                          tags: dict[str, str] | None = None,
                          metadata: dict[str, str] | None = None,
                          experiment_id: str | None = None, start_time_ns: int | None = None,
                          log_level: Any = None, links: Any = None,
                          description: str | None = None) -> LiveSpan | NoOpSpan:
    """A span with an explicit parent (None: a new trace), never made current;
    end it with span.end(), from any thread.  For callback code."""
    if parent_span is NO_OP_SPAN or isinstance(parent_span, NoOpSpan) or \
            (parent_span is None and not _root_recorded()):
        return NO_OP_SPAN
    if description is not None:
        attributes = dict(attributes or {}, **{DESCRIPTION: description})
    attributes = _with_level(attributes, log_level)
    if start_time_ns is not None:  # as MLflow: an explicit start time is kept as an attribute
        attributes = dict(attributes or {}, **{START_TIME_NS: int(start_time_ns)})
    span = _new_span(parent_span, name, span_type or SpanType.UNKNOWN, inputs, attributes,
                     start_time_ns, experiment_id)
    if (tags or metadata) and span is not NO_OP_SPAN:
        _update(span, tags, metadata)
    return span


def get_last_active_trace_id(thread_local: bool = False) -> str | None:
    """The id of the last trace started (in this thread with thread_local);
    recorded traces only."""
    return _last_local.trace_id if thread_local else _last_root_id


def get_current_active_span() -> LiveSpan | None:
    s = _current.get()
    return s if isinstance(s, LiveSpan) else None


def get_active_trace_id() -> str | None:
    s = get_current_active_span()
    return s.trace_id if s is not None else None


def _update(span: LiveSpan, tags: dict | None, metadata: dict | None) -> None:
    try:
        span._update({str(k): str(v) for k, v in tags.items()} if tags else None,
                     {str(k): str(v) for k, v in metadata.items()} if metadata else None)
    except Exception:  # noqa: BLE001
        _producer.count_error()


def update_current_trace(tags: dict[str, Any] | None = None,
                         metadata: dict[str, Any] | None = None,
                         client_request_id: str | None = None,
                         request_preview: str | None = None,
                         response_preview: str | None = None,
                         state: Any = None, model_id: str | None = None,
                         session_id: str | None = None, user: str | None = None) -> None:
    """Add tags and metadata to the current trace (values become strings),
    as MLflow's: session_id / user / model_id are metadata keys; the
    client request id, previews and state go on the trace's info."""
    if request_preview is not None and not isinstance(request_preview, str):
        raise ValueError("The `request_preview` parameter must be a string.")
    if response_preview is not None and not isinstance(response_preview, str):
        raise ValueError("The `response_preview` parameter must be a string.")
    st = None
    if state is not None:
        st = str(getattr(state, "value", state))
        if st not in ("OK", "ERROR"):
            raise ValueError(f"State must be either 'OK' or 'ERROR', but got '{state}'.")
    span = get_current_active_span()
    if span is None:
        if _current.get() is None:
            log.warning("No active trace found. Please create a span using `start_span` or "
                        "`@trace` before calling `update_current_trace`.")
        return
    meta = dict(metadata or {})
    if session_id is not None:
        meta["mlflow.trace.session"] = session_id
    if user is not None:
        meta["mlflow.trace.user"] = user
    if model_id:
        meta["mlflow.modelId"] = model_id
    if tags or meta:
        _update(span, tags, meta)
    info: dict[str, Any] = {}
    if client_request_id is not None:
        info["client_request_id"] = str(client_request_id)
    if request_preview:
        info["request_preview"] = request_preview
    if response_preview:
        info["response_preview"] = response_preview
    if st:
        info["state"] = st
    if info:
        _trace_fields(span, {"info": info})


def _trace_tag(trace_id: str, key: str, value: str | None) -> None:
    f: dict[str, Any] = {"trace_id": str(trace_id), "key": str(key)}
    if value is not None:
        f["value"] = str(value)
    if not _producer.emit(_ringflow.EV_TRACE_TAG, f):
        _producer.count_error()


def set_trace_tag(trace_id: str, key: str, value: str) -> None:
    """Set a tag on a trace, open or already in MLflow (MLflow's set_trace_tag)."""
    if trace_id is None:
        return  # an unrecorded trace's (a no-op span's) id
    _trace_tag(trace_id, key, value)


def delete_trace_tag(trace_id: str, key: str) -> None:
    """Delete a tag of a trace, open or already in MLflow."""
    if trace_id is None:
        return
    _trace_tag(trace_id, key, None)


def set_span_chat_tools(span: Any, tools: list) -> None:
    """The tools an LLM span could call, in OpenAI's chat tool format
    (MLflow's mlflow.tracing.set_span_chat_tools)."""
    if not isinstance(tools, list):
        raise TypeError(f"Invalid tools type {type(tools)}. Expected a list of ChatTool.")
    out = []
    for t in tools:
        if hasattr(t, "model_dump"):
            t = t.model_dump(exclude_unset=True)
        if not isinstance(t, dict) or t.get("type") != "function" or \
                not isinstance(t.get("function"), dict) or "name" not in t["function"]:
            raise ValueError(f"Invalid chat tool {t!r}: want "
                             "{'type': 'function', 'function': {'name': ..., ...}}")
        out.append(t)
    span.set_attribute(CHAT_TOOLS, out)


# ---- the decorator (ringflow/_trace_decorator.py) -------------------------------
from ._trace_decorator import trace  # noqa: E402 - it uses the names above


from ._trace_io import (  # noqa: E402 - they use the names above
    add_trace, flush_trace_async_logging, get_trace, log_trace, search_traces,
)

# ---- MLflow's module paths, for code that spells them out ----------------------------
# `import ringflow.tracing as mlflow` then mlflow.entities.SpanType,
# mlflow.tracing.set_span_chat_tools, from mlflow.entities import Feedback, ...

def _submodule(name: str, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(f"{__name__}.{name}")
    mod.__dict__.update(attrs)
    sys.modules[mod.__name__] = mod
    return mod


entities = _submodule(
    "entities", SpanType=SpanType, SpanEvent=SpanEvent, SpanStatus=SpanStatus,
    SpanStatusCode=SpanStatusCode, LiveSpan=LiveSpan, NoOpSpan=NoOpSpan, Assessment=Assessment,
    AssessmentSource=AssessmentSource, AssessmentSourceType=AssessmentSourceType,
    AssessmentError=AssessmentError, Feedback=Feedback, Expectation=Expectation,
    MlflowExperimentLocation=MlflowExperiment)
destination = _submodule("destination", MlflowExperiment=MlflowExperiment)
tracing = sys.modules[__name__]  # mlflow.tracing.<name> is this module's <name>
