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
import functools
import inspect
import logging
import os
import random
import time
import traceback
from typing import Any, Callable

from . import _producer, _ringflow

log = logging.getLogger("ringflow")

__all__ = [
    "LiveSpan", "NoOpSpan", "SpanEvent", "SpanStatus", "SpanStatusCode", "SpanType",
    "configure", "disable", "enable", "get_active_trace_id", "get_current_active_span",
    "get_last_active_trace_id",
    "is_enabled", "set_experiment", "set_sampling_ratio", "start_span",
    "start_span_no_context", "trace", "update_current_trace",
]


class SpanType:
    """Span types MLflow knows; any other string is kept as a custom type."""

    LLM = "LLM"
    CHAT_MODEL = "CHAT_MODEL"
    CHAIN = "CHAIN"
    AGENT = "AGENT"
    TOOL = "TOOL"
    RETRIEVER = "RETRIEVER"
    EMBEDDING = "EMBEDDING"
    RERANKER = "RERANKER"
    PARSER = "PARSER"
    UNKNOWN = "UNKNOWN"
    # also in MLflow's SpanType
    EVALUATOR = "EVALUATOR"
    GUARDRAIL = "GUARDRAIL"
    MEMORY = "MEMORY"
    TASK = "TASK"
    WORKFLOW = "WORKFLOW"


class SpanStatusCode:
    OK = "OK"
    ERROR = "ERROR"
    UNSET = "UNSET"
    CANCELLED = "CANCELLED"  # ringflow's: exported to MLflow as ERROR with this text
    TIMEOUT = "TIMEOUT"


_STATUSES = frozenset(("OK", "ERROR", "UNSET", "CANCELLED", "TIMEOUT"))


class SpanStatus:
    """A status code and its description (MLflow's SpanStatus)."""

    __slots__ = ("status_code", "description")

    def __init__(self, status_code: str, description: str = ""):
        self.status_code = _status_name(status_code)
        self.description = description


class SpanEvent:
    """A point in time inside a span (MLflow's SpanEvent)."""

    __slots__ = ("name", "timestamp", "attributes")

    def __init__(self, name: str, timestamp: int | None = None,
                 attributes: dict[str, Any] | None = None):
        self.name = name
        self.timestamp = timestamp if timestamp is not None else time.time_ns()
        self.attributes = attributes or {}


def _status_name(status: Any) -> str:
    s = getattr(status, "value", status)  # enums (e.g. mlflow's SpanStatusCode)
    s = str(s).upper()
    if s.startswith("STATUS_CODE_"):
        s = s[len("STATUS_CODE_"):]
    if s not in _STATUSES:
        raise ValueError(f"unknown span status {status!r} (want one of {sorted(_STATUSES)})")
    return s


# ---- configuration ---------------------------------------------------------

def _env_rate() -> float:
    for name in ("RINGFLOW_TRACE_SAMPLE_RATE", "MLFLOW_TRACE_SAMPLING_RATIO"):
        v = os.environ.get(name)
        if v:
            try:
                r = float(v)
                if 0.0 <= r <= 1.0:
                    return r
            except ValueError:
                pass
            log.warning("ringflow: ignoring %s=%r (want 0.0-1.0)", name, v)
    return 1.0


def _env_off() -> bool:
    off = os.environ.get("RINGFLOW_TRACE_DISABLED", "")
    return bool(os.environ.get("RINGFLOW_DISABLED")) or (off not in ("", "0"))


_enabled = not _env_off()
_rate = _env_rate()
_experiment: str | None = os.environ.get("RINGFLOW_TRACE_EXPERIMENT") or None
_started_sidecar = False


def enable() -> None:
    """Record new traces (the default unless RINGFLOW_DISABLED is set)."""
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


def set_experiment(name: str | None) -> None:
    """Destination MLflow experiment of new traces (None: the sidecar's)."""
    global _experiment
    _experiment = name or None


def configure(enabled: bool | None = None, sampling_ratio: float | None = None,
              experiment: str | None = None) -> None:
    if enabled is not None:
        enable() if enabled else disable()
    if sampling_ratio is not None:
        set_sampling_ratio(sampling_ratio)
    if experiment is not None:
        set_experiment(experiment)


# ---- spans -----------------------------------------------------------------

class NoOpSpan:
    """The span of a trace that is not recorded: every method does nothing."""

    __slots__ = ()
    trace_id = request_id = span_id = parent_id = name = span_type = None
    inputs = outputs = None
    attributes: dict = {}

    def set_inputs(self, inputs: Any) -> None: pass
    def set_outputs(self, outputs: Any) -> None: pass
    def set_attribute(self, key: str, value: Any) -> None: pass
    def set_attributes(self, attributes: dict) -> None: pass
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
    """A recorded span (MLflow's LiveSpan, as far as it goes).  Its state
    lives in the C base (made by Producer.span_start); the end record is
    written by _finish()."""

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

    def set_status(self, status: Any) -> None:
        if isinstance(status, SpanStatus):
            self._status, self._msg = status.status_code, status.description or None
        else:
            self._status = _status_name(status)

    def add_event(self, event: SpanEvent | str, attributes: dict | None = None) -> None:
        """Written at once.  Takes a SpanEvent, or a name and attributes."""
        if not isinstance(event, SpanEvent):
            event = SpanEvent(str(event), attributes=attributes)
        try:
            self._event(event.name, event.attributes or None, event.timestamp)
        except Exception:  # noqa: BLE001 - never raise into the caller
            _producer.count_error()

    def record_exception(self, exception: BaseException | str) -> None:
        """The OTel "exception" event, and status ERROR unless one was set."""
        if isinstance(exception, BaseException):
            etype = type(exception).__name__
            msg = str(exception)
            stack = "".join(traceback.format_exception(type(exception), exception,
                                                       exception.__traceback__))
        else:
            etype, msg, stack = "Exception", str(exception), ""
        self.add_event(SpanEvent("exception", attributes={
            "exception.type": etype, "exception.message": msg, "exception.stacktrace": stack}))
        if self._status is None:
            self._status = "ERROR"
            self._msg = f"{etype}: {msg}"

    def end(self, outputs: Any = _UNSET, attributes: dict | None = None, status: Any = None,
            end_time_ns: int | None = None) -> None:
        """Write the end record (once; the time is now, end_time_ns is ignored)."""
        if attributes:
            self.set_attributes(attributes)
        if status is not None:
            self.set_status(status)
        try:
            if outputs is _UNSET:
                self._finish(None, False)
            else:
                self._finish(outputs, True)
        except Exception:  # noqa: BLE001
            _producer.count_error()

    def __repr__(self) -> str:
        return f"LiveSpan(name={self.name!r}, trace_id={self.trace_id}, span_id={self.span_id})"


def _root_recorded() -> bool:
    """Enablement and sampling, decided once per trace at its root."""
    return _enabled and (_rate >= 1.0 or random.random() < _rate)


def _new_span(parent: LiveSpan | None, name: str, span_type: str, inputs: Any,
              attributes: dict | None):
    """A recorded span: child of `parent`, or a new trace's root (None)."""
    try:
        if parent is not None:
            return parent._prod.span_start(LiveSpan, parent, name, span_type, inputs,
                                           attributes, None)
        p = _producer._producer or _producer.producer()
        if p is None:
            return NO_OP_SPAN
        global _started_sidecar
        if not _started_sidecar:
            _started_sidecar = True
            if os.environ.get("MLFLOW_TRACKING_URI"):
                _producer.autostart_sidecar()
        global _last_root
        _last_root = p.span_start(LiveSpan, None, name, span_type, inputs, attributes,
                                  _experiment)
        return _last_root
    except Exception:  # noqa: BLE001 - a bad name or type must not break the caller
        _producer.count_error()
        return NO_OP_SPAN


class start_span:  # noqa: N801 - a context manager named like MLflow's function
    """`with start_span(name, span_type, attributes) as span:` a child of the
    current span (or a new trace's root), current inside the block.  An
    exception leaving the block is recorded on the span and re-raised."""

    __slots__ = ("_name", "_type", "_attrs", "_span", "_token")

    def __init__(self, name: str = "span", span_type: str | None = SpanType.UNKNOWN,
                 attributes: dict[str, Any] | None = None, **_mlflow_only: Any):
        self._name = name
        self._type = span_type or SpanType.UNKNOWN
        self._attrs = attributes
        self._span: Any = None
        self._token = None

    def __enter__(self):
        parent = _current.get()
        if parent is NO_OP_SPAN:
            self._span = NO_OP_SPAN
            return NO_OP_SPAN
        if parent is None and not _root_recorded():
            self._span = NO_OP_SPAN
            self._token = _current.set(NO_OP_SPAN)
            return NO_OP_SPAN
        self._span = span = _new_span(parent, self._name, self._type, None, self._attrs)
        self._token = _current.set(span)
        return span

    def __exit__(self, etype, exc, tb):
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        span = self._span
        if span is not NO_OP_SPAN:
            if exc is not None:
                span.record_exception(exc)
            span.end()
        return False


def start_span_no_context(name: str, span_type: str = SpanType.UNKNOWN,
                          parent_span: LiveSpan | NoOpSpan | None = None, inputs: Any = None,
                          attributes: dict[str, Any] | None = None,
                          tags: dict[str, str] | None = None,
                          metadata: dict[str, str] | None = None,
                          **_mlflow_only: Any) -> LiveSpan | NoOpSpan:
    """A span with an explicit parent (None: a new trace), never made current;
    end it with span.end(), from any thread.  For callback code."""
    if parent_span is NO_OP_SPAN or (parent_span is None and not _root_recorded()):
        return NO_OP_SPAN
    span = _new_span(parent_span, name, span_type, inputs, attributes)
    if (tags or metadata) and span is not NO_OP_SPAN:
        _update(span, tags, metadata)
    return span


_last_root: LiveSpan | None = None


def get_last_active_trace_id() -> str | None:
    """The id of the last trace this process started (recorded ones only)."""
    return _last_root.trace_id if _last_root is not None else None


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
                         session_id: str | None = None, user: str | None = None,
                         **_mlflow_only: Any) -> None:
    """Add tags and metadata to the current trace (values become strings).
    session_id and user become MLflow's mlflow.trace.session / .user metadata."""
    span = get_current_active_span()
    if span is None:
        if _current.get() is None:
            log.warning("ringflow: update_current_trace() outside a trace does nothing")
        return
    meta = dict(metadata or {})
    if session_id is not None:
        meta["mlflow.trace.session"] = session_id
    if user is not None:
        meta["mlflow.trace.user"] = user
    if client_request_id is not None:
        meta["mlflow.trace.client_request_id"] = client_request_id
    _update(span, tags, meta)


# ---- the decorator -----------------------------------------------------------

class _Args:
    """Binds a call's arguments to parameter names, as inspect's bind() +
    apply_defaults() would, without their cost per call."""

    __slots__ = ("names", "varargs", "varkw", "kwnames", "defaults", "ok")

    def __init__(self, fn: Callable):
        self.names: tuple = ()
        self.varargs = self.varkw = None
        self.kwnames: frozenset = frozenset()
        self.defaults: dict = {}
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature
            self.ok = False
            return
        self.ok = True
        pos, kw = [], []
        P = inspect.Parameter
        for prm in sig.parameters.values():
            if prm.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
                pos.append(prm.name)
            elif prm.kind == P.VAR_POSITIONAL:
                self.varargs = prm.name
            elif prm.kind == P.VAR_KEYWORD:
                self.varkw = prm.name
            if prm.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY):
                kw.append(prm.name)
            if prm.default is not P.empty:
                self.defaults[prm.name] = prm.default
        self.names = tuple(pos)
        self.kwnames = frozenset(kw)

    def bind(self, args: tuple, kwargs: dict) -> dict:
        if not self.ok:
            d = {"args": list(args)} if args else {}
            d.update(kwargs)
            return d
        names = self.names
        d = dict(zip(names, args))
        if len(args) > len(names) and self.varargs:
            d[self.varargs] = args[len(names):]
        if kwargs:
            extra = None
            for k, v in kwargs.items():
                if k in self.kwnames:
                    d[k] = v
                elif self.varkw:
                    if extra is None:
                        extra = d[self.varkw] = {}
                    extra[k] = v
        if self.defaults and len(d) < len(self.defaults) + len(names):
            for k, v in self.defaults.items():
                if k not in d:
                    d[k] = v
        d.pop("self", None)  # as MLflow: a method's object is not an input
        return d


def trace(func: Callable | None = None, name: str | None = None,
          span_type: str = SpanType.UNKNOWN, attributes: dict[str, Any] | None = None,
          output_reducer: Callable[[list], Any] | None = None, **_mlflow_only: Any):
    """Decorate (or wrap) a function so each call is a span: named after the
    function, inputs = its bound arguments, outputs = its return value, an
    exception recorded and re-raised.  Sync and async functions, generators
    (outputs: the items, or output_reducer(items)).  Works on third-party
    callables: `traced = ringflow.tracing.trace(client.create, span_type="LLM")`."""

    def deco(fn: Callable) -> Callable:
        span_name = name or getattr(fn, "__name__", None) or type(fn).__name__
        binder = _Args(fn)
        attrs = attributes
        stype = span_type or SpanType.UNKNOWN
        current = _current

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args, **kwargs):
                parent = current.get()
                if parent is NO_OP_SPAN:
                    return await fn(*args, **kwargs)
                if parent is None and not _root_recorded():
                    token = current.set(NO_OP_SPAN)
                    try:
                        return await fn(*args, **kwargs)
                    finally:
                        current.reset(token)
                span = _new_span(parent, span_name, stype, binder.bind(args, kwargs), attrs)
                token = current.set(span)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as e:
                    current.reset(token)
                    if span is not NO_OP_SPAN:
                        span.record_exception(e)
                        span.end()
                    raise
                current.reset(token)
                if span is not NO_OP_SPAN:
                    span._finish(result, True)
                return result

            return async_wrapper

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                parent = current.get()
                if parent is NO_OP_SPAN or (parent is None and not _root_recorded()):
                    # Unrecorded: children must not start traces of their own.
                    gen = fn(*args, **kwargs)
                    while True:
                        token = current.set(NO_OP_SPAN)
                        try:
                            item = next(gen)
                        except StopIteration as stop:
                            return stop.value
                        finally:
                            current.reset(token)
                        yield item
                span = _new_span(parent, span_name, stype, binder.bind(args, kwargs), attrs)
                items: list = []
                gen = fn(*args, **kwargs)
                try:
                    while True:
                        token = current.set(span)
                        try:
                            item = next(gen)
                        except StopIteration:
                            break
                        finally:
                            current.reset(token)
                        items.append(item)
                        yield item
                except BaseException as e:
                    if span is not NO_OP_SPAN:
                        if not isinstance(e, GeneratorExit):
                            span.record_exception(e)
                        span.end(items)
                    raise
                if span is not NO_OP_SPAN:
                    try:
                        out = output_reducer(items) if output_reducer else items
                    except Exception as e:  # noqa: BLE001
                        out = f"[output_reducer failed: {e!r}]"
                    span.end(out)

            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            parent = current.get()
            if parent is NO_OP_SPAN:
                return fn(*args, **kwargs)
            if parent is None and not _root_recorded():
                token = current.set(NO_OP_SPAN)
                try:
                    return fn(*args, **kwargs)
                finally:
                    current.reset(token)
            span = _new_span(parent, span_name, stype, binder.bind(args, kwargs), attrs)
            token = current.set(span)
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:
                current.reset(token)
                if span is not NO_OP_SPAN:
                    span.record_exception(e)
                    span.end()
                raise
            current.reset(token)
            if span is not NO_OP_SPAN:
                span._finish(result, True)
            return result

        return wrapper

    if func is not None:
        return deco(func)
    return deco
