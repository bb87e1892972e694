"""Operations: `ringflowd status`, `ringflowd flush`, the Prometheus endpoint
and `--help`, against a real MLflow server and a real ringflowd.  Records come
from the C example producer (examples/synthetic_eval) or a real
Inspect eval with the hook (rf_evals.py)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from test_hook import EVALS, REPO, eval_env
from test_sidecar import RINGFLOWD, Sidecar, cleanup, exp_name, runs_of  # noqa: F401 (fixture)

BUILD = REPO / "build" / "release"
SYNTH = BUILD / "examples" / "synthetic_eval"


class SlowSidecar(Sidecar):
    """A Sidecar whose metrics wait metrics_ms for company (Sidecar's 100 ms
    flush timer left at its default)."""

    def __init__(self, uri: str, ring: str, spool: Path, experiment: str, metrics_ms: int):
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, RINGFLOW_RING=ring,
                   RINGFLOW_SPOOL_DIR=str(spool), MLFLOW_EXPERIMENT_NAME=experiment,
                   RINGFLOW_METRICS_MS=str(metrics_ms))
        self.dest = dict(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME=experiment)
        spool.mkdir(parents=True, exist_ok=True)
        self.log = spool / f"ringflowd.test.{time.time_ns()}.log"
        self.proc = subprocess.Popen([str(RINGFLOWD)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "wb"))
        wait_for(lambda: "serving ring" in self.log.read_text() or self.proc.poll() is not None,
                 20, "ringflowd to start")
        assert self.proc.poll() is None, self.log.read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(ring: str, spool: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
    return subprocess.run([str(RINGFLOWD), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def eval_and_flush(tmp_path: Path, ring: str, spool: Path, samples: int,
                   **env: str) -> tuple[Any, subprocess.CompletedProcess]:
    """A plain eval of `samples` samples into the ring, then `ringflowd
    flush`: the eval's log (as Inspect wrote it) and flush's answer."""
    from inspect_ai.log import read_eval_log

    p = subprocess.run([sys.executable, str(EVALS), "plain", str(tmp_path / "logs"), str(samples)],
                       env=eval_env(ring, spool, **env), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    log = read_eval_log(p.stdout.strip().splitlines()[-3])
    f = ctl(ring, spool, "flush", "--timeout", "120")
    assert f.returncode == 0, f.stdout + f.stderr
    return log, f


def status_json(ring: str, spool: Path, *extra: str) -> tuple[int, dict]:
    p = ctl(ring, spool, "status", "--json", *extra)
    return p.returncode, json.loads(p.stdout)


def synthetic(ring: str, spool: Path, samples: int) -> int:
    """Run the C example producer; returns the number of records it wrote."""
    env = dict(os.environ, RINGFLOW_RING=ring, RINGFLOW_SPOOL_DIR=str(spool))
    p = subprocess.run([str(SYNTH), str(samples)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    m = re.search(r"(\d+) samples, (\d+) records \(\d+ redacted, 0 errors\)", p.stdout)
    assert m, p.stdout + p.stderr
    return int(m.group(2))


def wait_for(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def parse_prom(text: str) -> dict[str, float]:
    """Prometheus text format 0.0.4: every sample needs a HELP and a TYPE
    line for its family; returns {'name{labels}': value}."""
    helps, types, samples = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge"), line
            types[name] = kind
        elif line and not line.startswith("#"):
            m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"]*"\})? (\S+)', line)
            assert m, f"not a sample line: {line!r}"
            name = m.group(1)
            assert name in helps and name in types, f"{name} lacks HELP/TYPE"
            if types[name] == "counter":
                assert name.endswith("_total"), name
            samples[name + (m.group(2) or "")] = float(m.group(3))
    return samples


def scrape(port: int, path: str = "/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def metric_rows(client, experiment: str) -> int:
    """Every metric value MLflow holds in the experiment (full histories)."""
    parents, children = runs_of(client, experiment)
    return sum(len(client.get_metric_history(r.info.run_id, k))
               for r in parents + children for k in r.data.metrics)


# ---- --help on every command we ship ----

HELP_COMMANDS = [
    [str(RINGFLOWD), "--help"],
    [str(RINGFLOWD), "status", "--help"],
    [str(RINGFLOWD), "flush", "--help"],
    [str(BUILD / "bin" / "ringflow-dump"), "--help"],
    [str(SYNTH), "--help"],
    [str(BUILD / "examples" / "ring_demo"), "--help"],
    [sys.executable, str(REPO / "examples" / "demo_eval.py"), "--help"],
    [str(REPO / "scripts" / "demo.sh"), "--help"],
    [str(REPO / "scripts" / "install-deps.sh"), "--help"],
    [str(REPO / "scripts" / "venv.sh"), "--help"],
    [str(REPO / "scripts" / "pip-install.sh"), "--help"],
]


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=lambda c: " ".join(Path(x).name for x in c[-3:]))
def test_help(cmd, tmp_path):
    # A private ring name: a program that ignored --help would show up as a
    # segment (or a demo run), not as a silent pass.
    env = dict(os.environ, RINGFLOW_RING=f"/rf-pytest-help-{os.getpid()}",
               RINGFLOW_SPOOL_DIR=str(tmp_path))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert re.search(r"usage|Usage|^\S.*\n", p.stdout), p.stdout
    assert len(p.stdout.strip().splitlines()) >= 2, p.stdout
    assert not os.path.exists(f"/dev/shm/rf-pytest-help-{os.getpid()}")


# ---- status and flush without a sidecar ----

def test_status_and_flush_without_sidecar(ring, tmp_path):
    spool = tmp_path / "spool"
    p = ctl(ring, spool, "status")
    assert p.returncode == 2
    assert f"ring {ring}: does not exist" in p.stdout
    assert f"no sidecar is serving ring {ring}" in p.stdout

    # A producer creates the ring and leaves its records there: no sidecar.
    synthetic(ring, spool, 5)
    p = ctl(ring, spool, "status")
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"no sidecar is serving ring {ring}" in p.stdout
    rc, st = status_json(ring, spool)
    assert rc == 2 and st["ring_exists"] and not st["sidecar_alive"]
    assert st["ring_stats"]["used"] > 0 and st["ring_stats"]["consumer_pid"] == 0

    p = ctl(ring, spool, "flush", "--timeout", "5")
    assert p.returncode == 2
    assert f"no sidecar is serving ring {ring}" in p.stderr


# ---- status with a running sidecar ----

def test_status_counts_what_the_sidecar_took(mlflow_server, ring, tmp_path, exp_name):
    from mlflow.tracking import MlflowClient

    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name)
    try:
        n = synthetic(ring, spool, 30)
        assert ctl(ring, spool, "flush", "--timeout", "120").returncode == 0
        rc, st = status_json(ring, spool, "--interval", "300")
        assert rc == 0 and st["sidecar_alive"]
        s = st["sidecar"]
        assert s["pid"] == sc.proc.pid and s["current"]
        assert s["records_in"] == n and s["malformed"] == 0
        assert s["pending"] == 0 and s["http_pending"] == 0 and s["drained"]
        # Every attempt is counted under one outcome (a 404 is the lookup of
        # the new experiment by name, before it is created).
        assert s["http_2xx"] + s["http_4xx"] + s["http_5xx"] + s["http_errors"] == s["requests"] > 0
        assert s["http_errors"] == 0 and s["retries"] == 0 and s["rejected"] == 0
        assert s["records_out"] == s["metrics"] + s["params"] + s["tags"]
        # What status calls metrics out is what MLflow holds.
        assert s["metrics"] == metric_rows(MlflowClient(mlflow_server), exp_name)
        assert s["spool_bytes"] > 0  # the journal
        assert "records_in_per_s" in s and "records_out_per_s" in s
        assert s["tracking_uri"] == mlflow_server and s["experiment"] == exp_name

        p = ctl(ring, spool, "status")
        assert p.returncode == 0, p.stderr
        assert f"sidecar pid {sc.proc.pid}" in p.stdout
        assert re.search(rf"records in\s+{n} \(", p.stdout), p.stdout
        assert "last error: none" in p.stdout
        assert f"no sidecar" not in p.stdout

        sc.stop()
        p = ctl(ring, spool, "status")
        assert p.returncode == 2
        assert f"no sidecar is serving ring {ring}" in p.stdout
        assert f"the last one (pid {sc.proc.pid}) exited" in p.stdout
    finally:
        cleanup(sc, ring)


def test_an_eval_does_not_wake_the_sidecar_per_record(mlflow_server, ring, tmp_path, exp_name):
    """A producer pays a FUTEX_WAKE syscall, and ringflowd a loop turn, each
    time it finds ringflowd parked.  An eval's records come as a trickle (each
    sample's events as it runs), so a sidecar that parks after every batch is
    woken for nearly each record: CPU the eval loses.  ringflowd lets records
    gather after a batch; the ring's own counter of wakeups must stay a small
    fraction of the records, and `status` shows it."""
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name)
    try:
        eval_and_flush(tmp_path, ring, spool, 300, MLFLOW_INSPECT_TRACING="true", **sc.dest)
        rc, st = status_json(ring, spool, "--interval", "0")
        assert rc == 0 and st["sidecar"]["lost"] == {k: 0 for k in st["sidecar"]["lost"]}
        n, woken = st["sidecar"]["records_in"], st["ring_stats"]["wakeups"]
        assert n > 300 * 10, st  # a trace's records per sample as well
        assert 0 < woken <= n // 8, f"{woken} wakeups for {n} records"
        p = ctl(ring, spool, "status", "--interval", "200")
        assert re.search(rf"consumer woken [0-9.]+/s \({woken}\b", p.stdout), p.stdout
    finally:
        cleanup(sc, ring)


# ---- flush: everything queued is in MLflow when it returns ----

def test_flush_then_everything_is_in_mlflow(mlflow_server, ring, tmp_path, exp_name):
    """A real Inspect eval through the hook; the moment flush returns 0, MLflow
    holds every sample's score, the task-end metrics and the final status."""
    from mlflow.tracking import MlflowClient

    spool = tmp_path / "spool"
    # A slow metrics timer, so what flush waits for is really still pending.
    sc = SlowSidecar(mlflow_server, ring, spool, exp_name, metrics_ms=30000)
    try:
        log, f = eval_and_flush(tmp_path, ring, spool, 40, **sc.dest)
        assert "flushed: everything queued" in f.stdout
        # No polling from here: flush promised it is all there.
        client = MlflowClient(mlflow_server)
        parents, children = runs_of(client, exp_name)
        assert len(parents) == 1 and len(children) == 1
        child = children[0]
        assert child.info.status == "FINISHED" and parents[0].info.status == "FINISHED"
        scorer = log.results.scores[0].name
        assert len(client.get_metric_history(child.info.run_id, f"sample/{scorer}")) == len(log.samples)
        for metric, value in log.results.scores[0].metrics.items():
            assert child.data.metrics[f"{scorer}/{metric}"] == pytest.approx(value.value)
        assert child.data.metrics["total_samples"] == len(log.samples)
    finally:
        cleanup(sc, ring)


def test_flush_times_out_while_mlflow_is_unreachable(ring, tmp_path, exp_name):
    spool = tmp_path / "spool"
    sc = Sidecar(f"http://127.0.0.1:{free_port()}", ring, spool, exp_name)
    try:
        synthetic(ring, spool, 3)
        t0 = time.time()
        p = ctl(ring, spool, "flush", "--timeout", "2")
        assert p.returncode == 1, p.stdout + p.stderr
        assert time.time() - t0 < 30
        assert "timed out after 2 s" in p.stderr
        assert "Couldn't connect" in p.stderr  # the last error, said plainly
        rc, st = status_json(ring, spool, "--interval", "0")
        assert rc == 0
        s = st["sidecar"]
        assert s["http_errors"] > 0 and s["retries"] > 0 and not s["drained"]
        assert s["pending"] > 0  # what waits for the experiment is counted
        p = ctl(ring, spool, "status", "--interval", "0")
        assert re.search(r"last error \(\d+s ago\): .*Couldn't connect", p.stdout), p.stdout
    finally:
        cleanup(sc, ring)


# ---- Prometheus ----

def test_prometheus_endpoint(mlflow_server, ring, tmp_path, exp_name):
    from mlflow.tracking import MlflowClient

    spool = tmp_path / "spool"
    port = free_port()
    sc = Sidecar(mlflow_server, ring, spool, exp_name, RINGFLOW_METRICS_PORT=str(port))
    try:
        n = synthetic(ring, spool, 25)
        assert ctl(ring, spool, "flush", "--timeout", "120").returncode == 0
        code, ctype, text = scrape(port)
        assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
        m = parse_prom(text)
        assert m["ringflow_up"] == 1
        assert m["ringflow_records_in_total"] == n
        assert m['ringflow_logged_total{kind="metric"}'] == metric_rows(MlflowClient(mlflow_server), exp_name)
        assert m["ringflow_records_out_total"] == sum(
            m[f'ringflow_logged_total{{kind="{k}"}}'] for k in ("metric", "param", "tag"))
        assert m["ringflow_batches_total"] >= 1
        assert m['ringflow_http_requests_total{status="2xx"}'] >= m["ringflow_batches_total"]
        for bad in ('ringflow_http_requests_total{status="5xx"}',
                    'ringflow_http_requests_total{status="error"}', "ringflow_retries_total",
                    "ringflow_rejected_total",
                    "ringflow_dropped_total", "ringflow_abandoned_total",
                    "ringflow_malformed_total", "ringflow_pending", "ringflow_http_pending"):
            assert m[bad] == 0, bad
        assert m["ringflow_spool_bytes"] > 0
        # No traces, nothing held back: the trace-memory and intake series
        # are there, at 0 (a dashboard needs them before they move).
        for k in ("ringflow_trace_mem_bytes", "ringflow_traces_spooled",
                  "ringflow_traces_spooled_total", "ringflow_trace_spool_bytes",
                  "ringflow_intake_paused_seconds_total",
                  *(f'ringflow_intake_{s}{{reason="{r}"}}' for s in ("paused", "pauses_total")
                    for r in ("spool_full", "memory", "journal"))):
            assert m[k] == 0, k
        assert m["ringflow_trace_mem_max_bytes"] == 4 << 20  # RINGFLOW_TRACE_MEM_MB default
        # The same numbers as status shows.
        _, st = status_json(ring, spool, "--interval", "0")
        assert st["sidecar"]["records_out"] == m["ringflow_records_out_total"]
        assert st["sidecar"]["gate"] == "open" and st["sidecar"]["trace_mem_max"] == 4 << 20
        # Counters only grow: more records, scraped again.
        n2 = synthetic(ring, spool, 5)
        # The second synthetic eval logs into the same run with another
        # dataset.samples: MLflow refuses that param as changed; the rest
        # lands, and flush says what was lost (it used to exit 0).
        f = ctl(ring, spool, "flush", "--timeout", "120")
        assert f.returncode == 4 and "rejected 1" in f.stderr, f.stdout + f.stderr
        m2 = parse_prom(scrape(port)[2])
        assert m2['ringflow_lost_total{kind="rejected"}'] == 1
        assert m2["ringflow_records_in_total"] == n + n2
        assert m2["ringflow_records_out_total"] > m["ringflow_records_out_total"]
        with pytest.raises(urllib.error.HTTPError) as e:
            scrape(port, "/other")
        assert e.value.code == 404
    finally:
        cleanup(sc, ring)


def listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets `pid` listens on (ss, as root)."""
    p = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True)
    return [line.split()[3] for line in p.stdout.splitlines() if f"pid={pid}," in line]


def test_metrics_loopback_only_and_off_by_default(mlflow_server, ring, tmp_path, exp_name):
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name)
    try:
        assert listening(sc.proc.pid) == []  # no port unless asked for
    finally:
        sc.stop()
        cleanup(sc, ring)
    port = free_port()
    sc = Sidecar(mlflow_server, ring, spool, exp_name, RINGFLOW_METRICS_PORT=str(port))
    try:
        assert listening(sc.proc.pid) == [f"127.0.0.1:{port}"]
        # Reachable on loopback, refused on this host's other addresses.
        assert scrape(port)[0] == 200
        addrs = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        others = [a for a in addrs if ":" not in a and not a.startswith("127.")]
        if not others:
            pytest.skip("no non-loopback IPv4 address to try (loopback-only binding was checked)")
        for a in others:
            with pytest.raises(OSError):
                socket.create_connection((a, port), timeout=3).close()
    finally:
        cleanup(sc, ring)


def test_metrics_port_in_use_is_an_error(mlflow_server, ring, tmp_path, exp_name):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server, RINGFLOW_RING=ring,
                   RINGFLOW_SPOOL_DIR=str(tmp_path), RINGFLOW_METRICS_PORT=str(port))
        p = subprocess.run([str(RINGFLOWD)], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in p.stderr


def test_flush_covers_traces_and_counters_match(mlflow_server, ring, tmp_path, exp_name):
    """With MLFLOW_INSPECT_TRACING=true, flush returns once every sample's
    trace is in MLflow, and status and /metrics count what MLflow shows."""
    from mlflow.tracking import MlflowClient

    spool = tmp_path / "spool"
    port = free_port()
    sc = Sidecar(mlflow_server, ring, spool, exp_name, RINGFLOW_METRICS_PORT=str(port))
    try:
        log, _ = eval_and_flush(tmp_path, ring, spool, 12, MLFLOW_INSPECT_TRACING="true",
                                **sc.dest)
        client = MlflowClient(mlflow_server)
        exp = client.get_experiment_by_name(exp_name)
        traces = client.search_traces(locations=[exp.experiment_id], max_results=500,
                                      include_spans=False)
        assert len(traces) == len(log.samples)  # one trace per sample, all there now
        _, st = status_json(ring, spool, "--interval", "0")
        s = st["sidecar"]
        assert s["traces"] == s["traces_done"] == len(traces)
        assert s["traces_failed"] == 0 and s["spans_failed"] == 0 and s["spans_sent"] > 0
        m = parse_prom(scrape(port)[2])
        assert m["ringflow_traces_done_total"] == len(traces)
        assert m["ringflow_spans_sent_total"] == s["spans_sent"]
        out = ctl(ring, spool, "status", "--interval", "0").stdout
        assert f"traces {len(traces)} (in MLflow {len(traces)}, failed 0" in out, out
    finally:
        cleanup(sc, ring)
