"""Three simulated hosts uploading to one MLflow server.

Each "host" is a network namespace joined to the test's namespace by a veth
pair (10.A.i.2 inside, 10.A.i.1 outside).  Inside each one run its own
ringflowd (its own ring name: /dev/shm is shared across network namespaces)
and its own producers: a real Inspect eval (the hook) and bench/loadgen.
They reach the MLflow server only over the veth, at the host-side address
(the server listens on 0.0.0.0).  Every run, sample metric and token sum
must be present, from every host.  Needs root (ip netns); skipped with the
reason when namespaces cannot be made.  The namespaces and links are removed
even when the test fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MlflowServer
from test_hook import EVALS, eval_env
from test_load import LOADGEN, check_tasks, counters, wait_all_finished
from test_sidecar import RINGFLOWD, history, runs_of

HOSTS = 3
SAMPLES = 20


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check)


class Netns:
    def __init__(self, i: int, tag: str, net: int):
        self.name = f"rf{tag}h{i}"
        self.host_if, self.ns_if = f"rf{tag}o{i}", f"rf{tag}i{i}"
        self.outside, self.inside = f"10.{net}.{i}.1", f"10.{net}.{i}.2"

    def up(self) -> None:
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.name)
        sh("ip", "addr", "add", f"{self.outside}/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        for cmd in (["ip", "addr", "add", f"{self.inside}/24", "dev", self.ns_if],
                    ["ip", "link", "set", self.ns_if, "up"], ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", self.name, *cmd)

    def down(self) -> None:
        sh("ip", "netns", "del", self.name, check=False)  # takes its end of the veth along
        sh("ip", "link", "del", self.host_if, check=False)

    def cmd(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


def start_sidecar(ns: Netns, uri: str, ring: str, spool: Path, exp: str, log: Path):
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, RINGFLOW_RING=ring,
               RINGFLOW_SPOOL_DIR=str(spool), MLFLOW_EXPERIMENT_NAME=exp, RINGFLOW_FLUSH_MS="100",
               # SIGTERM flushes everything: the runs end before the last
               # traces are in, and a loaded CI host needs more than 10 s.
               RINGFLOW_SHUTDOWN_MS="120000")
    spool.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(ns.cmd(str(RINGFLOWD)), env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"))
    deadline = time.time() + 20
    while "serving ring" not in log.read_text():
        assert proc.poll() is None and time.time() < deadline, log.read_text()
        time.sleep(0.02)
    return proc


@pytest.mark.skipif(not LOADGEN.exists(), reason="bench/loadgen not built (make)")
def test_three_hosts_one_mlflow_server(tmp_path):
    from mlflow.tracking import MlflowClient
    from inspect_ai.log import read_eval_log

    tag = f"{os.getpid() % 10000}"
    net = 200 + os.getpid() % 50
    hosts = [Netns(i, tag, net) for i in range(1, HOSTS + 1)]
    try:
        for h in hosts:
            h.up()
    except subprocess.CalledProcessError as e:
        for h in hosts:
            h.down()
        pytest.skip(f"missing capability: cannot make network namespaces ({e.stderr.strip()})")
    allowed = "".join(f",{h.outside}:*" for h in hosts)
    server = MlflowServer(tmp_path / "mlflow", host="0.0.0.0", workers=2, allowed_hosts=allowed)
    exp = f"rf-multihost-{os.getpid()}-{time.time_ns() % 10**6}"
    procs: list[subprocess.Popen] = []
    sidecars: list[subprocess.Popen] = []
    rings = [f"/rf-pytest-mh{i}-{os.getpid()}" for i in range(1, HOSTS + 1)]
    try:
        server.start()
        logs = []
        for h, ring in zip(hosts, rings):
            d = tmp_path / h.name
            uri = f"http://{h.outside}:{server.port}"
            log = tmp_path / f"{h.name}.ringflowd.log"
            sidecars.append(start_sidecar(h, uri, ring, d / "spool", exp, log))
            logs.append(log)
            # The Inspect evals ask for traces (one per sample); loadgen's
            # C records carry no trace switch.
            env = eval_env(ring, d / "spool", MLFLOW_INSPECT_TRACING="true",
                           MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME=exp)
            procs.append(subprocess.Popen(
                h.cmd(sys.executable, str(EVALS), "plain", str(d / "logs"), str(SAMPLES)),
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            procs.append(subprocess.Popen(
                h.cmd(str(LOADGEN), f"mh{tag}{h.name}", "1", "2", "3000", "100"),
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        locations, tasks = [], []
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err[-3000:]
            if "loadgen" in p.args[-6]:
                tasks += [json.loads(x) for x in out.splitlines() if '"eval_id"' in x]
            else:
                locations.append(out.strip().splitlines()[-3])
        client = MlflowClient(server.uri)
        # Per host: the eval's parent + task run, loadgen's parent + 2 tasks.
        wait_all_finished(client, exp, HOSTS * (2 + 3), 300)
        texts = []
        for sc in sidecars:
            sc.send_signal(signal.SIGTERM)
            assert sc.wait(timeout=150) == 0
        texts = [log.read_text() for log in logs]
        check_tasks(client, exp, tasks)  # loadgen: every record, every host
        parents, children = runs_of(client, exp)
        for loc in locations:  # the Inspect evals: every run and sample metric
            log = read_eval_log(loc)
            (c,) = [r for r in children if r.data.tags["inspect.eval_id"] == log.eval.eval_id]
            assert c.info.status == "FINISHED"
            assert c.data.metrics["total_samples"] == SAMPLES
            steps = sorted(m.step for m in history(client, c.info.run_id, "sample/total_time"))
            assert steps == list(range(SAMPLES))
            assert len(history(client, c.info.run_id, "sample/includes")) == SAMPLES
            (p,) = [r for r in parents if r.data.tags["inspect.run_id"] == log.eval.run_id]
            assert p.info.status == "FINISHED"
            # Every sample's trace, linked to this host's task run, with its spans.
            traces = client.search_traces(locations=[c.info.experiment_id],
                                          run_id=c.info.run_id, max_results=500)
            assert len(traces) == SAMPLES
            assert {t.info.tags["inspect.sample_id"] for t in traces} == \
                {str(s.id) for s in log.samples}
            assert all(t.info.state.value == "OK" and t.data.spans for t in traces)
        assert len(parents) + len(children) == HOSTS * 5
        for t in texts:  # each sidecar served its own host's records, none lost
            c = counters(t)
            assert c["malformed"] == 0 and c["rejected"] == 0 and c["ring_dropped"] == 0
            assert c["runs_created"] == 5, t[-2000:]
            assert "traces_failed=0" in t and "spans_failed=0" in t, t[-2000:]
    finally:
        for p in procs + sidecars:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.stop()
        for h in hosts:
            h.down()
        for ring in rings:
            if os.path.exists(f"/dev/shm{ring}"):
                os.unlink(f"/dev/shm{ring}")
    assert not any(h.name in sh("ip", "netns", "list").stdout for h in hosts)
