"""Every environment variable the ringflow package reads, and how it reads them.

ringflow's own on/off switches follow one rule, the same in the C library
(ringbuf/rf_env.h, rf_env_flag) and in README.md's Configuration table:

    unset, empty or only blanks     the variable's default
    1, true, yes, on  (any case)    on
    0, false, no, off (any case)    off
    anything else                   on (and a warning here, once)

Setting a switch is asking for it, so only the off words turn one off:
RINGFLOW_DISABLED=0 leaves ringflow on, RINGFLOW_DISABLED=y turns it off.
The variables ringflow shares with inspect-mlflow keep inspect-mlflow's
rules (inspect_tracing(), log_artifacts()), so an eval configured for one
behaves the same under the other.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping

log = logging.getLogger("ringflow")

# ---- shared with MLflow / inspect-mlflow ----------------------------------
TRACKING_URI = "MLFLOW_TRACKING_URI"  # the hook is on when set
EXPERIMENT_NAME = "MLFLOW_EXPERIMENT_NAME"  # default "inspect_ai"
INSPECT_TRACING = "MLFLOW_INSPECT_TRACING"  # inspect-mlflow: on iff "true" (any case)
INSPECT_TRACE_MODE = "MLFLOW_INSPECT_TRACE_MODE"
LOG_ARTIFACTS = ("INSPECT_MLFLOW_LOG_ARTIFACTS", "MLFLOW_INSPECT_LOG_ARTIFACTS")  # first wins
TRACE_SAMPLING_RATIO = "MLFLOW_TRACE_SAMPLING_RATIO"
# What the sidecar reads to authenticate to MLflow and verify its TLS: the
# set that picks the ring (_sidecar.ring_name()).
CREDENTIALS = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
)

# ---- ringflow's own -------------------------------------------------------
DISABLED = "RINGFLOW_DISABLED"  # switch, default off: the hook and tracing
TRACE_DISABLED = "RINGFLOW_TRACE_DISABLED"  # switch, default off: tracing only
LOG_MODEL_API = "RINGFLOW_LOG_MODEL_API"  # switch, default off
AUTOSTART = "RINGFLOW_AUTOSTART"  # switch, default on
TRACE_SAMPLE_RATE = "RINGFLOW_TRACE_SAMPLE_RATE"  # wins over MLFLOW_TRACE_SAMPLING_RATIO
TRACE_EXPERIMENT = "RINGFLOW_TRACE_EXPERIMENT"
RING = "RINGFLOW_RING"
SPOOL_DIR = "RINGFLOW_SPOOL_DIR"
SIDECAR = "RINGFLOW_SIDECAR"
IDLE_EXIT_MS = "RINGFLOW_IDLE_EXIT_MS"

ON_WORDS = ("1", "true", "yes", "on")
OFF_WORDS = ("0", "false", "no", "off")
_BLANKS = " \t\n\r\v\f"  # as rf_env.c trims them
_warned: set[tuple[str, str]] = set()


def get(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value, or None when unset or empty."""
    return (os.environ if environ is None else environ).get(name) or None


def flag_value(value: str | None, default: bool, name: str = "") -> bool:
    """A switch's value under ringflow's rule (module docstring)."""
    w = (value or "").strip(_BLANKS).lower()
    if not w:
        return default
    if w in ON_WORDS:
        return True
    if w in OFF_WORDS:
        return False
    if (name, value) not in _warned:
        _warned.add((name, value))  # type: ignore[arg-type]
        log.warning("ringflow: %s=%r is none of %s (on) or %s (off): taken as on",
                    name or "a switch", value, "/".join(ON_WORDS), "/".join(OFF_WORDS))
    return True


def flag(name: str, default: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    """The switch `name` under ringflow's rule."""
    return flag_value((os.environ if environ is None else environ).get(name), default, name)


def disabled() -> bool:
    """RINGFLOW_DISABLED: the hook and the tracing API are off."""
    return flag(DISABLED)


def trace_disabled() -> bool:
    """The tracing API is off: RINGFLOW_DISABLED or RINGFLOW_TRACE_DISABLED."""
    return flag(DISABLED) or flag(TRACE_DISABLED)


def inspect_tracing() -> bool:
    """MLFLOW_INSPECT_TRACING as inspect-mlflow reads it: on iff "true" (any case)."""
    return os.environ.get(INSPECT_TRACING, "").strip().lower() == "true"


def log_artifacts() -> bool:
    """INSPECT_MLFLOW_LOG_ARTIFACTS (else MLFLOW_INSPECT_LOG_ARTIFACTS) as
    inspect-mlflow reads it, and the sidecar too: anything but "false" is on."""
    art = get(LOG_ARTIFACTS[0]) or get(LOG_ARTIFACTS[1]) or ""
    return art.lower() != "false"
