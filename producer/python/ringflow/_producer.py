"""The process-wide producer: one ring attachment, opened lazily, never raising.

Everything here runs inside the user's program (an Inspect eval), so no
function raises into it and nothing waits on I/O: a record that cannot be
written is counted (stats()) and the program goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from . import _env, _ringflow, _sidecar

log = logging.getLogger("ringflow")

_lock = threading.Lock()
_producer: _ringflow.Producer | None = None
_open_failed: str | None = None
_dropped = 0  # records not written because the producer could not open

# The values of secret environment variables are registered with the encoder
# by the C library itself when the producer opens (rf_secret_env_name(): the
# same rule for every producer), so no string containing them reaches the ring.

# The ring for this process (RINGFLOW_RING, else one per credential set).
ring_name = _sidecar.ring_name


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
                    ring=_sidecar.ring_name(),
                    spool_dir=_env.get(_env.SPOOL_DIR),
                )
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


def flush() -> None:
    """End of a burst: spilled records join the ring's order now (never raises)."""
    p = _producer
    if p is not None:
        try:
            p.flush()
        except Exception:  # noqa: BLE001
            pass


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
    """ringflowd to start (_sidecar.sidecar_binary)."""
    return _sidecar.sidecar_binary()


def autostart_sidecar() -> str | None:
    """Start ringflowd detached if no consumer serves the ring (_sidecar.autostart).

    Returns "running", "started", "disabled", "missing", or None on error
    (warned once).  Never raises.  The sidecar detaches itself from our
    session so it outlives the eval and drains what the eval left in the ring.
    """
    return _sidecar.autostart(producer())
