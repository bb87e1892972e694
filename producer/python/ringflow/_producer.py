"""The process-wide producer: one ring attachment, opened lazily, never raising.

Everything here runs inside the user's program (an Inspect eval), so no
function raises into it and nothing waits on I/O: a record that cannot be
written is counted (stats()) and the program goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
from typing import Any
from urllib.parse import urlsplit

from . import _ringflow

log = logging.getLogger("ringflow")

_lock = threading.Lock()
_producer: _ringflow.Producer | None = None
_open_failed: str | None = None
_dropped = 0  # records not written because the producer could not open

# Environment variables whose values are secrets: registered with the encoder
# so no string containing them ever reaches the ring.
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def _register_secrets(p: _ringflow.Producer) -> None:
    for name, value in os.environ.items():
        if value and len(value) >= 8 and _SECRET_ENV.search(name):
            p.add_secret(value)


# What the sidecar reads to authenticate to MLflow and to verify its TLS
# (sidecar/bin/ringflowd.c): the set that picks the ring (ring_name()).
_CREDENTIAL_ENV = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
)


def ring_name(environ: Any = None) -> str | None:
    """The ring for this process: RINGFLOW_RING when set; else the default
    ring (None) when the environment holds no MLflow credentials; else one ring
    per credential set, /ringflow-<uid>-c<first 8 hex of sha256 over the sorted
    NAME=value pairs, userinfo of MLFLOW_TRACKING_URI included>.  A sidecar
    autostarted for that ring inherits exactly these credentials, and the
    credentials themselves never cross the ring (docs/DESIGN.md "Destinations")."""
    env = os.environ if environ is None else environ
    explicit = env.get("RINGFLOW_RING")
    if explicit:
        return explicit
    pairs = [f"{k}={env[k]}" for k in _CREDENTIAL_ENV if env.get(k)]
    uri = env.get("MLFLOW_TRACKING_URI") or ""
    try:
        netloc = urlsplit(uri).netloc
    except ValueError:
        netloc = ""
    if "@" in netloc:
        pairs.append(f"MLFLOW_TRACKING_URI.userinfo={netloc.rpartition('@')[0]}")
    if not pairs:
        return None
    tag = hashlib.sha256("\n".join(sorted(pairs)).encode()).hexdigest()[:8]
    return f"/ringflow-{os.geteuid()}-c{tag}"


def producer() -> _ringflow.Producer | None:
    """The shared producer, or None if the ring cannot be opened (reported once)."""
    global _producer, _open_failed
    p = _producer
    if p is not None or _open_failed is not None:
        return p
    with _lock:
        if _producer is None and _open_failed is None:
            try:
                p = _ringflow.Producer(
                    ring=ring_name(),
                    spool_dir=os.environ.get("RINGFLOW_SPOOL_DIR") or None,
                )
                _register_secrets(p)
                _producer = p
            except Exception as e:  # noqa: BLE001 - never raise into the eval
                _open_failed = str(e)
                log.warning("ringflow disabled: cannot open the ring: %s", e)
        return _producer


def emit(rtype: int, fields: dict[str, Any]) -> bool:
    """Write one record; False (counted) if it could not be written."""
    global _dropped
    p = _producer or producer()
    if p is None:
        _dropped += 1
        return False
    try:
        return p.emit(rtype, fields)
    except Exception:  # noqa: BLE001
        _dropped += 1
        return False


_trace_errors = 0  # tracing calls that failed before reaching the encoder


def count_error() -> None:
    global _trace_errors
    _trace_errors += 1


def stats() -> dict[str, Any]:
    p = _producer
    s = p.stats() if p is not None else {}
    s["not_opened"] = _dropped
    s["trace_errors"] = _trace_errors
    if _open_failed:
        s["open_error"] = _open_failed
    return s


def sidecar_binary() -> str | None:
    """ringflowd to start: $RINGFLOW_SIDECAR, else on PATH."""
    explicit = os.environ.get("RINGFLOW_SIDECAR")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("ringflowd")


_autostart_done = False


def autostart_sidecar() -> str | None:
    """Start ringflowd detached if no consumer serves the ring.

    Returns what was done ("running", "started", "disabled", "missing") or None
    on error.  Never raises.  The sidecar detaches itself from our session so
    it outlives the eval and drains what the eval left in the ring.
    """
    global _autostart_done
    try:
        if os.environ.get("RINGFLOW_AUTOSTART", "1").lower() in ("0", "false", "no"):
            return "disabled"
        p = producer()
        if p is None:
            return None
        if p.consumer_alive():
            return "running"
        with _lock:
            if _autostart_done:
                return "started"
            binary = sidecar_binary()
            if binary is None:
                log.info("ringflow: no ringflowd found; records wait in the ring and spool")
                return "missing"
            # A ring picked by credential set is named to the sidecar (which
            # inherits those credentials); RINGFLOW_RING it reads itself.
            ring = None if os.environ.get("RINGFLOW_RING") else ring_name()
            subprocess.Popen(
                [binary, "--detach", *(("--ring", ring) if ring else ())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
            _autostart_done = True
            return "started"
    except Exception as e:  # noqa: BLE001
        log.warning("ringflow: could not start ringflowd: %s", e)
        return None
