"""make bench-e2e: the same real Inspect eval with no hook, with ringflow, and
with inspect-mlflow from PyPI, each against a fresh local MLflow server.

Per trial (one size, one mode, one repeat):
  - a fresh `mlflow server` (SQLite, one worker, from .venv) whose uvicorn
    access log counts every request it answered;
  - bench/hook_eval.py (mockllm with a tool call and usage per call, two
    scorers) run by the mode's interpreter:
      nohook          .venv, RINGFLOW_DISABLED=1 and no MLFLOW_TRACKING_URI
                      (the ringflow hook is registered but off: no hook acts)
      ringflow        .venv with this repo's package; ringflowd started here
                      (so its CPU time and VmHWM are measured); tracing on
                      (MLFLOW_INSPECT_TRACING=true) when ringflowd has it
      inspect_mlflow  .venv-inspect-mlflow (bench/requirements-inspect-mlflow
                      .txt), tracking + MLFLOW_INSPECT_TRACING=true
      ringflow_tracking, inspect_mlflow_tracking
                      the same two with tracing off (MLFLOW_INSPECT_TRACING
                      =false): runs, params, metrics and artifacts only
  - visible_after_s: from the moment eval() returned until everything the
    integration writes for this eval is queryable (see visible() below): the
    end of the poll that found it all, so it includes that poll's own reads
    (at 10,000 samples: two metric histories of 10,000 values, 20 pages of
    traces);
  - finished_after_s: the same poll's moment its run search answered with
    every run FINISHED.  ringflowd ends a run only once its metrics,
    artifacts and traces are in (the FINISHED hold), so for ringflow this is
    when everything was in; the rest of the poll checks it;
  - server_cpu_s: the MLflow server's CPU over the trial, the harness's
    read-back included; server_cpu_finished_s: up to the moment of
    finished_after_s (what the integration's own requests cost it, plus
    the run searches of the poll until then);
  - http_requests: requests in the server's access log, minus /health and
    minus this harness's own reads (they go through a counting proxy).
Modes alternate within each repeat (rotated order), so machine drift hits all
of them alike.  After the runs of one size, the ringflow and inspect_mlflow
data read from MLflow are compared: per-sample scores and token totals.

One JSON object per line on stdout ("bench": "e2e"): one per trial, one
"summary" per size and mode (medians, ratio_vs_nohook), one "check" per size.
A trial that could not finish before --deadline is reported as
{"not_measured": "time"}, never estimated.  Every trial line carries the
1-minute load average at its start and end (load1, load1_end) and the
invocation it belongs to (the invocation line's date), so a report can pair
each trial with the no-hook trial of the same repeat.

    python bench/e2e.py [--sizes 100,1000,10000] [--modes nohook,ringflow,inspect_mlflow]
                        [--repeats 100:3,1000:1,10000:1] [--once inspect_mlflow,...]
                        [--max-samples 100] [--deadline 19:30] [--latency-ms 0]

--latency-ms N (BENCH_LATENCY_MS) gives every sample N ms of model latency
(bench/hook_eval.py: an async sleep, no CPU), so the eval runs at a real
model's pace instead of mockllm's instant answers; 0 (default) is the stress
case where the eval makes samples as fast as Inspect can.

--once names modes that run in the first repeat only (inspect-mlflow is 8-20x
slower than no hook: its one trial can cost as much as all the others).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from faultproxy import FaultProxy  # noqa: E402  (counts the harness's own reads)

VENV_PY = REPO / ".venv" / "bin" / "python"
IM_PY = REPO / ".venv-inspect-mlflow" / "bin" / "python"
# BENCH_RINGFLOWD: another build of ringflowd (an A/B of two commits).
RINGFLOWD = Path(os.environ.get("BENCH_RINGFLOWD") or REPO / "build" / "release" / "bin" / "ringflowd")
EVAL = REPO / "bench" / "hook_eval.py"
MODES = ("nohook", "ringflow", "inspect_mlflow", "ringflow_tracking", "inspect_mlflow_tracking")
DEFAULT_MODES = ("nohook", "ringflow", "inspect_mlflow")
EXPERIMENT = "bench-e2e"
SCORERS = ("match", "includes")
TOKENS = ("input_tokens", "output_tokens", "total_tokens")
MODEL = "mockllm/model"
DEBUG = os.environ.get("BENCH_DEBUG") == "1"
ACCESS = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD) (\S+) HTTP/[\d.]+" (\d+)')


def log(msg: str) -> None:
    print(f"e2e: {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def ringflow_tracing() -> bool:
    """Does this ringflowd upload traces?  BENCH_RINGFLOW_TRACING=0/1 decides;
    otherwise its --help says so (it lists traces as not implemented until then)."""
    forced = os.environ.get("BENCH_RINGFLOW_TRACING")
    if forced in ("0", "1"):
        return forced == "1"
    h = subprocess.run([str(RINGFLOWD), "--help"], capture_output=True, text=True).stdout
    return "MLFLOW_INSPECT_TRACING" in h and not re.search(r"Not yet implemented[^\n]*\n?[^\n]*traces", h)


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_where(match) -> float:
    """CPU seconds (own + reaped children) of every live process for which
    match(pgid, comm) is true: the one /proc reader of the benches."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
            fields = rest.split()
            if match(int(fields[2]), head.split("(", 1)[1]):
                total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return total


def group_cpu(pgid: int) -> float:
    """CPU seconds of every live process in a process group (server + workers)."""
    return cpu_where(lambda g, _comm: g == pgid)


def stop_group(proc) -> None:
    """Stop a server started in its own session (it and its workers): TERM, then KILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A fresh `mlflow server` (SQLite, one worker); its access log is the request count."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access = tmp / "access.log"
        # MLFLOW_MODEL_CATALOG_URI="": the first LLM span naming a provider makes
        # the server fetch model prices; offline that stalls ~7 s (not ours to measure).
        # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job runner processes (idle,
        # they hold ~1.4 GB and poll on their own), as tests/python/conftest.py.
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                   MLFLOW_MODEL_CATALOG_URI="", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env.pop("MLFLOW_TRACKING_URI", None)
        self.proc = subprocess.Popen(
            [str(VENV_PY), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
             "--artifacts-destination", str(tmp / "artifacts"), "--serve-artifacts",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=open(self.access, "wb"), stderr=open(tmp / "server.err", "wb"), env=env,
            start_new_session=True)
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"mlflow server did not start: {(tmp / 'server.err').read_text()[-2000:]}")
                time.sleep(0.3)

    def requests(self) -> Counter:
        c: Counter = Counter()
        for line in self.access.read_text(errors="replace").splitlines():
            m = ACCESS.search(line)
            if m:
                c[m.group(2).split("?")[0]] += 1
        return c

    def cpu(self) -> float:
        return group_cpu(self.proc.pid)

    def stop(self) -> None:
        stop_group(self.proc)


# ---- what "visible" means ---------------------------------------------------

def expected_traces(mode: str, samples: int, tracing: bool) -> int:
    """Traces each integration's design writes for one eval: ringflow one per
    sample; inspect-mlflow 0.9.0 one per eval() run (its sample spans live
    inside it: inspect_mlflow/tracing.py, on_run_start)."""
    if not tracing:
        return 0
    return samples if mode.startswith("ringflow") else 1


def task_run(client, exp_id: str):
    """The run with the per-sample metrics (both integrations: a child run per task)."""
    runs = client.search_runs([exp_id], max_results=1000)
    return runs, next((r for r in runs if f"{SCORERS[0]}/accuracy" in r.data.metrics
                       or f"sample/{SCORERS[0]}" in r.data.metrics), None)


def count_traces(client, exp_id: str) -> tuple[int, Counter]:
    n, states, token = 0, Counter(), None
    while True:
        page = client.search_traces(locations=[exp_id], max_results=500, page_token=token,
                                    include_spans=False)
        for t in page:
            n += 1
            states[str(t.info.state).rsplit(".", 1)[-1]] += 1
        token = page.token
        if not token:
            return n, states


def visible(client, samples: int, traces: int, exp: list, at: dict, cpu=None) -> tuple[bool, str]:
    """Everything queryable: every run in the experiment FINISHED; the task run
    has the task metrics (<scorer>/accuracy for both scorers, total_samples,
    usage/<model>/{input,output,total}_tokens) and `samples` steps of
    sample/<scorer> for both scorers; at least `traces` traces in the
    experiment (in any state: inspect-mlflow's one trace per run never leaves
    IN_PROGRESS, its root span is never exported; the states are reported).
    Cheap checks first, so polling loads the server as little as it can.
    at["finished"]: when the run search answered with every run FINISHED,
    and at["cpu"] then cpu() (the server's CPU, before any read-back).
    Returns (done, what is missing)."""
    if not exp:
        e = client.get_experiment_by_name(EXPERIMENT)
        if e is None:
            return False, "experiment"
        exp.append(e.experiment_id)
    runs, tr = task_run(client, exp[0])
    if tr is None:
        return False, "task run"
    unfinished = [r.info.run_id for r in runs if r.info.status != "FINISHED"]
    if unfinished:
        return False, f"{len(unfinished)} runs not FINISHED"
    if "finished" not in at:
        at["finished"] = time.time()
        if cpu:
            at["cpu"] = cpu()
    need = [f"{s}/accuracy" for s in SCORERS] + ["total_samples"] + [f"usage/{MODEL}/{t}" for t in TOKENS]
    missing = [k for k in need if k not in tr.data.metrics]
    if missing:
        return False, f"task metrics {missing}"
    for s in SCORERS:
        n = len(client.get_metric_history(tr.info.run_id, f"sample/{s}"))
        if n < samples:
            return False, f"sample/{s} {n}/{samples}"
    if traces:
        n, _ = count_traces(client, exp[0])
        if n < traces:
            return False, f"traces {n}/{traces}"
    return True, ""


TRACES_PENDING = "traces "  # visible() got as far as the traces: runs and metrics are in


def fingerprint(client, tmp: Path) -> dict:
    """What the consistency check compares, read from MLflow: per-sample scores
    (the inspect/sample_scores.json table both write, keyed by sample id, and
    the sample/<scorer> metric values) and the task's token totals."""
    e = client.get_experiment_by_name(EXPERIMENT)
    _, tr = task_run(client, e.experiment_id)
    fp: dict = {"tokens": {t: tr.data.metrics.get(f"usage/{MODEL}/{t}") for t in TOKENS},
                "accuracy": {s: tr.data.metrics.get(f"{s}/accuracy") for s in SCORERS},
                "metric_values": {s: sorted(Counter(m.value for m in client.get_metric_history(
                    tr.info.run_id, f"sample/{s}")).items()) for s in SCORERS}}
    try:
        path = client.download_artifacts(tr.info.run_id, "inspect/sample_scores.json", str(tmp))
        table = json.load(open(path))
        cols, rows = table["columns"], table["data"]
        fp["score_columns"] = cols
        fp["scores"] = {}
        for row in rows:
            d = dict(zip(cols, row))
            key = str(d.get("sample_id"))
            scorer = d.get("scorer")
            fp["scores"].setdefault(key, {})[scorer] = (d.get("raw_value"), d.get("numeric_value"))
    except Exception as ex:  # noqa: BLE001 - a missing table is reported, not fatal
        fp["scores_error"] = repr(ex)[:300]
    return fp


def compare(a: dict, b: dict) -> tuple[bool, list]:
    diffs = []
    for k in ("tokens", "accuracy", "metric_values"):
        if a.get(k) != b.get(k):
            diffs.append({k: {"ringflow": a.get(k), "inspect_mlflow": b.get(k)}})
    sa, sb = a.get("scores"), b.get("scores")
    if sa is None or sb is None:
        diffs.append({"scores": "table missing", "ringflow": a.get("scores_error"),
                      "inspect_mlflow": b.get("scores_error")})
    else:
        keys = sorted(set(sa) | set(sb))
        bad = [k for k in keys if sa.get(k) != sb.get(k)]
        if bad:
            diffs.append({"scores": f"{len(bad)} of {len(keys)} samples differ",
                          "first": [{"sample_id": k, "ringflow": sa.get(k), "inspect_mlflow": sb.get(k)}
                                    for k in bad[:3]]})
    return not diffs, diffs


def endpoint(path: str) -> str:
    """Request paths by endpoint: artifact files and trace ids folded."""
    if path.startswith("/api/2.0/mlflow-artifacts/artifacts/"):
        return "/api/2.0/mlflow-artifacts/artifacts/*"
    return re.sub(r"/traces/tr-[0-9a-f]+/", "/traces/*/", path)


# ---- one trial --------------------------------------------------------------

def trial(mode: str, samples: int, max_samples: int, repeat: int, tracing_rf: bool,
          deadline: float, want_fp: bool, visible_limit: float = 0,
          invocation: str = "", latency_ms: int = 0) -> tuple[dict, dict | None]:
    from mlflow.tracking import MlflowClient

    visible_limit = visible_limit or max(300, samples * 0.3)
    with tempfile.TemporaryDirectory(prefix=f"rf-e2e-{mode}-") as tmp:
        tmp = Path(tmp)
        server = Server(tmp)
        proxy = FaultProxy(server.url)
        sidecar = None
        ring = f"/rf-bench-e2e-{os.getpid()}-{mode}"
        row: dict = {"bench": "e2e", "samples": samples, "mode": mode, "repeat": repeat,
                     "invocation": invocation, "max_samples": max_samples, "latency_ms": latency_ms,
                     "start": time.strftime("%H:%M:%S", time.gmtime()),
                     "load1": round(os.getloadavg()[0], 2)}
        if os.environ.get("BENCH_RINGFLOWD") and mode.startswith("ringflow"):
            row["ringflowd"] = str(RINGFLOWD)  # another build: say which
        fp = None
        try:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("MLFLOW_", "RINGFLOW_", "INSPECT_MLFLOW_"))}
            env.update(MLFLOW_EXPERIMENT_NAME=EXPERIMENT, INSPECT_LOG_DIR=str(tmp / "logs"),
                       MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                       RF_BENCH_LATENCY_MS=str(latency_ms))
            tracing = False
            if mode == "nohook":
                py = VENV_PY
                env["RINGFLOW_DISABLED"] = "1"
            elif mode in ("ringflow", "ringflow_tracking"):
                py = VENV_PY
                tracing = tracing_rf and mode == "ringflow"
                env.update(MLFLOW_TRACKING_URI=server.url, RINGFLOW_RING=ring,
                           RINGFLOW_SPOOL_DIR=str(tmp / "spool"), RINGFLOW_AUTOSTART="0")
                env["MLFLOW_INSPECT_TRACING"] = "true" if tracing else "false"
                (tmp / "spool").mkdir()
                sidecar = subprocess.Popen([str(RINGFLOWD)], env=env, stdout=subprocess.DEVNULL,
                                           stderr=open(tmp / "ringflowd.log", "wb"))
                time.sleep(0.5)
                if sidecar.poll() is not None:
                    raise SystemExit(f"ringflowd exited: {(tmp / 'ringflowd.log').read_text()[-2000:]}")
            else:
                py = IM_PY
                tracing = mode == "inspect_mlflow"
                env.update(MLFLOW_TRACKING_URI=server.url,
                           MLFLOW_INSPECT_TRACING="true" if tracing else "false")
            row["tracing"] = tracing
            # The harness's client is built and warmed up (lazy imports, first
            # connection) before the eval, so the first poll is not seconds late.
            client = MlflowClient(proxy.url)
            client.search_experiments(max_results=1)
            client.search_traces(locations=["0"], max_results=1, include_spans=False)
            result = tmp / "result.json"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_cpu0 = server.cpu()
            t_start = time.time()
            timeout = min(deadline - t_start, 6 * 3600)
            if timeout < 10:
                raise TimeoutError
            out, err = open(tmp / "eval.out", "wb"), open(tmp / "eval.err", "wb")
            p = subprocess.Popen([str(py), str(EVAL), str(samples), str(max_samples), str(tmp / "logs"),
                                  str(result)], env=env, stdout=out, stderr=err)
            exited: list[float] = []  # when the process ended, whatever the polling is doing
            waiter = threading.Thread(target=lambda: (p.wait(), exited.append(time.time())), daemon=True)
            waiter.start()
            try:
                # eval() returned (result.json) or the process ended: polling
                # starts at once, while a hook may still be flushing at exit.
                while not result.exists() and not exited:
                    if time.time() - t_start > timeout:
                        raise TimeoutError
                    time.sleep(0.05)
                if exited and not result.exists():
                    waiter.join()
                    raise SystemExit(f"{mode} eval failed: {(tmp / 'eval.err').read_text()[-3000:]}")
                time.sleep(0.05)
                res = json.loads(result.read_text())
                row["eval_s"] = round(res["eval_s"], 3)
                if DEBUG:
                    log(f"  +{time.time() - res['end_epoch']:.2f}s eval() returned")
                vis = None
                if mode != "nohook":
                    want = expected_traces(mode, samples, tracing)
                    row["expected_traces"] = want
                    why, exp = "", []
                    limit = min(deadline, time.time() + visible_limit)
                    # The server's CPU when every run read FINISHED: what
                    # the integration cost it, before this harness's read-back.
                    at: dict = {}
                    while time.time() < limit:
                        ok, why = visible(client, samples, want, exp, at, server.cpu)
                        if (ok or why.startswith(TRACES_PENDING)) and "runs_metrics_visible_after_s" not in row:
                            row["runs_metrics_visible_after_s"] = round(time.time() - res["end_epoch"], 3)
                        if DEBUG:
                            log(f"  +{time.time() - res['end_epoch']:.2f}s {why or 'visible'}")
                        if ok:
                            vis = time.time() - res["end_epoch"]
                            row["finished_after_s"] = round(at["finished"] - res["end_epoch"], 3)
                            break
                        time.sleep(0.1)
                # no --deadline: inf, which join() cannot take; a day is as good
                waiter.join(timeout=min(max(10, deadline - time.time()), 86400))
                if waiter.is_alive():
                    raise TimeoutError
                # when the eval process ended (hooks flushing at exit)
                row["exit_after_eval_s"] = round(exited[0] - res["end_epoch"], 2)
            except (subprocess.TimeoutExpired, TimeoutError):
                p.kill()
                waiter.join()
                raise TimeoutError from None
            if p.returncode:
                raise SystemExit(f"{mode} eval failed: {(tmp / 'eval.err').read_text()[-3000:]}")
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            row["eval_process_cpu_s"] = round(after.ru_utime + after.ru_stime
                                              - before.ru_utime - before.ru_stime, 2)
            if mode != "nohook":
                row["visible_after_s"] = round(vis, 3) if vis is not None else None
                if vis is None:  # the eval's own figures stand; this one is reported missing
                    row["not_visible"] = why + (" at the deadline" if time.time() >= deadline
                                                else f" after {visible_limit:.0f} s")
            if sidecar:
                row["sidecar_cpu_s"] = round(proc_cpu(sidecar.pid), 3)
                row["sidecar_peak_rss_mb"] = round(proc_hwm_mb(sidecar.pid), 1)
                sidecar.send_signal(signal.SIGTERM)
                sidecar.wait(timeout=60)
                # the exit summary spans several logfmt lines: each counter's last value
                stats = dict(re.findall(r"\b(\w+)=(\d+)\b", (tmp / "ringflowd.log").read_text()))
                row["sidecar_stats"] = {k: int(v) for k, v in stats.items()
                                        if k in ("events", "metrics", "requests", "lost", "spilled",
                                                 "traces", "spans", "errors", "retries")}
            if mode != "nohook":
                e = client.get_experiment_by_name(EXPERIMENT)
                runs, _ = task_run(client, e.experiment_id)
                row["runs"] = len(runs)
                if row.get("expected_traces"):
                    n, states = count_traces(client, e.experiment_id)
                    row["traces"] = n
                    row["trace_states"] = dict(states)
                if want_fp:
                    fp = fingerprint(client, tmp)
            time.sleep(0.3)  # the last access-log lines
            row["server_cpu_s"] = round(server.cpu() - server_cpu0, 2)
            if mode != "nohook" and "cpu" in at:
                row["server_cpu_finished_s"] = round(at["cpu"] - server_cpu0, 2)
            reqs = server.requests()
            mine = proxy.counts
            by_path = Counter()
            for k, v in reqs.items():
                if k != "/health":
                    by_path[endpoint(k)] += v - mine.get(k, 0)
            by_path = +by_path  # drop zeros
            row["http_requests"] = sum(by_path.values())
            row["requests_by_path"] = dict(by_path.most_common(12))
            row["load1_end"] = round(os.getloadavg()[0], 2)
        except TimeoutError:
            row = {"bench": "e2e", "samples": samples, "mode": mode, "repeat": repeat,
                   "invocation": invocation, "max_samples": max_samples, "not_measured": "time"}
        finally:
            if sidecar and sidecar.poll() is None:
                sidecar.kill()
                sidecar.wait()
            proxy.close()
            server.stop()
            try:
                os.unlink(f"/dev/shm{ring}")
            except FileNotFoundError:
                pass
        return row, fp


def pair_ratios(rows: list[dict], mode: str, key: str = "eval_s") -> list[float]:
    """`key` (eval_s, eval_process_cpu_s) of each trial of `mode` over the
    no-hook trial's of the same invocation and repeat (the modes of one repeat
    run back to back)."""
    base = {(r.get("invocation"), r["repeat"]): r[key] for r in rows
            if r["mode"] == "nohook" and r.get(key)}
    return [round(r[key] / base[(r.get("invocation"), r["repeat"])], 4) for r in rows
            if r["mode"] == mode and r.get(key) is not None and (r.get("invocation"), r["repeat"]) in base]


def summarize(rows: list[dict], samples: int, modes: list[str]) -> list[dict]:
    """Medians per mode, with the spread: eval_s min-max, and ratio_vs_nohook
    both as median/median and as min-max of the per-repeat pair ratios."""
    out = []
    done = {m: [r for r in rows if r["mode"] == m and "eval_s" in r] for m in modes}
    base = statistics.median(r["eval_s"] for r in done["nohook"]) if done.get("nohook") else None
    for m in modes:
        rs = done[m]
        s: dict = {"bench": "e2e", "summary": True, "samples": samples, "mode": m, "trials": len(rs)}
        if not rs:
            s["not_measured"] = "time"
            out.append(s)
            continue
        med = lambda k: statistics.median(r[k] for r in rs if r.get(k) is not None) \
            if any(r.get(k) is not None for r in rs) else None  # noqa: E731
        s["eval_s"] = round(med("eval_s"), 3)
        s["eval_s_runs"] = [r["eval_s"] for r in rs]
        s["eval_s_range"] = [min(s["eval_s_runs"]), max(s["eval_s_runs"])]
        s["ratio_vs_nohook"] = round(s["eval_s"] / base, 4) if base else None
        pr = pair_ratios(rows, m)
        s["ratio_pairs"] = pr
        s["ratio_pairs_range"] = [min(pr), max(pr)] if pr else None
        cpu = [r["eval_process_cpu_s"] for r in rs if r.get("eval_process_cpu_s")]
        base_cpu = [r["eval_process_cpu_s"] for r in done.get("nohook", []) if r.get("eval_process_cpu_s")]
        s["cpu_ratio_vs_nohook"] = round(statistics.median(cpu) / statistics.median(base_cpu), 4) \
            if cpu and base_cpu else None
        pc = pair_ratios(rows, m, "eval_process_cpu_s")
        s["cpu_ratio_pairs_range"] = [min(pc), max(pc)] if pc else None
        for k in ("http_requests", "visible_after_s", "finished_after_s", "runs_metrics_visible_after_s",
                  "sidecar_cpu_s", "sidecar_peak_rss_mb", "server_cpu_s", "server_cpu_finished_s",
                  "eval_process_cpu_s"):
            v = med(k)
            s[k] = None if v is None else (round(v, 3) if isinstance(v, float) else v)
        if m != "nohook":
            s["visible_all"] = all(r.get("visible_after_s") is not None for r in rs)
            s["tracing"] = rs[0].get("tracing")
            s["traces"] = rs[0].get("traces")
        if m.startswith("ringflow"):
            s["sidecar_peak_rss_mb_max"] = max(r["sidecar_peak_rss_mb"] for r in rs)
        loads = [x for r in rs for x in (r.get("load1"), r.get("load1_end")) if x is not None]
        s["load1_range"] = [min(loads), max(loads)] if loads else None
        out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "100,1000,10000"))
    ap.add_argument("--modes", default=os.environ.get("BENCH_MODES", ",".join(DEFAULT_MODES)),
                    help=f"subset of {','.join(MODES)}")
    ap.add_argument("--repeats", default=os.environ.get("BENCH_REPEATS", "100:3,1000:1,10000:1"),
                    help="SIZE:N,... (sizes not listed: 1)")
    ap.add_argument("--once", default=os.environ.get("BENCH_ONCE", ""),
                    help="modes that run in the first repeat only (e.g. inspect_mlflow)")
    ap.add_argument("--max-samples", type=int, default=int(os.environ.get("BENCH_MAX_SAMPLES", "100")))
    ap.add_argument("--deadline", default=os.environ.get("BENCH_DEADLINE", ""),
                    help="HH:MM UTC today: trials not finished by then are 'not measured (time)'")
    ap.add_argument("--visible-limit", type=float, default=float(os.environ.get("BENCH_VISIBLE_LIMIT", "0")),
                    help="seconds to wait for visibility after eval() (default max(300, 0.3 s x samples))")
    ap.add_argument("--latency-ms", type=int, default=int(os.environ.get("BENCH_LATENCY_MS") or 0),
                    help="model latency per sample (async sleep), ms; 0: mockllm's instant answers")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",") if x]
    modes = [m for m in a.modes.split(",") if m]
    once = {m for m in a.once.split(",") if m}
    for m in modes + sorted(once):
        if m not in MODES:
            raise SystemExit(f"unknown mode {m}")
    if not 50 <= a.max_samples <= 200:
        raise SystemExit("--max-samples must be 50..200 (the issue's range)")
    reps = {int(k): int(v) for k, v in (x.split(":") for x in a.repeats.split(",") if x)}
    deadline = float("inf")
    if a.deadline:
        hh, mm = (int(x) for x in a.deadline.split(":"))
        now = datetime.now(timezone.utc)
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    tracing_rf = ringflow_tracing()
    log(f"sizes {sizes} modes {modes} max_samples {a.max_samples} ringflow tracing {tracing_rf}")
    date = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(json.dumps({"bench": "e2e", "invocation": {
        "sizes": sizes, "modes": modes, "repeats": {n: reps.get(n, 1) for n in sizes},
        "once": sorted(once),
        "max_samples": a.max_samples, "latency_ms": a.latency_ms, "deadline": a.deadline or None,
        "ringflow_tracing": tracing_rf,
        "date": date, "load": [round(x, 2) for x in os.getloadavg()], "nice": os.nice(0),
        "commit": subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip() or None,
        "command": os.environ.get("BENCH_COMMAND", "python bench/e2e.py " + " ".join(sys.argv[1:]))}}),
        flush=True)
    for n in sizes:
        rows, fps = [], {}
        for rep in range(reps.get(n, 1)):
            order = modes[rep % len(modes):] + modes[:rep % len(modes)]
            for m in order:
                if rep and m in once:
                    continue
                if time.time() >= deadline:
                    row, fp = {"bench": "e2e", "samples": n, "mode": m, "repeat": rep, "invocation": date,
                               "max_samples": a.max_samples, "not_measured": "time"}, None
                else:
                    log(f"{n} samples, {m}, repeat {rep}")
                    row, fp = trial(m, n, a.max_samples, rep, tracing_rf, deadline,
                                    want_fp=(m != "nohook" and m not in fps), visible_limit=a.visible_limit,
                                    invocation=date, latency_ms=a.latency_ms)
                if fp is not None:
                    fps[m] = fp
                rows.append(row)
                print(json.dumps(row), flush=True)
        for s in summarize(rows, n, modes):
            print(json.dumps(s), flush=True)
        for rf, im in (("ringflow", "inspect_mlflow"), ("ringflow_tracking", "inspect_mlflow_tracking")):
            if rf in fps and im in fps:
                ok, diffs = compare(fps[rf], fps[im])
                print(json.dumps({"bench": "e2e", "check": f"{rf}_vs_{im}", "samples": n,
                                  "match": ok, "differences": diffs,
                                  "tokens": fps[rf]["tokens"],
                                  "score_rows": len(fps[rf].get("scores") or {})}), flush=True)


if __name__ == "__main__":
    main()
