"""ringflow: LLM-evaluation telemetry to MLflow through a shared-memory ring.

Installing this package registers an Inspect AI hook (entry point group
`inspect_ai`); it is active when MLFLOW_TRACKING_URI is set and
RINGFLOW_DISABLED is not.  `ringflowd` (the sidecar) uploads to MLflow.
"""

from ._producer import emit, producer, stats
from ._ringflow import SCHEMA_VERSION, Producer, event_name

__version__ = "0.1.0"

__all__ = ["Producer", "SCHEMA_VERSION", "emit", "event_name", "producer", "stats"]
