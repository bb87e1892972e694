"""Finding, checking and starting the sidecar (`ringflowd`) from the hook.

Runs inside the user's eval: nothing raises, and every problem the user must
act on is ONE warning on the "ringflow" logger (Inspect shows warnings at its
default level; INFO is hidden), per process and problem, saying what to do.

- The binary: $RINGFLOW_SIDECAR if set (an explicit override), else the
  ringflowd this installation built (ringflow/bin/, see setup.py), else
  `ringflowd` on PATH.
- Autostart: `ringflowd --detach --idle-exit-ms N`, which returns once the
  daemon serves the ring (exit 0), or with the daemon's own start error.
  Checked at every run start and run end: a sidecar that exited (idle, or
  killed) between two evals is started again, and what waited in the ring
  goes up then.
- Version: a sidecar already running is asked its version
  (`/proc/<pid>/exe --version`); one from another ringflow release gets a
  warning saying how to restart it.
- Configuration checks shared with ringflowd (tracking URI, ring name).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
from typing import Any
from urllib.parse import urlsplit

from . import _env

log = logging.getLogger("ringflow")

BIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
IDLE_EXIT_MS_DEFAULT = 600_000  # an autostarted sidecar exits after 10 idle minutes
START_TIMEOUT_S = 15.0  # `ringflowd --detach` reports readiness well within this

_lock = threading.Lock()
_warned: set[str] = set()
_version_checked: set[int] = set()  # consumer pids already compared

_FIX_URI = ("ringflowd talks to an MLflow tracking server over its REST API: set "
            "MLFLOW_TRACKING_URI to its http:// or https:// address")


def warn_once(key: str, msg: str, *args: object) -> None:
    """A warning the user must act on, once per process and `key`."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(msg, *args)


def uri_problem(uri: str) -> str | None:
    """Why ringflowd cannot serve `uri`, or None (as rf_config_check_uri)."""
    m = re.match(r"^([A-Za-z0-9+.\-]+):", uri)
    if uri.lower().startswith("databricks"):
        return f"tracking URI '{uri}': Databricks workspaces are not supported; {_FIX_URI}"
    if not m:
        return (f"tracking URI '{uri}' is a path, not a server address; {_FIX_URI} (run "
                "`mlflow server --backend-store-uri ...` over that store)")
    scheme = m.group(1).lower()
    if scheme in ("http", "https"):
        rest = uri[m.end():]
        if not rest.startswith("//") or rest[2:3] in ("", "/", ":"):
            return f"tracking URI '{uri}' has no host; expected {m.group(1)}://HOST[:PORT]"
        return None
    if scheme.startswith(("sqlite", "file", "postgresql", "mysql", "mssql")):
        return (f"tracking URI '{uri}' is a local store, not a server; {_FIX_URI} (run "
                f"`mlflow server --backend-store-uri {uri}` and point at it)")
    return f"tracking URI '{uri}': unknown scheme '{m.group(1)}'; {_FIX_URI}"


def ring_name(environ: Any = None) -> str | None:
    """The ring for this process.  RINGFLOW_RING when set (with its leading
    '/', warned about once if missing); else the default ring (None) when the
    environment holds no MLflow credentials; else one ring per credential set,
    /ringflow-<uid>-c<first 8 hex of sha256 over the sorted NAME=value pairs,
    userinfo of MLFLOW_TRACKING_URI included>.  A sidecar autostarted for that
    ring inherits exactly these credentials, and the credentials themselves
    never cross the ring (docs/DESIGN.md "Destinations")."""
    env = os.environ if environ is None else environ
    name = _env.get(_env.RING, env)
    if name:
        if not name.startswith("/"):
            warn_once("ring:" + name,
                      "ringflow: RINGFLOW_RING=%r does not start with '/' (a ring is a POSIX "
                      "shared memory name: '/name', no other '/'); using %r", name, "/" + name)
            name = "/" + name
        return name
    pairs = [f"{k}={env[k]}" for k in _env.CREDENTIALS if env.get(k)]
    try:
        netloc = urlsplit(_env.get(_env.TRACKING_URI, env) or "").netloc
    except ValueError:
        netloc = ""
    if "@" in netloc:
        pairs.append(f"MLFLOW_TRACKING_URI.userinfo={netloc.rpartition('@')[0]}")
    if not pairs:
        return None
    tag = hashlib.sha256("\n".join(sorted(pairs)).encode()).hexdigest()[:8]
    return f"/ringflow-{os.geteuid()}-c{tag}"


def own_binary() -> str | None:
    path = os.path.join(BIN_DIR, "ringflowd")
    return path if os.access(path, os.X_OK) else None


def sidecar_binary() -> str | None:
    """ringflowd to start: $RINGFLOW_SIDECAR, else this installation's, else on PATH."""
    explicit = _env.get(_env.SIDECAR)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return own_binary() or shutil.which("ringflowd")


def _version() -> str:
    from . import __version__

    return __version__


def check_version(pid: int) -> None:
    """Warn (once per sidecar) when the one serving the ring is another release."""
    _version_checked.add(pid)
    if pid <= 0:
        return
    exe = f"/proc/{pid}/exe"
    try:
        target = os.readlink(exe)
    except OSError:
        return  # another user's, or gone: nothing to compare
    own = own_binary()
    if own and target == os.path.realpath(own):
        return  # this very file: this very version
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=5,
                             stdin=subprocess.DEVNULL)
        theirs = out.stdout.split()[-1] if out.returncode == 0 and out.stdout.split() else "unknown"
    except Exception:  # noqa: BLE001
        theirs = "unknown"
    if theirs != _version():
        warn_once(f"version:{pid}",
                  "ringflow: the sidecar serving this ring (ringflowd pid %d, %s, version %s) is "
                  "not this ringflow's (version %s): stop it with `kill %d` (it flushes what it "
                  "holds first) and the next eval starts this installation's",
                  pid, target, theirs, _version(), pid)


def consumer_pid(binary: str | None) -> int:
    """The pid serving the ring, from `ringflowd status --json` (0 if unknown)."""
    if not binary:
        return 0
    try:
        out = subprocess.run([binary, "status", "--json", "--interval", "0"], capture_output=True,
                             text=True, timeout=5, stdin=subprocess.DEVNULL)
        return int(json.loads(out.stdout).get("ring_stats", {}).get("consumer_pid", 0))
    except Exception:  # noqa: BLE001
        return 0


def autostart(producer) -> str | None:
    """Start ringflowd detached if no consumer serves the ring.

    Returns "disabled", "running", "started", "missing", or None on a failed
    start (warned once).  Never raises.
    """
    try:
        if not _env.flag(_env.AUTOSTART, default=True):
            return "disabled"
        if producer is None:
            return None
        binary = sidecar_binary()
        if producer.consumer_alive():
            if not _version_checked:  # once per process: the first sidecar found running
                check_version(consumer_pid(own_binary() or binary))
            return "running"
        with _lock:
            if producer.consumer_alive():  # another thread of this process started one
                return "running"
            if binary is None:
                explicit = _env.get(_env.SIDECAR)
                where = (f"RINGFLOW_SIDECAR={explicit!r} is not an executable file" if explicit
                         else "this installation has no ringflow/bin/ringflowd and none is on PATH")
                _warn_locked("missing",
                             "ringflow: no sidecar serves the ring and none can be started (%s): "
                             "this eval's telemetry waits in the ring and spool until one runs. "
                             "Reinstall ringflow with pip (it builds ringflowd), or start "
                             "`ringflowd --detach` yourself", where)
                return "missing"
            args = [binary, "--detach"]
            # A ring picked by credential set is named to the sidecar (which
            # inherits those credentials); RINGFLOW_RING it reads itself.
            ring = None if _env.get(_env.RING) else ring_name()
            if ring:
                args += ["--ring", ring]
            if not _env.get(_env.IDLE_EXIT_MS):
                args += ["--idle-exit-ms", str(IDLE_EXIT_MS_DEFAULT)]
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
            try:
                _, stderr = p.communicate(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # Not subprocess.run: after a kill it would read the pipe to
                # its end, which the still-starting daemon holds open.
                p.kill()
                p.wait()
                p.stderr.close()
                _warn_locked("start-timeout",
                             "ringflow: `%s --detach` did not report ready within %.0f s; see its "
                             "log (ringflowd.log in the spool directory) and `ringflowd status`",
                             binary, START_TIMEOUT_S)
                return None
            if p.returncode != 0:
                err = stderr.decode("utf-8", "replace").strip().replace("\n", "; ")
                _warn_locked("start-failed",
                             "ringflow: could not start the sidecar (`%s --detach` exited %d: %s); "
                             "this eval's telemetry waits in the ring and spool. Fix that, then "
                             "run `ringflowd --detach` (or the next eval starts it)",
                             binary, p.returncode, err or "no message")
                return None
            _version_checked.add(0)  # ours: no need to ask its version
            return "started"
    except Exception as e:  # noqa: BLE001
        warn_once("start-error", "ringflow: could not start ringflowd: %s", e)
        return None


def _warn_locked(key: str, msg: str, *args: object) -> None:
    """warn_once for callers holding _lock."""
    if key in _warned:
        return
    _warned.add(key)
    log.warning(msg, *args)
