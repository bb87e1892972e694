"""Caller-side cost of tracing a Python program: ringflow.tracing vs MLflow's own.

    trace_bench.py --impl ringflow|mlflow --size 10k|1m [--spans N] [--text N]
                   [--traces N] [--repeats R] [--tracking-uri URI]

The same program for both: a `pipeline` function (CHAIN) calling a
`generate` function (LLM) spans-1 times, both decorated with `trace`; each
generate call has a text input and returns a text output, sized so a trace is
about 10 KB (10 spans) or 1 MB (100 spans).  Only the import differs
(`import ringflow.tracing as mt` / `import mlflow as mt`).

ringflow writes into a private ring drained by `ringflow-dump --discard` (the
consumer; what the sidecar does with the records is not the caller's cost).
mlflow logs to a real `mlflow server` at --tracking-uri with async logging on
(MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=true), the setting that keeps export off
the caller; its later flush (mlflow.flush_trace_async_logging) is timed
separately and reported as flush_s.

Caller cost per span = (median wall time of one traced pipeline call -
median of the same call undecorated) / spans.  The median over calls keeps
preemption by other processes (a shared 2-CPU machine) out of the figure.
Also reported: the thread's CPU time per span over all calls.
Prints one JSON line: {"bench":"trace","lang":"python","impl":...,
"trace_bytes":...,"ns_per_span":...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(mt, spans: int, in_text: str, out_text: str):
    @mt.trace(span_type="LLM")
    def generate(prompt: str, step: int) -> str:
        return out_text

    @mt.trace(span_type="CHAIN")
    def pipeline(request: int) -> str:
        for k in range(1, spans):
            generate(in_text, k)
        return "done"

    def plain_generate(prompt: str, step: int) -> str:
        return out_text

    def plain(request: int) -> str:
        for k in range(1, spans):
            plain_generate(in_text, k)
        return "done"

    return pipeline, plain


def timed(fn, n: int) -> tuple[float, float]:
    """(median wall ns per call, thread CPU ns per call)."""
    walls = []
    c0 = time.thread_time_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        walls.append(time.perf_counter_ns() - t0)
    cpu = (time.thread_time_ns() - c0) / n
    return statistics.median(walls), cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=["ringflow", "mlflow"], required=True)
    ap.add_argument("--size", choices=["10k", "1m"], default="10k")
    ap.add_argument("--spans", type=int, default=0)
    ap.add_argument("--text", type=int, default=0)
    ap.add_argument("--traces", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    a = ap.parse_args()
    big = a.size == "1m"
    spans = a.spans or (100 if big else 10)
    text = a.text or (5000 if big else 450)
    in_text = "".join(chr(ord("a") + i % 26) for i in range(text))
    out_text = in_text.upper()
    if not a.traces:
        a.traces = (40 if big else 2000) if a.impl == "ringflow" else (8 if big else 100)

    dump = None
    extra: dict = {}
    if a.impl == "ringflow":
        ring = f"/rf-trace-bench-py-{os.getpid()}"
        os.environ["RINGFLOW_RING"] = ring
        os.environ["RINGFLOW_AUTOSTART"] = "0"
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        import ringflow
        import ringflow.tracing as mt
        ringflow.producer()  # creates the ring before its consumer attaches
        dump = subprocess.Popen([str(REPO / "build/release/bin/ringflow-dump"), "--ring", ring,
                                 "--idle-ms", "0", "--discard"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
    else:
        if not a.tracking_uri:
            sys.exit("--tracking-uri (a running mlflow server) is needed for --impl mlflow")
        os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "true"
        import mlflow as mt
        mt.set_tracking_uri(a.tracking_uri)
        mt.set_experiment(f"trace-bench-{a.size}-{spans}")

    pipeline, plain = build(mt, spans, in_text, out_text)
    pipeline(-1)  # warm: imports, first records, connections
    if a.impl == "mlflow":
        mt.flush_trace_async_logging()
    runs, cpus, bases = [], [], []
    flush_s = []
    for _ in range(a.repeats):
        base, _c = timed(plain, a.traces)
        wall, cpu = timed(pipeline, a.traces)
        base_cpu = _c
        bases.append(base / spans)
        runs.append((wall - base) / spans)
        cpus.append((cpu - base_cpu) / spans)
        if a.impl == "mlflow":
            t0 = time.perf_counter()
            mt.flush_trace_async_logging()
            flush_s.append(time.perf_counter() - t0)

    if a.impl == "ringflow":
        st = ringflow.stats()
        extra["records_errors"] = st.get("errors", 0) + st.get("encode_errors", 0)
        extra["ring_spilled"] = st.get("ring_spilled", 0)
        # trace size: the bytes of one trace's records, measured on a fresh ring
        trace_bytes = ring_bytes_of_one(pipeline, mt, spans, ring, dump)
        dump = None
    else:
        tid = mt.get_last_active_trace_id()
        t = mt.get_trace(tid)
        trace_bytes = len(t.to_json())
        extra["flush_s"] = [round(x, 3) for x in flush_s]
        extra["trace_bytes_is"] = "len(Trace.to_json())"

    print(json.dumps({
        "bench": "trace", "lang": "python", "impl": a.impl, "size": a.size,
        "trace_bytes": trace_bytes, "spans_per_trace": spans, "traces": a.traces,
        "repeats": a.repeats, "ns_per_span": round(statistics.median(runs), 1),
        "ns_per_span_runs": [round(min(runs), 1), round(max(runs), 1)],
        "cpu_ns_per_span": round(statistics.median(cpus), 1),
        "ns_untraced_per_span": round(statistics.median(bases), 1),
        "python": sys.version.split()[0], **extra,
    }), flush=True)


def ring_bytes_of_one(pipeline, mt, spans: int, ring: str, dump) -> int:
    """Ring bytes of one trace (records, 8-byte headers, padding): write one
    more trace and a marker span, read the positions, sum the trace's records'
    extents (each ends where the next begins)."""
    dump.terminate()
    dump.wait(timeout=30)
    pipeline(0)
    with mt.start_span("marker"):
        pass
    p = subprocess.run([str(REPO / "build/release/bin/ringflow-dump"), "--ring", ring,
                        "--idle-ms", "300"], capture_output=True, text=True, timeout=120)
    pos = [json.loads(line)["pos"] for line in p.stdout.splitlines()]
    try:
        os.unlink(f"/dev/shm{ring}")
    except FileNotFoundError:
        pass
    return pos[-2] - pos[-2 - 2 * spans]


if __name__ == "__main__":
    main()
