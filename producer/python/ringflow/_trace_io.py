"""ringflow.tracing's whole-trace functions (MLflow's log_trace, add_trace),
waiting for the sidecar (flush_trace_async_logging) and the read side
(get_trace, search_traces: MLflow's client when mlflow is installed)."""

from __future__ import annotations

import logging
from typing import Any

from . import _producer
from . import tracing as _t
from .tracing import (
    LiveSpan, SpanEvent, SpanStatus, SpanType, _status_name, _update,
    get_current_active_span, start_span_no_context,
)

log = logging.getLogger("ringflow")


# ---- whole traces --------------------------------------------------------------

def log_trace(name: str = "Task", request: Any = None, response: Any = None,
              intermediate_outputs: dict[str, Any] | None = None,
              attributes: dict[str, Any] | None = None, tags: dict[str, str] | None = None,
              start_time_ms: int | None = None, execution_time_ms: int | None = None) -> str | None:
    """A trace of one root span from a (request, response) pair (MLflow's
    log_trace); returns its id (None when not recorded)."""
    attrs = dict(attributes or {})
    if intermediate_outputs:
        attrs["mlflow.trace.intermediate_outputs"] = intermediate_outputs
    span = start_span_no_context(name, inputs=request, attributes=attrs or None, tags=tags,
                                 start_time_ns=start_time_ms * 1_000_000 if start_time_ms
                                 else None)
    end = (start_time_ms + execution_time_ms) * 1_000_000 \
        if start_time_ms and execution_time_ms else None
    span.end(outputs=response, end_time_ns=end)
    return span.trace_id


_INTERNAL_ATTRS = ("mlflow.traceRequestId", "mlflow.spanType", "mlflow.spanInputs",
                   "mlflow.spanOutputs")


def add_trace(trace: Any, target: LiveSpan | None = None) -> None:
    """Copy a finished trace (MLflow's Trace, or its dict form) under a span
    of the current trace (MLflow's add_trace): under `target`, else the
    current span, else a new root "Remote Trace <name>"."""
    if not _t._enabled:
        return
    if isinstance(trace, dict):
        try:
            from mlflow.entities import Trace
        except ImportError as e:
            raise ImportError("add_trace() with a dict needs the mlflow package to read it "
                              "(pip install mlflow); pass a Trace object instead") from e
        trace = Trace.from_dict(trace)
    spans = list(getattr(getattr(trace, "data", None), "spans", None) or [])
    state = str(getattr(getattr(trace.info, "state", None), "value",
                        getattr(trace.info, "state", "")))
    if state not in ("OK", "ERROR") or not spans:
        raise ValueError(f"The trace must be ended before adding it to another trace. "
                         f"Current state: {state}.")

    def attrs_of(s):
        return {k: v for k, v in (s.attributes or {}).items() if k not in _INTERNAL_ATTRS}

    root = None
    parent = target or get_current_active_span()
    if parent is None:
        r0 = spans[0]
        root = start_span_no_context(f"Remote Trace <{r0.name}>", inputs=r0.inputs,
                                     attributes=attrs_of(r0) or None,
                                     start_time_ns=r0.start_time_ns - 1)
        parent = root
    if not isinstance(parent, LiveSpan):
        return
    made: dict[str, LiveSpan] = {}
    for s in spans:
        p = made.get(s.parent_id) if s.parent_id else parent
        if p is None:
            raise ValueError(f"Span with ID {s.parent_id} not found. Please make sure the spans "
                             "in the trace are ordered correctly i.e. the parent span comes "
                             "before its children.")
        c = start_span_no_context(s.name, s.span_type or SpanType.UNKNOWN, parent_span=p,
                                  inputs=s.inputs, attributes=attrs_of(s) or None,
                                  start_time_ns=s.start_time_ns)
        if not isinstance(c, LiveSpan):
            continue
        for ev in s.events or []:
            c.add_event(SpanEvent(ev.name, ev.timestamp, dict(ev.attributes or {})))
        st = s.status
        c.end(outputs=s.outputs,
              status=SpanStatus(_status_name(st.status_code), st.description or ""),
              end_time_ns=s.end_time_ns)
        made[s.span_id] = c
    tags = {k: v for k, v in (trace.info.tags or {}).items() if not k.startswith("mlflow.")}
    if tags:
        _update(parent, tags, None)
    if root is not None:
        r0 = spans[0]
        root.end(outputs=r0.outputs, status=state, end_time_ns=r0.end_time_ns)


# ---- waiting for the sidecar, and reading traces back -----------------------------

def flush_trace_async_logging(terminate: bool = False, *, timeout_s: float = 60.0) -> bool:
    """Wait until every trace record written so far is in MLflow: runs
    `ringflowd flush` (the sidecar's own completion check) for at most
    timeout_s seconds.  False (with a warning) when it could not tell:
    no ringflowd binary, no sidecar serving the ring, or the timeout; True
    with a warning when everything is in but the sidecar counted losses
    (`ringflowd flush` exit 4, e.g. MLflow refused a call)."""
    import subprocess
    binary = _producer.sidecar_binary()
    if binary is None:
        log.warning("ringflow: flush: no ringflowd binary (RINGFLOW_SIDECAR or PATH)")
        return False
    try:
        p = subprocess.run([binary, "flush", "--quiet", "--timeout", str(float(timeout_s))],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=float(timeout_s) + 30)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("ringflow: flush failed: %s", e)
        return False
    if p.returncode == 4:  # all in, but the sidecar counted losses: said, not hidden
        log.warning("ringflow: flush: done, but %s", p.stderr.strip() or p.stdout.strip()
                    or "the sidecar lost data (ringflowd status)")
        return True
    if p.returncode != 0:
        why = {1: "timed out", 2: "no sidecar serves the ring"}.get(p.returncode, p.stderr.strip())
        log.warning("ringflow: flush: %s", why)
        return False
    return True


def _mlflow(what: str):
    try:
        import mlflow
    except ImportError as e:
        raise ImportError(f"ringflow.tracing.{what}() reads traces back from MLflow and needs "
                          "the mlflow package (pip install mlflow); recording traces does "
                          "not") from e
    return mlflow


def get_trace(trace_id: str, silent: bool = False, flush: bool = False) -> Any:
    """The trace as MLflow stores it (MLflow's client; MLFLOW_TRACKING_URI),
    or None.  flush: if not found, wait for the sidecar and read again."""
    m = _mlflow("get_trace")
    t = m.get_trace(trace_id, silent=True)
    if t is None and flush and flush_trace_async_logging():
        t = m.get_trace(trace_id, silent=True)
    if t is None and not silent:
        log.warning("ringflow: trace %s not found in MLflow%s", trace_id,
                    "" if flush else " (flush=True waits for the sidecar)")
    return t


def search_traces(experiment_ids: list[str] | None = None, filter_string: str | None = None,
                  max_results: int | None = None, order_by: list[str] | None = None,
                  extract_fields: list[str] | None = None, run_id: str | None = None,
                  return_type: str | None = None, model_id: str | None = None,
                  sql_warehouse_id: str | None = None, include_spans: bool = True,
                  locations: list[str] | None = None, flush: bool = False) -> Any:
    """MLflow's search_traces; without experiments, locations or run, in the
    experiment set here (set_experiment / set_destination).  flush: wait
    for the sidecar first."""
    m = _mlflow("search_traces")
    if flush:
        flush_trace_async_logging()
    if not (experiment_ids or locations or run_id):
        eid = _t._dest_ctx.get() or _t._experiment_id
        if eid is None and _t._experiment:
            e = m.MlflowClient().get_experiment_by_name(_t._experiment)
            eid = e.experiment_id if e else None
        if eid is not None:
            locations = [eid]
    kw: dict[str, Any] = {k: v for k, v in dict(
        experiment_ids=experiment_ids, filter_string=filter_string, max_results=max_results,
        order_by=order_by, extract_fields=extract_fields, run_id=run_id,
        return_type=return_type, model_id=model_id, sql_warehouse_id=sql_warehouse_id,
        locations=locations).items() if v is not None}
    return m.search_traces(include_spans=include_spans, **kw)


