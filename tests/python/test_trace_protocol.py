"""The trace upload protocol, seen from MLflow's side while it happens.

A real Inspect eval (150 samples, one trace each, all linked to the task run)
through ringflowd into a real MLflow server behind a proxy that answers span
batches 1.5 s late, so traces pile up behind each batch (as with a busy
server) and the next one could carry more than 100 of them.  Meanwhile a
reader polls through MLflow's Python client (search_traces with spans,
get_trace) and the UI's get-trace-artifact endpoint.

What a user relies on:
  - a trace is never readable in a broken state: whenever the client returns
    spans they are all of them, and whenever the trace reads OK/ERROR its
    spans, tags and assessments are all there (a trace still arriving reads
    as "not exported yet" or IN_PROGRESS); the UI endpoint never fails;
  - every trace is linked to its run even when more than 100 share one run
    and a batch carries more than 100 of them: the link is the info's
    mlflow.sourceRun, which the UI's run page and search_traces(run_id=...)
    read (ringflowd sends no x-mlflow-run-id, whose link_traces_to_run
    refuses more than 100 traces per request): the server log shows no link
    failure.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request

import test_sidecar as ts
from conftest import MlflowServer
from faultproxy import FaultProxy
from test_hook import eval_env

SAMPLES = 150


def test_traces_never_read_broken_and_all_linked(tmp_path, monkeypatch):
    # No background job processes (~1.4 GB): nothing here needs them.
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    srv = MlflowServer(tmp_path / "mlflow")
    try:
        srv.start()
        _check(srv, tmp_path)
    finally:
        srv.stop()


def _check(srv: MlflowServer, tmp_path) -> None:
    import mlflow
    from mlflow import MlflowClient

    proxy = FaultProxy(srv.uri, delay={"/v1/traces": 1.5})
    ring = f"/rf-pytest-proto-{os.getpid()}"
    exp = f"rf-proto-{os.getpid()}-{time.time_ns() % 10**6}"
    client = MlflowClient(srv.uri)
    mlflow.set_tracking_uri(srv.uri)
    seen: list[tuple] = []        # (trace_id, state, spans or None, tags, assessments)
    errors: list[str] = []
    stop = threading.Event()

    def reader():
        exp_id = None
        while not stop.is_set():
            try:
                if exp_id is None:
                    e = client.get_experiment_by_name(exp)
                    exp_id = e.experiment_id if e else None
                    time.sleep(0.2)
                    continue
                for t in client.search_traces(locations=[exp_id], max_results=500):
                    seen.append((t.info.trace_id, str(t.info.state), len(t.data.spans),
                                 dict(t.info.tags), len(t.info.assessments or [])))
                infos = client.search_traces(locations=[exp_id], max_results=500,
                                             include_spans=False)
                for t in [i for i in infos if "IN_PROGRESS" in str(i.info.state)][:2]:
                    tr = mlflow.get_trace(t.info.trace_id, silent=True)
                    if tr is not None:
                        seen.append((tr.info.trace_id, str(tr.info.state), len(tr.data.spans),
                                     dict(tr.info.tags), len(tr.info.assessments or [])))
                for t in infos[-3:]:
                    url = (f"{srv.uri}/ajax-api/2.0/mlflow/get-trace-artifact"
                           f"?request_id={t.info.trace_id}")
                    try:
                        urllib.request.urlopen(url, timeout=60).read()
                    except urllib.error.HTTPError as err:
                        errors.append(f"UI get-trace-artifact {t.info.trace_id}: {err.code}")
            except Exception as err:  # noqa: BLE001 - any client failure is the finding
                errors.append(f"{type(err).__name__}: {str(err)[:300]}")
            time.sleep(0.2)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    sc = ts.Sidecar(proxy.url, ring, tmp_path / "spool", exp, RINGFLOW_SHUTDOWN_MS="180000")
    try:
        env = eval_env(ring, tmp_path / "spool", MLFLOW_INSPECT_TRACING="true", **sc.dest)
        ts.run_eval(env, tmp_path / "logs", "plain", str(SAMPLES))
        log_text = sc.stop()
    finally:
        stop.set()
        th.join(timeout=120)
        ts.cleanup(sc, ring)
        proxy.close()
    assert "traces_failed=0" in log_text and "spans_failed=0" in log_text, log_text[-3000:]
    e = client.get_experiment_by_name(exp)
    final = {t.info.trace_id: t for t in
             client.search_traces(locations=[e.experiment_id], max_results=500)}
    assert len(final) == SAMPLES
    for t in final.values():
        assert "OK" in str(t.info.state)
        assert t.info.request_preview and t.info.response_preview
        assert len(t.info.assessments) == 1  # includes()
        assert t.info.tags["inspect.sample_id"]

    # Every trace linked to the task run, no request refused by the server.
    _, (task_run,) = ts.runs_of(client, exp)
    run_id = task_run.info.run_id
    linked = client.search_traces(locations=[e.experiment_id], run_id=run_id,
                                  max_results=500, include_spans=False)
    assert len(linked) == SAMPLES
    # The UI's run page lists a run's traces by this metadata key.
    assert {t.info.trace_metadata.get("mlflow.sourceRun") for t in final.values()} == {run_id}
    server_log = (tmp_path / "mlflow" / "server.log").read_text(errors="replace")
    assert "Failed to link" not in server_log, server_log[-3000:]

    # Never broken while uploading.
    assert not errors, errors[:5]
    assert seen, "the reader saw no trace while the upload ran"
    for tid, state, nspans, tags, nass in seen:
        f = final[tid]
        if nspans:
            assert nspans == len(f.data.spans), f"{tid}: {nspans} of {len(f.data.spans)} spans"
        if "OK" in state or "ERROR" in state:
            assert nspans == len(f.data.spans), f"{tid} read {state} with {nspans} spans"
            missing = {k for k in f.info.tags if k.startswith("inspect.") and k not in tags}
            assert not missing, f"{tid} read {state} without tags {missing}"
            assert nass == len(f.info.assessments), f"{tid} read {state} with {nass} assessments"
