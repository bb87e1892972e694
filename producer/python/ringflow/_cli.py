"""Console scripts `ringflowd` and `ringflow-dump`: exec the programs this
installation built (setup.py puts them in ringflow/bin/)."""

from __future__ import annotations

import os
import sys

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")


def program(name: str) -> str | None:
    """Path of this installation's `name`, or None if it was not built."""
    path = os.path.join(BIN, name)
    return path if os.access(path, os.X_OK) else None


def _exec(name: str) -> None:
    path = program(name)
    if path is None:
        sys.stderr.write(f"{name}: not found in {BIN} (the ringflow package was installed "
                         "without its programs; reinstall it with pip from the repository or sdist)\n")
        raise SystemExit(127)
    os.execv(path, [name, *sys.argv[1:]])


def ringflowd() -> None:
    _exec("ringflowd")


def ringflow_dump() -> None:
    _exec("ringflow-dump")
