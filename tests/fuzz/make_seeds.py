"""Seed corpora for the fuzz targets, from real data (run once; the results
are kept in tests/fuzz/<target>/corpus/, minimized by `make fuzz`).

    .venv/bin/python tests/fuzz/make_seeds.py            (replaces the corpora)
    .venv/bin/python tests/fuzz/make_seeds.py --traces   (adds the trace seeds)

- a real Inspect eval (tests/python/rf_evals.py rich + plain) writes its
  records into a private ring; ringflowd (release build) takes them into its
  journal while its MLflow is unreachable, then stops: that journal is the
  `journal` seed, and its records are the `record` seeds;
- the same records written (libringflow, ctypes) into a 64 KiB ring with no
  consumer spill to files: the `spill` seeds;
- a real `mlflow server` answers the requests ringflowd makes, in its order
  (experiment, runs, log-batch, artifacts, status), including refusals:
  the `mlflow_resp` seeds.

    .venv/bin/python tests/fuzz/make_seeds.py --evallog  (the `evallog` seeds)

- a real Inspect eval's log, as .eval and converted to .json by
  `inspect log convert`, and a small indented .json log.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
from conftest import MlflowServer  # noqa: E402

BUILD = REPO / "build" / "release"
FUZZ = REPO / "tests" / "fuzz"


def put(target: str, name: str, data: bytes) -> None:
    d = FUZZ / target / "corpus"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def journal_records(raw: bytes):
    off = 48
    while off + 24 <= len(raw):
        ln, typ, _crc, _sub, _pos = struct.unpack_from("<IiIIQ", raw, off)
        if off + 24 + ln > len(raw):
            break
        yield typ, raw[off + 24: off + 24 + ln]
        off += 24 + ln


def eval_into_journal(tmp: Path, traced: bool = False) -> bytes:
    """The records of real evals (traced: a traced eval, which adds the
    model calls' input messages, and the C and Python tracing programs'
    records 24-27), as ringflowd journals them."""
    ring = f"/rf-seed-{os.getpid()}{'-tr' if traced else ''}"
    spool = tmp / ("spool-tr" if traced else "spool")
    spool.mkdir()
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool),
               RINGFLOW_AUTOSTART="0", MLFLOW_TRACKING_URI="http://127.0.0.1:9",
               INSPECT_LOG_DIR=str(tmp / "logs"))
    py = sys.executable
    if traced:
        env["MLFLOW_INSPECT_TRACING"] = "true"
        runs = [[py, str(REPO / "tests/python/rf_evals.py"), "rich", str(tmp / "logs")],
                [py, str(REPO / "tests/python/rf_trace_prog.py"), "demo"],
                [str(BUILD / "examples/trace_demo")]]
    else:
        runs = [[py, str(REPO / "tests/python/rf_evals.py"), "rich", str(tmp / "logs")],
                [py, str(REPO / "tests/python/rf_evals.py"), "plain", str(tmp / "logs"), "3"]]
    for argv in runs:
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    d = subprocess.Popen([str(BUILD / "bin/ringflowd"), "--shutdown-ms", "100"], env=env,
                         stderr=subprocess.DEVNULL)
    time.sleep(3)
    d.send_signal(signal.SIGTERM)
    d.wait(timeout=30)
    raw = (spool / f"journal-{ring[1:]}.rfj").read_bytes()
    subprocess.run(["rm", "-f", f"/dev/shm{ring}"])
    return raw


class Opts(ctypes.Structure):
    _fields_ = [("capacity", ctypes.c_size_t), ("flags", ctypes.c_uint),
                ("full_policy", ctypes.c_int), ("full_wait_ns", ctypes.c_uint64),
                ("spool_dir", ctypes.c_char_p), ("stall_check_ns", ctypes.c_uint64)]


def spill_files(tmp: Path, recs) -> list[bytes]:
    lib = ctypes.CDLL(str(BUILD / "libringflow.so"))
    spool = tmp / "spill-spool"
    spool.mkdir()
    ring = f"/rf-seedspill-{os.getpid()}".encode()
    o = Opts(capacity=64 << 10, flags=1, full_policy=0, full_wait_ns=1000000,
             spool_dir=str(spool).encode())
    r = ctypes.c_void_p()
    assert lib.rf_ring_open(ctypes.byref(r), ring, ctypes.byref(o)) == 0
    for _ in range(3):
        for typ, payload in recs:
            lib.rf_ring_write(r, typ, payload, ctypes.c_size_t(len(payload)))
    lib.rf_ring_close(r)
    lib.rf_ring_unlink(ring)
    return [p.read_bytes() for p in sorted(spool.glob("spill-*"))]


def call(uri: str, method: str, path: str, body=None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(uri + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def answers(tmp: Path) -> dict[str, tuple[int, bytes]]:
    srv = MlflowServer(tmp / "mlflow").start()
    try:
        u, a = srv.uri, {}
        api = "/api/2.0/mlflow/"
        a["get_404"] = call(u, "GET", api + "experiments/get-by-name?experiment_name=fuzz")
        a["create"] = call(u, "POST", api + "experiments/create", {"name": "fuzz"})
        a["create_exists"] = call(u, "POST", api + "experiments/create", {"name": "fuzz"})
        a["get"] = call(u, "GET", api + "experiments/get-by-name?experiment_name=fuzz")
        exp = json.loads(a["create"][1])["experiment_id"]
        a["run_parent"] = call(u, "POST", api + "runs/create",
                               {"experiment_id": exp, "run_name": "inspect-run-fuzz",
                                "start_time": 1700000000000,
                                "tags": [{"key": "ringflow.key", "value": "run:run-fuzz-0001"}]})
        parent = json.loads(a["run_parent"][1])["run"]["info"]["run_id"]
        a["run_child"] = call(u, "POST", api + "runs/create",
                              {"experiment_id": exp, "run_name": "t", "start_time": 1700000001000,
                               "tags": [{"key": "mlflow.parentRunId", "value": parent}]})
        child = json.loads(a["run_child"][1])["run"]["info"]["run_id"]
        a["search"] = call(u, "POST", api + "runs/search",
                           {"experiment_ids": [exp], "max_results": 1,
                            "filter": "tags.`ringflow.key` = 'run:run-fuzz-0001'"})
        a["search_empty"] = call(u, "POST", api + "runs/search",
                                 {"experiment_ids": [exp], "max_results": 1,
                                  "filter": "tags.`ringflow.key` = 'none'"})
        a["batch"] = call(u, "POST", api + "runs/log-batch",
                          {"run_id": child, "metrics": [{"key": "m", "value": 1.0,
                                                         "timestamp": 1, "step": 0}]})
        a["batch_400"] = call(u, "POST", api + "runs/log-batch",
                              {"run_id": child, "params": [{"key": "p", "value": "a"}]})
        a["batch_400b"] = call(u, "POST", api + "runs/log-batch",
                               {"run_id": child, "params": [{"key": "p", "value": "b"}]})
        a["batch_bad_run"] = call(u, "POST", api + "runs/log-batch", {"run_id": "nope"})
        a["update"] = call(u, "POST", api + "runs/update",
                           {"run_id": child, "status": "FINISHED", "end_time": 1700000004000})
        a["put"] = call(u, "PUT", f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{child}/artifacts/x.json",
                        {"a": 1})
        call(u, "POST", api + "experiments/delete", {"experiment_id": exp})
        a["get_deleted"] = call(u, "GET", api + "experiments/get-by-name?experiment_name=fuzz")
        a["restore"] = call(u, "POST", api + "experiments/restore", {"experiment_id": exp})
        a["not_found_html"] = call(u, "GET", "/api/2.0/mlflow/no-such-endpoint")
        return a
    finally:
        srv.stop()


def framed(*parts: tuple[int, bytes]) -> bytes:
    return b"".join(struct.pack("<HH", s, len(b)) + b for s, b in parts)


def record_seeds(recs, prefix: str, alone) -> None:
    """`record` seeds: each record whose type `alone` picks as an input of its
    own, and the whole sequence framed in pieces of about 16 KiB (records of
    64 KiB or more do not fit the u16 length and are left out)."""
    frame = lambda typ, p: bytes([typ & 0xff]) + struct.pack("<H", len(p)) + p  # noqa: E731
    chunk, n = b"", 0
    for i, (typ, p) in enumerate(recs):
        if len(p) >= 65536:
            continue
        if alone(typ):
            put("record", f"{prefix}rec-{i:04d}-type{typ}", frame(typ, p))
        chunk += frame(typ, p)
        if len(chunk) > 16384:
            put("record", f"{prefix}seq-{n:03d}", chunk)
            chunk, n = b"", n + 1
    if chunk:
        put("record", f"{prefix}seq-{n:03d}", chunk)


def trace_seeds(tmp: Path) -> None:
    """Seeds for the trace path, added to the kept corpora (`--traces`)."""
    raw = eval_into_journal(tmp, traced=True)
    recs = list(journal_records(raw))
    print(f"traced journal: {len(raw)} bytes, {len(recs)} records")
    put("journal", "traced", b"\x00" + raw[:262144])
    # the general tracing records each alone too, and the whole sequence in pieces
    record_seeds(recs, "trace-", alone=lambda typ: typ >= 24)


def evallog_seeds(tmp: Path) -> None:
    """Option byte 0: read as .eval; 1: as .json."""
    shutil.rmtree(FUZZ / "evallog" / "corpus", ignore_errors=True)
    env = dict(os.environ, RINGFLOW_DISABLED="1")
    subprocess.run([sys.executable, str(REPO / "tests/python/rf_evals.py"), "plain",
                    str(tmp / "logs"), "2"], env=env, check=True, capture_output=True)
    (out,) = (tmp / "logs").glob("*.eval")
    put("evallog", "inspect-eval", b"\x00" + Path(out).read_bytes())
    subprocess.run([str(Path(sys.executable).parent / "inspect"), "log", "convert", "--to", "json",
                    "--output-dir", str(tmp / "json"), out], check=True, capture_output=True)
    (conv,) = (tmp / "json").rglob("*.json")
    put("evallog", "inspect-json", b"\x01" + conv.read_bytes())
    small = {"version": 2, "eval": {"eval_id": "e"}, "samples": [{"id": 1, "events": []}, 2],
             "reductions": None}
    put("evallog", "small-json", b"\x01" + json.dumps(small, indent=2).encode())


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rf-seeds-"))
    one = {"--evallog": evallog_seeds, "--traces": trace_seeds}.get(" ".join(sys.argv[1:]))
    if one:  # one target's added seeds
        try:
            one(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    try:
        for t in ("record", "journal", "spill", "mlflow_resp"):
            shutil.rmtree(FUZZ / t / "corpus", ignore_errors=True)
        raw = eval_into_journal(tmp)
        recs = list(journal_records(raw))
        print(f"journal: {len(raw)} bytes, {len(recs)} records")
        put("journal", "eval", b"\x00" + raw)
        put("journal", "eval-fixcrc", b"\x01" + raw)
        put("journal", "eval-other-ring", b"\x02" + raw[:4096])
        # records: each alone, and the eval's sequence in pieces
        record_seeds(recs, "", alone=lambda typ: True)
        # spill files
        files = spill_files(tmp, [(t, p) for t, p in recs if len(p) < 8000])
        print(f"spill: {len(files)} files")
        for i, f in enumerate(files[:6]):
            put("spill", f"spill-{i}", b"\x00" + f[:32768])
            put("spill", f"spill-{i}-fixcrc", b"\x01" + f[:8192])
        # MLflow answers in the order ringflowd asks
        a = answers(tmp)
        for k, (s, b) in a.items():
            print(f"mlflow {k}: {s} {b[:100]!r}")
        ok = (200, b"{}")
        happy = [a["get"], a["run_parent"], a["run_child"]] + [a["batch"]] * 8 + [a["update"]] * 2
        put("mlflow_resp", "happy", framed(*happy))
        put("mlflow_resp", "create-experiment",
            framed(a["get_404"], a["create"], a["run_parent"], a["run_child"], *[ok] * 8))
        put("mlflow_resp", "create-race", framed(a["get_404"], a["create_exists"], a["get"], a["run_parent"]))
        put("mlflow_resp", "restore", framed(a["get_deleted"], a["restore"], a["run_parent"], a["run_child"]))
        put("mlflow_resp", "run-lookup",
            framed(a["get"], (500, a["not_found_html"][1]), a["search"], a["run_child"], a["batch"]))
        put("mlflow_resp", "run-lookup-empty",
            framed(a["get"], (503, b"{}"), a["search_empty"], a["run_parent"], a["run_child"]))
        put("mlflow_resp", "batch-bisect",
            framed(a["get"], a["run_parent"], a["run_child"], a["batch_400"], a["batch_400b"],
                   a["batch_bad_run"], a["batch"], a["batch"], a["update"]))
        put("mlflow_resp", "html-404", framed(a["not_found_html"]))
        put("mlflow_resp", "put", framed(a["get"], a["run_parent"], a["run_child"], a["put"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
