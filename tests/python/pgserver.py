"""A throwaway PostgreSQL cluster for tests: Debian's postgresql binaries,
initdb into a temp dir owned by the unprivileged `postgres` user (initdb
refuses to run as root), listening on a loopback port (and its own socket
dir), trust auth for local connections only.  stop() shuts it down; the
data dir goes with the test's tmp_path."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class PgServer:
    """The cluster lives in its own /tmp/rf-pg-* dir, not under pytest's
    tmp_path: pytest re-tightens /tmp/pytest-of-<user> to 0700 when any
    session starts, which would lock the postgres user out mid-test."""

    def __init__(self, port: int):
        self.bindir = pg_bindir()
        if self.bindir is None:
            pytest.fail("Debian's postgresql is not installed (scripts/install-deps.sh installs it)")
        self.root, self.port = Path(tempfile.mkdtemp(prefix="rf-pg-")), port
        self.data = self.root / "pgdata"
        self.sock = self.root / "pgsock"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.started = False

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        full = list(cmd)
        if self.user:
            full = ["runuser", "-u", self.user, "--", *full]
        return subprocess.run(full, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> "PgServer":
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            for d in (self.root, self.sock):
                os.chown(d, pw.pw_uid, pw.pw_gid)
        r = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--no-sync", check=False)
        if r.returncode:
            pytest.fail(f"initdb failed: {r.stderr[-2000:]}")
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200")
        r = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                      str(self.root / "pg.log"), "-o", opts, "-w", "-t", "60", "start", check=False)
        if r.returncode:
            log = (self.root / "pg.log").read_text(errors="replace") if (self.root / "pg.log").exists() else ""
            pytest.fail(f"pg_ctl start failed: {r.stderr[-2000:]}\n{log[-2000:]}")
        self.started = True
        self._run(str(self.bindir / "createdb"), "-h", str(self.sock), "-p", str(self.port),
                  "-U", "postgres", "mlflow")
        return self

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mlflow"

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop", check=False)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
