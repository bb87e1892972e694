"""Producers that try to grow ringflowd's memory (issue 15, item 11) or never
let it find the ring empty: run in their own process by test_memory_bounds.py
and test_sidecar.py.

    rf_flood_prog.py names N PER   one eval run whose N sample_end records
                                   carry PER scores each, every scorer name
                                   unique (N * PER metric names)
    rf_flood_prog.py spans N       one trace whose root never ends, with N
                                   ended children
    rf_flood_prog.py steady S GAP  one eval run whose samples end one every
                                   GAP ms for S seconds (records that
                                   never pause for long)
    rf_flood_prog.py log N E DIR [json]
                                   one eval run of N samples whose Inspect log
                                   (written to DIR, a .eval zip, or .json) holds E
                                   tool events of ~1 KB each per sample: tables
                                   of N * E rows built at the task's end

The last stdout line is JSON: what was written."""

from __future__ import annotations

import json
import os
import sys
import time

import ringflow
from ringflow import _producer
from ringflow._ringflow import (EV_RUN_END, EV_RUN_START, EV_SAMPLE_END, EV_TASK_END,
                                EV_TASK_START)


def open_run(task: str) -> tuple[str, str, float, bool]:
    """An eval run with one task: its run_start and task_start records."""
    run_id, eval_id = f"{task}-run-{time.time_ns()}", f"{task}-eval-{time.time_ns()}"
    now = time.time()
    ok = _producer.emit(EV_RUN_START, {"run_id": run_id, "task_names": [task], "time": now,
                                       "pid": 1, "host": "h"})
    ok &= _producer.emit(EV_TASK_START, {"run_id": run_id, "eval_id": eval_id, "task": task,
                                         "model": "mockllm/model", "created": now, "time": now})
    return run_id, eval_id, now, ok


def close_run(run_id: str, eval_id: str, task: str, n: int, started: float) -> bool:
    """The task_end (n samples) and run_end records of open_run's run."""
    ok = _producer.emit(EV_TASK_END, {"run_id": run_id, "eval_id": eval_id, "task": task,
                                      "status": "success", "total_samples": n,
                                      "completed_samples": n, "started_at": started,
                                      "completed_at": time.time(), "time": time.time()})
    return ok & _producer.emit(EV_RUN_END, {"run_id": run_id, "time": time.time(), "logs": []})


def names(n: int, per: int) -> dict:
    run_id, eval_id, now, ok = open_run("flood")
    written = 0
    for i in range(n):
        scores = {f"scorer_{i}_{j}": {"value": 1.0} for j in range(per)}
        while not _producer.emit(EV_SAMPLE_END, {
                "run_id": run_id, "eval_id": eval_id, "task": "flood",
                "sample_uuid": f"s{i}", "sample_id": i, "epoch": 1, "status": "success",
                "started_at": now, "completed_at": now, "total_time": 0.1,
                "working_time": 0.1, "scores": scores, "time": now}):
            time.sleep(0.01)  # the ring is full: wait for the sidecar
        written += per
    ok &= close_run(run_id, eval_id, "flood", n, now)
    return {"ok": bool(ok), "names": written}


def steady(seconds: float, gap_ms: float) -> dict:
    """One eval run whose samples end one every gap_ms for `seconds`, each
    with one `match` score: records that never stop for long, as from a
    long eval or a tracing program."""
    run_id, eval_id, now, ok = open_run("steady")
    n, end = 0, now + seconds
    while time.time() < end:
        t = time.time()
        while not _producer.emit(EV_SAMPLE_END, {
                "run_id": run_id, "eval_id": eval_id, "task": "steady",
                "sample_uuid": f"s{n}", "sample_id": n, "epoch": 1, "status": "success",
                "started_at": t, "completed_at": t, "total_time": 0.1, "working_time": 0.1,
                "scores": {"match": {"value": 1.0}}, "time": t}):
            time.sleep(0.01)  # the ring is full: wait for the sidecar
        n += 1
        time.sleep(gap_ms / 1000)
    ok &= close_run(run_id, eval_id, "steady", n, now)
    return {"ok": bool(ok), "samples": n}


def spans(n: int) -> dict:
    import ringflow.tracing as mlflow

    root = mlflow.start_span_no_context("root", inputs={"q": "never ends"})
    for i in range(n):
        c = mlflow.start_span_no_context(f"child-{i}", parent_span=root, inputs={"i": i},
                                         attributes={"k": "v" * 64})
        c.end(outputs={"o": i})
    return {"ok": bool(root), "children": n, "trace_id": root.trace_id,
            "stats": ringflow.stats()}


def sample_doc(i: int, e: int) -> dict:
    events = [{"event": "tool", "timestamp": f"2026-12-06T00:00:{i % 60:02d}+00:00",
               "working_time": 0.01, "function": "lookup", "arguments": {"q": j},
               "result": os.urandom(450).hex()}
              for j in range(e)]
    msgs = [{"role": "user", "content": f"question {i}"},
            {"role": "assistant", "content": os.urandom(200).hex(), "source": "generate"}]
    return {"id": i, "epoch": 1, "messages": msgs, "events": events}


def write_log(path: str, eval_id: str, n: int, e: int) -> None:
    """An Inspect .eval log as Inspect lays it out: a zip of JSON members,
    samples/<id>_epoch_<epoch>.json and header.json.  Payloads are random
    hex, so the log is as large as its tables (no easy compression)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for i in range(n):
            z.writestr(f"samples/{i}_epoch_1.json", json.dumps(sample_doc(i, e)))
        z.writestr("header.json", json.dumps({"version": 2, "status": "success",
                                              "eval": {"eval_id": eval_id, "task": "flood"}}))


def write_json_log(path: str, eval_id: str, n: int, e: int) -> None:
    """The same log in Inspect's .json format: one indented document, keys
    before and after "samples", written a sample at a time."""
    with open(path, "w") as f:
        f.write('{\n  "version": 2,\n  "status": "success",\n  "eval": ')
        f.write(json.dumps({"eval_id": eval_id, "task": "flood"}, indent=2))
        f.write(',\n  "samples": [\n')
        for i in range(n):
            f.write(("    " if not i else ",\n    ") + json.dumps(sample_doc(i, e), indent=2))
        f.write('\n  ],\n  "reductions": [{"scorer": "match", "samples": []}]\n}\n')


def log(n: int, e: int, where: str, fmt: str = "eval") -> dict:
    run_id, eval_id = f"flood-run-{time.time_ns()}", f"flood-eval-{time.time_ns()}"
    path = f"{where}/flood.{fmt}"
    (write_json_log if fmt == "json" else write_log)(path, eval_id, n, e)
    now = time.time()
    ok = _producer.emit(EV_RUN_START, {"run_id": run_id, "task_names": ["flood"], "time": now,
                                       "pid": 1, "host": "h"})
    ok &= _producer.emit(EV_TASK_START, {"run_id": run_id, "eval_id": eval_id, "task": "flood",
                                         "model": "mockllm/model", "created": now, "time": now})
    for i in range(n):
        while not _producer.emit(EV_SAMPLE_END, {
                "run_id": run_id, "eval_id": eval_id, "task": "flood",
                "sample_uuid": f"s{i}", "sample_id": i, "epoch": 1, "status": "success",
                "started_at": now, "completed_at": now, "total_time": 0.1,
                "working_time": 0.1, "scores": {"match": {"value": "C"}}, "time": now}):
            time.sleep(0.01)
    ok &= _producer.emit(EV_TASK_END, {"run_id": run_id, "eval_id": eval_id, "task": "flood",
                                       "status": "success", "total_samples": n,
                                       "completed_samples": n, "started_at": now,
                                       "completed_at": time.time(), "time": time.time(),
                                       "location": path})
    ok &= _producer.emit(EV_RUN_END, {"run_id": run_id, "time": time.time(), "logs": [path]})
    return {"ok": bool(ok), "eval_id": eval_id, "log_bytes": os.path.getsize(path)}


if __name__ == "__main__":
    kind = sys.argv[1]
    out = (names(int(sys.argv[2]), int(sys.argv[3])) if kind == "names" else
           log(int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:6]) if kind == "log" else
           steady(float(sys.argv[2]), float(sys.argv[3])) if kind == "steady" else
           spans(int(sys.argv[2])))
    print(json.dumps(out))
