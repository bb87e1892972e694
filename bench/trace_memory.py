"""ringflowd's peak memory with tracing on, at 10,000 and 100,000 traced samples.

    .venv/bin/python bench/trace_memory.py [--samples 10000,100000]
                                           [--cases slow,away] [--settle 60]

What the sidecar holds is what matters, and a real Inspect eval of 100,000
samples takes hours on a small host, so the producer replays what the Inspect
hook writes: once per invocation it runs a real `inspect_ai` eval (the `rich`
task of tests/python/rf_evals.py, mockllm, tracing on) with the hook's
`_producer.emit` captured, takes one ordinary sample's records (30: sample
init/start, attempt, Inspect spans, 2 model calls, a tool call, 3 scores,
sample_end; about 13 KB) plus the run and task records, and writes them N
times through libringflow (the hook's own path: ring, then spill files when
the ring is full), every id (sample uuid, event uuids, Inspect span ids, tool
call ids) made unique per copy.

Cases, each with a fresh ringflowd (RINGFLOW_RING/SPOOL_DIR of its own):
  slow   a fresh real `mlflow server` (SQLite, --workers 1,
         MLFLOW_MODEL_CATALOG_URI="", MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false)
         that cannot keep up (~25 ms of CPU per trace)
  away   MLflow away for the whole burst: the tracking URI is a port nothing
         listens on

Memory: VmHWM (peak RSS, which includes the 16 MiB shared ring and any spill
file mapped) read from /proc/<pid>/status at the end, and the largest
RssAnon (the sidecar's own heap) sampled every 50 ms.  The window is the
burst plus --settle seconds after the sidecar has taken every record (ring and
spill files empty) or stopped taking them (gate closed, nothing taken for
--settle s): the backlog, and so memory, is largest then; with the slow server
the upload of 100,000 traces would take ~40 min more, with memory only falling.

One JSON line per case on stdout ("bench": "trace_memory").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVALS = REPO / "tests" / "python" / "rf_evals.py"
RINGFLOWD = Path(os.environ.get("RF_RINGFLOWD", REPO / "build" / "release" / "bin" / "ringflowd"))
ID_KEYS = ("sample_uuid", "event_uuid", "span_id", "parent_id", "tool_call_id")

CAPTURE = r"""
import datetime, json, runpy, sys
import ringflow._producer as P
def plain(o):  # what libringflow encodes a datetime as: seconds since the epoch
    return o.timestamp() if isinstance(o, datetime.datetime) else str(o)
recs = []
P.emit = lambda t, f: recs.append([t, f]) or True
sys.argv = ["rf_evals.py", "rich", sys.argv[1]]
try:
    runpy.run_path(sys.argv_evals, run_name="__main__")
finally:
    json.dump(recs, open(sys.argv_out, "w"), default=plain)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def capture(tmp: Path) -> tuple[list, list, list]:
    """(run/task prologue, one sample's records, epilogue) of a real eval."""
    out = tmp / "records.json"
    prog = CAPTURE.replace("sys.argv_evals", repr(str(EVALS))).replace("sys.argv_out", repr(str(out)))
    env = dict(os.environ, MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLFLOW_INSPECT_TRACING="true",
               RINGFLOW_AUTOSTART="0", RINGFLOW_RING=f"/rf-bench-cap-{os.getpid()}")
    try:
        subprocess.run([sys.executable, "-c", prog, str(tmp / "logs")], env=env, check=True,
                       capture_output=True, cwd=REPO, timeout=600)
    finally:
        try:  # the hook opened (created) its ring before its records were captured
            os.unlink("/dev/shm" + env["RINGFLOW_RING"])
        except OSError:
            pass
    recs = json.loads(out.read_text())
    by = {}
    for t, f in recs:
        if f.get("sample_uuid"):
            by.setdefault(f["sample_uuid"], []).append((t, f))
    # An ordinary sample: the most common record count (the others retried or failed).
    counts = [len(v) for v in by.values()]
    n = max(set(counts), key=counts.count)
    sample = next(v for v in by.values() if len(v) == n and v[-1][1].get("status") == "success")
    usage = [r for r in recs if r[0] == 20][:2]  # model_usage: run-level, one per generate
    pro = [r for r in recs if r[0] in (3, 5)]
    epi = [r for r in recs if r[0] in (6, 4)]
    return pro, [list(r) for r in sample] + usage, epi


def producer(pro, sample, epi, n: int, ring: str, spool: Path, uri: str, exp: str) -> None:
    """Child process: write the eval through libringflow."""
    os.environ.update(RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool), RINGFLOW_AUTOSTART="0",
                      MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME=exp)
    from ringflow import _producer

    ids = sorted({f[k] for _, f in sample for k in ID_KEYS if isinstance(f.get(k), str)},
                 key=len, reverse=True)
    pat = re.compile("|".join(re.escape(i) for i in ids))
    stamp = f"{time.time_ns():x}"
    run_id, eval_id = sample[0][1]["run_id"], sample[0][1]["eval_id"]
    text = json.dumps(sample).replace(run_id, f"bench-run-{stamp}").replace(eval_id, f"bench-eval-{stamp}")

    def fix(recs):
        return json.loads(json.dumps(recs).replace(run_id, f"bench-run-{stamp}")
                          .replace(eval_id, f"bench-eval-{stamp}"))

    bad = 0
    for t, f in fix(pro):
        if t == 3:
            f.update(tracking_uri=uri, experiment_name=exp, log_artifacts=False, tracing=True)
        bad += not _producer.emit(t, f)
    for i in range(n):
        for t, f in json.loads(pat.sub(lambda m: f"{m.group(0)}-{i}", text)):
            if "sample_id" in f:
                f["sample_id"] = i + 1
            bad += not _producer.emit(t, f)
    for t, f in fix(epi):
        if t == 6:
            f.update(total_samples=n, completed_samples=n)
        bad += not _producer.emit(t, f)
    _producer.flush()
    print(json.dumps({"records": n * len(sample) + len(pro) + len(epi), "not_written": bad}))


def kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def status(ring: str, spool: Path) -> dict:
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
    p = subprocess.run([str(RINGFLOWD), "status", "--json", "--interval", "0"], env=env,
                       capture_output=True, text=True, timeout=60)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {}


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_MODEL_CATALOG_URI="",
               MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
         f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts"),
         "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=open(root / "server.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(480):
        try:
            urllib.request.urlopen(uri + "/health", timeout=2)
            return proc, uri
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("mlflow server did not start")


def run_case(case: str, n: int, tpl, settle: float, max_window: float, extra_env: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="rf-trace-mem-") as d:
        tmp = Path(d)
        spool = tmp / "spool"
        spool.mkdir()
        ring = f"/rf-bench-tmem-{os.getpid()}-{case}-{n}"
        server = None
        if case == "slow":
            server, uri = start_server(tmp)
        else:
            uri = f"http://127.0.0.1:{free_port()}"
        exp = f"trace-memory-{case}-{n}-{time.time_ns() % 10**6}"
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool),
                   MLFLOW_EXPERIMENT_NAME=exp, MLFLOW_INSPECT_TRACING="true", RINGFLOW_SHUTDOWN_MS="1000",
                   INSPECT_MLFLOW_LOG_ARTIFACTS="false", **extra_env)
        sc = subprocess.Popen([str(RINGFLOWD)], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "ringflowd.log", "wb"))
        peak = {"anon": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak["anon"] = max(peak["anon"], kb(sc.pid, "RssAnon"))
                except OSError:
                    return
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        t0 = time.time()
        try:
            while "serving ring" not in (tmp / "ringflowd.log").read_text():
                assert sc.poll() is None and time.time() - t0 < 30, (tmp / "ringflowd.log").read_text()
                time.sleep(0.05)
            th.start()
            t0 = time.time()
            pr = subprocess.run([sys.executable, __file__, "--produce", str(n), "--ring", ring,
                                 "--spool", str(spool), "--uri", uri, "--exp", exp, "--tpl", str(tpl)],
                                capture_output=True, text=True, timeout=7200)
            assert pr.returncode == 0, pr.stderr[-3000:]
            produced = json.loads(pr.stdout.strip().splitlines()[-1])
            produce_s = time.time() - t0
            # Until the sidecar has taken everything (or stopped taking), then settle.
            last, last_change, st = None, time.time(), {}
            while True:
                st = status(ring, spool)
                side = st.get("sidecar", {})
                key = (side.get("records_in"), side.get("traces"), side.get("spool_files"))
                if key != last:
                    last, last_change = key, time.time()
                spills = list(spool.glob("spill-*"))
                if time.time() - last_change >= settle or time.time() - t0 >= max_window:
                    break
                time.sleep(1)
            side = st.get("sidecar", {})
            row = {"bench": "trace_memory", "case": case, "samples": n,
                   "records": produced["records"], "produce_s": round(produce_s, 1),
                   "window_s": round(time.time() - t0, 1),
                   "vm_hwm_mib": round(kb(sc.pid, "VmHWM") / 1024, 1),
                   "rss_anon_peak_mib": round(peak["anon"] / 1024, 1),
                   "spill_files_left": len(spills)}
            for k in ("records_in", "traces", "traces_done", "spans_sent", "traces_waiting",
                      "pending", "http_pending", "spool_files", "spool_bytes"):
                if k in side:
                    row["sidecar_" + k] = side[k]
            row["lost"] = {k: v for k, v in side.get("lost", {}).items() if v}
            sc.send_signal(signal.SIGTERM)  # its last stats lines
            try:
                sc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            # The periodic stats lines of the log (absent before the spool existed).
            log = (tmp / "ringflowd.log").read_text(errors="replace")
            for k in ("traces_spooled", "gate_memory"):
                vals = [int(v) for v in re.findall(rf"\b{k}=(\d+)", log)]
                if vals:
                    row[k] = max(vals)
            return row
        finally:
            stop.set()
            if sc.poll() is None:
                sc.kill()
            sc.wait()
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait()
            try:
                os.unlink(f"/dev/shm{ring}")
            except OSError:
                pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", default="10000,100000")
    ap.add_argument("--cases", default="slow,away")
    ap.add_argument("--settle", type=float, default=60)
    ap.add_argument("--max-window", type=float, default=900,
                    help="stop measuring this long after the producer started")
    ap.add_argument("--env", action="append", default=[], help="K=V for ringflowd")
    ap.add_argument("--produce", type=int)
    ap.add_argument("--ring"), ap.add_argument("--spool"), ap.add_argument("--uri")
    ap.add_argument("--exp"), ap.add_argument("--tpl")
    a = ap.parse_args()
    if a.produce is not None:
        pro, sample, epi = json.loads(Path(a.tpl).read_text())
        producer(pro, sample, epi, a.produce, a.ring, Path(a.spool), a.uri, a.exp)
        return
    extra = dict(kv.split("=", 1) for kv in a.env)
    with tempfile.TemporaryDirectory(prefix="rf-trace-mem-cap-") as d:
        tpl = Path(d) / "template.json"
        tpl.write_text(json.dumps(capture(Path(d))))
        for n in (int(s) for s in a.samples.split(",")):
            for case in a.cases.split(","):
                print(json.dumps(run_case(case, n, tpl, a.settle, a.max_window, extra)), flush=True)


if __name__ == "__main__":
    main()
