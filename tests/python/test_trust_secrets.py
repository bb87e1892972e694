"""Secrets stay out of what ringflow uploads and shows (issue 15, items 10
and 12): a password inside MLFLOW_TRACKING_URI is never in the sidecar's log,
its stats file or `ringflowd status` (text and JSON), even once a request to
that URI failed (the failing URL is the last error); the values of secret
environment variables are redacted for every producer (a C one, not only
the Python hook), and the sidecar's own (MLFLOW_TRACKING_TOKEN) never go out
either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rf_rawring import RawRing
from test_bad_input import good_run
from test_sidecar import RINGFLOWD, Sidecar, cleanup, exp_name, wait_finished  # noqa: F401


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
    # The start line shows the URI as given, password masked; status shows
    # the destination the sidecar serves (its userinfo is kept with the
    # credentials, not in the URI) or the masked form: never the password.
    assert "alice:***@127.0.0.1:9" in log, log
    assert "127.0.0.1:9" in text, text
    assert "127.0.0.1:9" in js["sidecar"]["tracking_uri"], js
    for where, what in [("log", log), ("status", text), ("status --json", json.dumps(js)),
                        ("stats file", stats.decode(errors="replace"))]:
        assert password not in what, where


# A C producer (libringflow's API, no Python hook): ctypes in its own process,
# whose environment holds MY_API_KEY.  It writes one sample_end whose error
# quotes that key and whose output quotes the sidecar's MLFLOW_TRACKING_TOKEN
# (which the producer does not know).
C_PRODUCER = r"""
import ctypes, sys
so = ctypes.CDLL(sys.argv[1])
so.rf_errmsg.restype = ctypes.c_char_p
so.rf_producer_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
so.rf_rec_begin.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
so.rf_rec_str.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
so.rf_rec_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64]
so.rf_rec_double.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_double]
so.rf_rec_end.argtypes = [ctypes.c_void_p]
so.rf_producer_close.argtypes = [ctypes.c_void_p]
p = ctypes.c_void_p()
assert so.rf_producer_open(ctypes.byref(p), None) == 0, so.rf_errmsg()
rec = ctypes.create_string_buffer(8192)  # >= sizeof(rf_rec)
assert so.rf_rec_begin(p, rec, 11, 0) == 0, so.rf_errmsg()
for k, v in [("run_id", sys.argv[2]), ("eval_id", sys.argv[3]), ("sample_uuid", "s-c"),
             ("output", sys.argv[4]), ("error", sys.argv[5])]:
    so.rf_rec_str(rec, k.encode(), v.encode())
so.rf_rec_int(rec, b"sample_id", 9)
so.rf_rec_int(rec, b"epoch", 1)
so.rf_rec_double(rec, b"total_time", 1.5)
assert so.rf_rec_end(rec) == 0, so.rf_errmsg()
so.rf_producer_close(p)
"""


def test_secrets_of_a_c_producer_and_of_the_sidecar_never_reach_mlflow(mlflow_server, tmp_path,
                                                                     exp_name):  # noqa: F811
    from mlflow.tracking import MlflowClient

    from rf_rawring import LIB

    api_key = "sk-rfcanary-CPROD-4471"   # in the C producer's environment only
    token = "tok-rfcanary-SIDECAR-0c9d"  # in the sidecar's environment only
    ring = f"/rf-pytest-csec-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name, MLFLOW_TRACKING_TOKEN=token)
    try:
        recs = good_run("csec-run", "csec-eval", time.time() - 10)
        w = RawRing(ring)
        assert w.rc == 0, w.error
        for t, payload in recs[:-2]:  # up to the task's end
            assert w.write(t, payload) == 0
        env = {k: v for k, v in os.environ.items() if "rfcanary" not in v}
        env.update(RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool), MY_API_KEY=api_key,
                   RINGFLOW_AUTOSTART="0")
        p = subprocess.run([sys.executable, "-c", C_PRODUCER, str(LIB), "csec-run", "csec-eval",
                            f"the answer used {token}", f"auth failed: {api_key}"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        for t, payload in recs[-2:]:
            assert w.write(t, payload) == 0
        w.close()
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 90)
        log = sc.stop()
    finally:
        cleanup(sc, ring)
    exp = client.get_experiment_by_name(exp_name)
    seen = []
    for r in client.search_runs([exp.experiment_id]):
        seen.append(json.dumps([r.data.params, r.data.tags]))
        d = tmp_path / "dl" / r.info.run_id
        d.mkdir(parents=True)
        client.download_artifacts(r.info.run_id, "", str(d))
        seen += [f.read_text(errors="replace") for f in d.rglob("*") if f.is_file()]
    everything = "\n".join(seen)
    assert "[REDACTED]" in everything  # the C producer's sample arrived, redacted
    for secret in (api_key, token):
        assert secret not in everything
        assert secret not in log
    # The producer's own key never left it: not in the journal or any spool file.
    # (The sidecar's token, unknown to the producer, is in the records the
    # sidecar keeps privately, and redacted on the way out.)
    for f in spool.rglob("*"):
        if f.is_file():
            assert api_key.encode() not in f.read_bytes(), f
