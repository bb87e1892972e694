"""Traces waiting for MLflow beyond RINGFLOW_TRACE_MEM_MB wait on disk, and
every one of them still arrives complete (issue 17, item 3).

A real traced Inspect eval of 200 samples writes its records while no
sidecar runs (they wait in the ring, as after a sidecar restart); then
ringflowd starts with a 1 MiB trace budget and takes them all at once: 200
complete traces weigh several MiB, so most must go to its trace spool and
come back when their turn comes.  A real MLflow server checks the result:
one trace per sample, state OK, every span, and the assessments of every
score.

MLflow answers 503 (faultproxy.py in front of it) until `ringflowd status`
shows traces waiting on disk, so the operator's view of the spool is seen
while it is in use (issue 17, item 2): `status` (text and --json) and
/metrics count the traces on disk and their bytes; after the flush those
gauges are back to 0 and the total stays."""

from __future__ import annotations

import os
import re
import time

import test_sidecar as ts
from faultproxy import FaultProxy
from test_hook import eval_env
from test_ops import ctl, free_port, parse_prom, scrape, status_json, wait_for
from test_traces import assessment_names, by_sample

SAMPLES = 200


def test_traces_over_the_memory_budget_wait_on_disk_and_all_arrive(mlflow_server, tmp_path):
    from inspect_ai.log import read_eval_log
    from mlflow import MlflowClient

    ring = f"/rf-pytest-tmem-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    exp = f"rf-trace-mem-{os.getpid()}-{time.time_ns() % 10**6}"
    proxy = FaultProxy(mlflow_server, status=503)  # MLflow "overloaded" until we say
    dest = dict(MLFLOW_TRACKING_URI=proxy.url, MLFLOW_EXPERIMENT_NAME=exp)
    port = free_port()
    sc = None
    try:
        env = eval_env(ring, spool, MLFLOW_INSPECT_TRACING="true", **dest)
        log = read_eval_log(ts.run_eval(env, tmp_path / "logs", "plain", str(SAMPLES)))
        assert len(log.samples) == SAMPLES
        sc = ts.Sidecar(proxy.url, ring, spool, exp, RINGFLOW_TRACE_MEM_MB="1",
                        RINGFLOW_SHUTDOWN_MS="120000", RINGFLOW_METRICS_PORT=str(port))
        # Nothing can be sent: the complete traces past half the budget
        # wait on disk, and status says so.
        def spooled():
            _, st = status_json(ring, spool, "--interval", "0")
            s = st.get("sidecar", {})
            return s if s.get("traces_spooled", 0) > 0 else None

        held = wait_for(spooled, 300, "status to show traces waiting on disk")
        assert held["trace_spool_bytes"] > 0, held
        assert held["traces_spooled_total"] >= held["traces_spooled"], held
        assert held["trace_mem_max"] == 1 << 20 and held["trace_mem_bytes"] > 0, held
        text = ctl(ring, spool, "status", "--interval", "0").stdout
        m = re.search(r"trace memory .* \(bound 1\.0 MiB\); (\d+) complete traces wait on disk "
                      r"\(.*\), (\d+) since start", text)
        assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, text
        metrics = parse_prom(scrape(port)[2])
        assert metrics["ringflow_traces_spooled"] > 0, metrics
        assert metrics["ringflow_trace_spool_bytes"] > 0, metrics
        assert metrics["ringflow_traces_spooled_total"] >= metrics["ringflow_traces_spooled"]
        assert metrics["ringflow_trace_mem_max_bytes"] == 1 << 20
        assert metrics["ringflow_traces_waiting"] > 0, metrics
        proxy.status = None  # MLflow answers again: everything goes
        client = MlflowClient(mlflow_server)
        # The task run reads FINISHED only once its traces are in (or after
        # the 300 s hold): then every trace must be listed.
        ts.wait_finished(client, exp, 600)
        e = client.get_experiment_by_name(exp)
        deadline = time.time() + 120
        while time.time() < deadline:
            traces = client.search_traces(locations=[e.experiment_id], max_results=500)
            if len(traces) >= SAMPLES and all(t.info.state == "OK" for t in traces):
                break
            time.sleep(0.5)
        f = ctl(ring, spool, "flush", "--timeout", "300")
        assert f.returncode == 0, f.stdout + f.stderr
        # Flushed: nothing waits on disk or in memory; the total stays.
        _, st = status_json(ring, spool, "--interval", "0")
        after = st["sidecar"]
        for k in ("traces_spooled", "trace_spool_bytes", "trace_mem_bytes", "traces_waiting"):
            assert after[k] == 0, (k, after)
        assert after["traces_spooled_total"] >= held["traces_spooled_total"], after
        assert after["gate"] == "open", after
        metrics = parse_prom(scrape(port)[2])
        for k in ("ringflow_traces_spooled", "ringflow_trace_spool_bytes",
                  "ringflow_trace_mem_bytes", "ringflow_traces_waiting"):
            assert metrics[k] == 0, (k, metrics[k])
        assert metrics["ringflow_traces_spooled_total"] == after["traces_spooled_total"]
        log_text = sc.stop()
    finally:
        if sc:
            ts.cleanup(sc, ring)
        elif os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")
        proxy.close()
    # The waiting path was taken: complete traces went to the trace spool.
    spooled = [int(v) for v in re.findall(r"\btraces_spooled=(\d+)", log_text)]
    assert spooled and max(spooled) > 0, log_text[-3000:]
    # The log said when it began and when it ended.
    assert "traces: complete traces now wait on disk" in log_text, log_text[-3000:]
    assert "traces: none wait on disk any more" in log_text, log_text[-3000:]
    assert "traces_failed=0" in log_text and "spans_failed=0" in log_text, log_text[-3000:]
    assert "spans_capped" not in log_text or re.search(r"\bspans_capped=0\b", log_text), log_text[-3000:]
    # Every trace complete: one per sample, OK, the same spans as the
    # sample's structure, and one assessment per score.
    got = by_sample(traces)
    assert set(got) == {(str(s.id), s.epoch) for s in log.samples}
    full = [client.get_trace(t.info.trace_id) for t in got.values()]
    shapes = {tuple(sorted(s.span_type or "" for s in t.data.spans)) for t in full}
    assert len(shapes) == 1, shapes  # identical samples, identical span trees
    (shape,) = shapes
    assert {"CHAIN", "LLM", "EVALUATOR"} <= set(shape), shape
    for t in full:
        assert t.info.state == "OK"
        root = [s for s in t.data.spans if s.parent_id is None]
        assert len(root) == 1 and root[0].name.startswith("sample:"), [s.name for s in root]
    for s in log.samples:
        t = got[(str(s.id), s.epoch)]
        assert {a.name for a in t.info.assessments} == assessment_names(s)


# A tracing-API program holding one trace open: its root never ends while
# the test runs, and its 300 ended children (2 KB each) wait with it.
HOLDER = r'''
import sys, time
import ringflow.tracing as mlflow
with mlflow.start_span("holder") as root:
    for i in range(300):
        with mlflow.start_span(f"child{i}") as s:
            s.set_attribute("blob", "x" * 2000)
    print("ready", flush=True)
    time.sleep(3600)
'''


def test_spooled_traces_come_back_while_open_traces_weigh_a_quarter(mlflow_server, tmp_path):
    """Open traces cannot wait on disk.  When they alone weigh more than a
    quarter of RINGFLOW_TRACE_MEM_MB (100 samples at once weigh about half
    of the default budget), spooled traces must still come back and go:
    before, they waited on disk until the open traces ended, and the server
    idled.  Here one open trace of ~0.75 MiB holds a 2 MiB budget above its
    quarter for the whole test, while 200 complete traces wait on disk."""
    import subprocess
    import sys

    from mlflow import MlflowClient

    ring = f"/rf-pytest-tmem2-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    exp = f"rf-trace-mem2-{os.getpid()}-{time.time_ns() % 10**6}"
    dest = dict(MLFLOW_TRACKING_URI=mlflow_server, MLFLOW_EXPERIMENT_NAME=exp)
    sc = holder = None
    try:
        env = eval_env(ring, spool, MLFLOW_INSPECT_TRACING="true", **dest)
        holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE,
                                  text=True)
        assert holder.stdout.readline().strip() == "ready"
        ts.run_eval(env, tmp_path / "logs", "plain", str(SAMPLES))
        sc = ts.Sidecar(mlflow_server, ring, spool, exp, RINGFLOW_TRACE_MEM_MB="2",
                        RINGFLOW_SHUTDOWN_MS="60000")
        client = MlflowClient(mlflow_server)
        # Every sample's trace in, OK, while the holder's trace is still open
        # (its root ends only when the sidecar stops: 600 s timeout).
        n, deadline = 0, time.time() + 150
        while time.time() < deadline:
            e = client.get_experiment_by_name(exp)
            if e:
                infos = client.search_traces(locations=[e.experiment_id], max_results=500,
                                             include_spans=False)
                n = sum(1 for t in infos if t.info.state == "OK"
                        and t.info.tags.get("mlflow.traceName", "").startswith("sample:"))
                if n >= SAMPLES:
                    break
            time.sleep(0.5)
        assert holder.poll() is None  # still open
        text = sc.log.read_text()
        assert n == SAMPLES, f"{n} of {SAMPLES} sample traces in with a trace open\n{text[-3000:]}"
        log_text = sc.stop()
        sc = None
    finally:
        if holder:
            holder.kill()
            holder.wait()
        if sc:
            ts.cleanup(sc, ring)
        if os.path.exists(f"/dev/shm{ring}"):
            os.unlink(f"/dev/shm{ring}")
    # The waiting path was taken, and nothing was lost.
    spooled = [int(v) for v in re.findall(r"\btraces_spooled=(\d+)", log_text)]
    assert spooled and max(spooled) > 0, log_text[-3000:]
    assert "traces_failed=0" in log_text and "spans_failed=0" in log_text, log_text[-3000:]


def test_traces_waiting_for_their_span_batch_fill_it(mlflow_server, tmp_path):
    """A trace whose info MLflow has taken waits in memory for its span batch
    (it cannot wait on disk), and once such traces weigh a quarter of
    RINGFLOW_TRACE_MEM_MB their batch goes early.  Kept deflated (~2 KB per
    Inspect sample, not ~11 KB of text) a quarter of 2 MiB holds ~250 of
    them, so 300 samples go in a few batches: 6 (as text: 9-10), each trace
    complete."""
    from inspect_ai.log import read_eval_log
    from mlflow import MlflowClient

    ring = f"/rf-pytest-tmem3-{os.getpid()}"
    spool = tmp_path / "spool"
    exp = f"rf-trace-mem3-{os.getpid()}-{time.time_ns() % 10**6}"
    proxy = FaultProxy(mlflow_server)
    sc = ts.Sidecar(proxy.url, ring, spool, exp, RINGFLOW_TRACE_MEM_MB="2")
    try:
        env = eval_env(ring, spool, MLFLOW_INSPECT_TRACING="true", MLFLOW_TRACKING_URI=proxy.url,
                       MLFLOW_EXPERIMENT_NAME=exp)
        log = read_eval_log(ts.run_eval(env, tmp_path / "logs", "plain", "300"))
        client = MlflowClient(mlflow_server)
        ts.wait_finished(client, exp, 300)  # FINISHED once its traces are in
        log_text = sc.stop()
    finally:
        ts.cleanup(sc, ring)
        proxy.close()
    e = client.get_experiment_by_name(exp)
    traces = client.search_traces(locations=[e.experiment_id], max_results=500)
    got = by_sample(traces)
    assert set(got) == {(str(s.id), s.epoch) for s in log.samples}
    assert all(t.info.state == "OK" for t in traces)
    assert len({len(t.data.spans) for t in traces}) == 1  # identical samples: no span missing
    assert "traces_failed=0" in log_text and "spans_failed=0" in log_text, log_text[-3000:]
    batches = proxy.counts["/v1/traces"]
    assert 1 <= batches <= 8, (batches, dict(proxy.counts))
