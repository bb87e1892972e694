"""Secrets the sidecar knows stay out of what it shows (issue 15, item 12):
a password inside MLFLOW_TRACKING_URI is never in its log, its stats file or
`ringflowd status` (text and JSON), even once a request to that URI failed
(the failing URL is the last error)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from rf_rawring import RawRing
from test_bad_input import good_run
from test_sidecar import RINGFLOWD, Sidecar, cleanup


def status(ring: str, spool: Path, *extra: str) -> str:
    p = subprocess.run([str(RINGFLOWD), "status", "--interval", "0", "--ring", ring,
                        "--spool-dir", str(spool), *extra], capture_output=True, text=True,
                       timeout=30)
    return p.stdout + p.stderr


def test_password_in_tracking_uri_is_never_shown(tmp_path):
    password = "pw-rfcanary-URI-90f3"
    uri = f"http://alice:{password}@127.0.0.1:9"  # nothing listens: every request fails
    ring = f"/rf-pytest-uripw-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(uri, ring, spool, "uri-exp")
    try:
        w = RawRing(ring)
        assert w.rc == 0, w.error
        for t, payload in good_run("uri-run", "uri-eval", time.time() - 10):
            assert w.write(t, payload) == 0
        w.close()
        deadline = time.time() + 60  # until a failed request is the last error
        while True:
            js = json.loads(status(ring, spool, "--json"))
            if "127.0.0.1:9" in (js.get("sidecar") or {}).get("last_error", ""):
                break
            assert time.time() < deadline, js
            time.sleep(0.2)
        text = status(ring, spool)
        stats = b"".join(p.read_bytes() for p in spool.glob("*.stats"))
        sc.proc.kill()
        sc.proc.wait()
        log = sc.log.read_text()
    finally:
        cleanup(sc, ring)
    assert "alice:***@127.0.0.1:9" in log and "alice:***@127.0.0.1:9" in text, (log, text)
    assert "alice:***@127.0.0.1:9" in js["sidecar"]["tracking_uri"], js
    for where, what in [("log", log), ("status", text), ("status --json", json.dumps(js)),
                        ("stats file", stats.decode(errors="replace"))]:
        assert password not in what, where
