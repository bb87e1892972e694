"""ringflow.tracing's decorator (MLflow's @trace): each call of the wrapped
function is a span, for sync and async functions, generators and async
generators, all on one span scope (tracing._Scope)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from ._trace_types import _Args
from .tracing import (
    DESCRIPTION, FUNCTION_NAME, LOG_LEVEL, NO_OP_SPAN, SpanType, _current, _level, _new_span,
    _root_recorded, _Scope,
)


def trace(func: Callable | None = None, name: str | None = None,
          span_type: str = SpanType.UNKNOWN, attributes: dict[str, Any] | None = None,
          output_reducer: Callable[[list], Any] | None = None, trace_destination: Any = None,
          sampling_ratio_override: float | None = None, log_level: Any = None,
          links: Any = None, description: str | None = None):
    """Decorate (or wrap) a function so each call is a span: named after the
    function, inputs = its bound arguments, outputs = its return value (unless
    set inside), an exception recorded and re-raised.  Sync and async
    functions, generators and async generators (outputs: the items, or
    output_reducer(items); one chunk event per item), classmethods and
    staticmethods.  Works on third-party callables:
    `traced = ringflow.tracing.trace(client.create, span_type="LLM")`.
    links are accepted and not recorded."""
    if sampling_ratio_override is not None and not 0.0 <= sampling_ratio_override <= 1.0:
        raise ValueError("sampling_ratio_override must be between 0.0 and 1.0, got "
                         f"{sampling_ratio_override}")
    eid = getattr(trace_destination, "experiment_id", None)
    rate = sampling_ratio_override

    def deco(fn: Callable) -> Callable:
        wrap_as = type(fn) if isinstance(fn, (classmethod, staticmethod)) else None
        if wrap_as is not None:
            fn = fn.__func__
        span_name = name or getattr(fn, "__name__", None) or type(fn).__name__
        binder = _Args(fn)
        stype = span_type or SpanType.UNKNOWN
        attrs = dict(attributes) if attributes else {}
        if description is not None:
            attrs[DESCRIPTION] = description
        if log_level is not None:
            attrs[LOG_LEVEL] = _level(log_level)
        is_gen, is_agen = inspect.isgeneratorfunction(fn), inspect.isasyncgenfunction(fn)
        if output_reducer is not None and not (is_gen or is_agen):
            raise ValueError("The output_reducer argument is only supported for generator "
                             "functions.")
        if not (is_gen or is_agen):  # as MLflow: the function's name as an attribute
            attrs[FUNCTION_NAME] = getattr(fn, "__name__", span_name)
        attrs_or_none = attrs or None

        def opened(args: tuple, kwargs: dict, stream: bool = False) -> _Scope:
            sc = _Scope(stream, output_reducer)
            parent = _current.get()
            # Arguments are bound only for a span that is recorded.
            if parent is NO_OP_SPAN or (parent is None and not _root_recorded(rate)):
                sc.span = NO_OP_SPAN
            else:
                sc.span = _new_span(parent, span_name, stype, binder.bind(args, kwargs),
                                    attrs_or_none, experiment_id=eid)
            return sc

        # Each call, and each step of a generator, runs `with sc:` (current
        # span; an exception, or a generator's end, closes the span).
        if is_agen:
            @functools.wraps(fn)
            async def wrapper(*args, **kwargs):
                sc = opened(args, kwargs, stream=True)
                agen = fn(*args, **kwargs)
                while True:
                    try:
                        with sc:
                            item = await agen.__anext__()
                    except StopAsyncIteration:
                        return
                    sc.chunk(item)
                    try:
                        yield item
                    except GeneratorExit:  # the consumer stopped early
                        sc.stopped()
                        await agen.aclose()
                        raise
        elif is_gen:
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                sc = opened(args, kwargs, stream=True)
                gen = fn(*args, **kwargs)
                while True:
                    try:
                        with sc:
                            item = next(gen)
                    except StopIteration as stop:
                        return stop.value
                    sc.chunk(item)
                    try:
                        yield item
                    except GeneratorExit:  # the consumer stopped early
                        sc.stopped()
                        gen.close()
                        raise
        elif inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapper(*args, **kwargs):
                with opened(args, kwargs) as sc:
                    result = await fn(*args, **kwargs)
                sc.close(result=result)
                return result
        else:
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with opened(args, kwargs) as sc:
                    result = fn(*args, **kwargs)
                sc.close(result=result)
                return result
        try:
            wrapper.__signature__ = inspect.signature(fn)
        except (TypeError, ValueError):
            pass
        return wrap_as(wrapper) if wrap_as is not None else wrapper

    if func is not None:
        return deco(func)
    return deco
