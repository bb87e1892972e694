"""ringflow: LLM-evaluation telemetry to MLflow through a shared-memory ring.

Installing this package registers an Inspect AI hook (entry point group
`inspect_ai`); it is active when MLFLOW_TRACKING_URI is set and
RINGFLOW_DISABLED is not on (every variable and the on/off rule:
ringflow/_env.py).  `ringflowd` (the sidecar) uploads to MLflow.

`ringflow.tracing` (also re-exported here: trace, start_span,
update_current_trace, SpanType, ...) sends MLflow traces from any program,
with MLflow's fluent tracing API names.
"""

from ._producer import emit, producer, stats
from ._ringflow import SCHEMA_VERSION, Producer, event_name
from . import tracing
from .tracing import (
    SpanEvent,
    SpanStatus,
    SpanStatusCode,
    SpanType,
    get_active_trace_id,
    get_current_active_span,
    start_span,
    trace,
    update_current_trace,
)

def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ringflow")  # set from the repository's VERSION file at build time
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


__version__ = _package_version()

__all__ = ["Producer", "SCHEMA_VERSION", "SpanEvent", "SpanStatus", "SpanStatusCode", "SpanType",
           "emit", "event_name", "get_active_trace_id", "get_current_active_span", "producer",
           "start_span", "stats", "trace", "tracing", "update_current_trace"]
