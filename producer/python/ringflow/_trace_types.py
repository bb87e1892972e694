"""The value types of ringflow.tracing (MLflow's SpanType, SpanStatus,
SpanEvent, ...) and the decorator's argument binder."""

from __future__ import annotations

import inspect
import time
import traceback
from typing import Any, Callable


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

    @classmethod
    def from_exception(cls, exception: BaseException) -> "SpanEvent":
        """The OTel "exception" event of an exception (as MLflow's)."""
        try:
            stack = "".join(traceback.format_exception(
                type(exception), exception, exception.__traceback__)).strip()
        except Exception:  # noqa: BLE001
            stack = repr(exception)
        return cls("exception", attributes={
            "exception.message": str(exception), "exception.type": type(exception).__name__,
            "exception.stacktrace": stack})


def _status_name(status: Any) -> str:
    s = getattr(status, "value", status)  # enums (e.g. mlflow's SpanStatusCode)
    s = str(s).upper()
    if s.startswith("STATUS_CODE_"):
        s = s[len("STATUS_CODE_"):]
    if s not in _STATUSES:
        raise ValueError(f"unknown span status {status!r} (want one of {sorted(_STATUSES)})")
    return s


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


