"""What each way of sending traces costs a real MLflow server, and what a
reader sees meanwhile.

    python bench/trace_protocol.py [--traces 500] [--repeats 2]
                                   [--options a_spans_first,b_info_first,...]
                                   [--check-traces 40] [--no-check]

Every trace is what ringflowd builds for one Inspect sample: 11 spans (the
sample CHAIN root, solver/scorer spans, 3 LLM calls with token usage, cost,
model and provider, a TOOL, 2 EVALUATORs), 7 tags, metadata
mlflow.sourceRun, 2 assessments with client-chosen ids, linked to one run.
Options (all upsert, all carry the same content):

  a_spans_first      today's ringflowd: OTLP/JSON span batches (<= 100 traces
                     per request with x-mlflow-run-id), then one StartTraceV3
                     per trace (state, previews, tags, metadata, assessments)
  b_info_first       StartTraceV3 first (state IN_PROGRESS, the tag
                     mlflow.trace.spansLocation=TRACKING_STORE so readers ask
                     the tracking store for spans), then the same span batches:
                     the batch carrying a trace's root span sets its final state
  b_info_first_pb    the same, spans as OTLP protobuf (application/x-protobuf)
  b_info_first_nopv  b_info_first without previews in the info (the server
                     derives them from the root span's inputs/outputs)
  c_spans_only       floor, not complete: span batches alone, tags as root
                     attributes mlflow.traceTag.<key>, no assessments
  b_info_first_notag b_info_first without the spansLocation tag (for the
                     check: what readers see then)
  b_info_first_nolink b_info_first without x-mlflow-run-id: the run link is the
                     info's mlflow.sourceRun alone (search_traces(run_id=...)
                     finds either), so a batch is bounded by spans, not by
                     link_traces_to_run's 100 traces

Each trial runs against a fresh `mlflow server` (SQLite, --workers 1,
MLFLOW_MODEL_CATALOG_URI="" so an offline server does not stall fetching model
prices on the first LLM span, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no
background job processes).  Server CPU = utime+stime (and children's) of
every process in the server's process group, read from /proc before and after
the upload; the run is created before the "before" reading.  Options are
interleaved (rotated per repeat) so load from other processes on the host hits
all alike.  Requests go from 4 threads (infos) and 1 (span batches), as the
sidecar keeps them in flight.

With checking on (default), each option is also run once with --check-traces
traces while a reader polls through MLflow's Python client
(mlflow.get_trace, MlflowClient.search_traces with spans) and the UI's
get-trace-artifact endpoint, recording every state it sees; afterwards every
trace is checked: 11 spans, state, previews, 7 tags, the run link
(search_traces(run_id=...) and the link table), 2 assessments; and the server
log is searched for link_traces_to_run errors.

One JSON line per trial ("bench": "trace_protocol"), per check
("check": option) and per option ("summary": ranges) on stdout.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import free_port, group_cpu, stop_group  # noqa: E402  (the one copy of each)

REPO = Path(__file__).resolve().parents[1]
VENV_PY = REPO / ".venv" / "bin" / "python"
OPTIONS = ("a_spans_first", "b_info_first", "b_info_first_pb", "b_info_first_nopv", "c_spans_only",
           "b_info_first_notag", "b_info_first_nolink")
MAX_LINK = 100      # MLflow's link_traces_to_run refuses more per request
MAX_SPANS = 2000    # spans per OTLP request
SPANS_PER_TRACE = 11


def log(msg: str) -> None:
    print(f"trace_protocol: {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


class Server:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "mlflow.db"
        self.logf = tmp / "server.log"
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                   # Offline, the first LLM span with mlflow.llm.provider makes the
                   # server fetch a model price catalog (a ~7 s stall); "" turns that off.
                   MLFLOW_MODEL_CATALOG_URI="",
                   # No job executor: its 8 huey processes take ~1.4 GB and poll
                   # on their own (CPU that is no request's); the rollups the
                   # requests queue for it are left unprocessed, alike for all options.
                   MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env.pop("MLFLOW_TRACKING_URI", None)
        self.proc = subprocess.Popen(
            [str(VENV_PY), "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.db}",
             "--artifacts-destination", str(tmp / "artifacts"), "--serve-artifacts",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            stdout=open(self.logf, "wb"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise SystemExit("mlflow server did not start: " + self.logf.read_text()[-2000:])
                time.sleep(0.3)

    def cpu(self) -> float:
        return group_cpu(self.proc.pid)

    def stop(self) -> None:
        stop_group(self.proc)


class Conn(threading.local):
    """One keep-alive connection per thread."""

    def __init__(self, port: int):
        self.port = port
        self.c = None

    def call(self, method: str, path: str, body: bytes | None, ctype: str = "application/json",
             headers: dict | None = None) -> tuple[int, bytes]:
        for attempt in range(3):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                h = {"Content-Type": ctype, **(headers or {})}
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = None
                if attempt == 2:
                    raise
        raise AssertionError


# ---- the traces -------------------------------------------------------------

def kv(key: str, v) -> dict:
    return {"key": key, "value": anyvalue(v)}


def anyvalue(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [anyvalue(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [kv(k, x) for k, x in v.items()]}}
    return {}


class Trace:
    """One sample's trace as ringflowd builds it."""

    def __init__(self, rng: random.Random, i: int, t0: int):
        self.tid = "%032x" % rng.getrandbits(128)
        self.id = "tr-" + self.tid
        self.i = i
        self.start = t0 + i * 50_000_000
        self.end = self.start + 2_000_000_000
        self.root = "%016x" % rng.getrandbits(64)
        q = f"What is {i} + {i}? Answer with the number only. " * 4
        self.inputs = {"input": q, "target": str(2 * i)}
        self.outputs = {"output": {"completion": str(2 * i)}, "scores": {
            "match": {"value": "C", "answer": str(2 * i)}, "includes": {"value": 1.0}}}
        spans = [self.span(self.root, None, f"sample:{i}", "CHAIN", 0, 2000, self.inputs, self.outputs,
                           {"inspect.sample_id": str(i), "inspect.epoch": 1})]
        solver = "%016x" % rng.getrandbits(64)
        scorers = "%016x" % rng.getrandbits(64)
        spans.append(self.span(solver, self.root, "solvers", "CHAIN", 1, 1500))
        spans.append(self.span(scorers, self.root, "scorers", "CHAIN", 1500, 1999))
        msgs = [{"role": "system", "content": "You are a careful calculator." * 3},
                {"role": "user", "content": q}]
        for k in range(3):
            spans.append(self.span("%016x" % rng.getrandbits(64), solver, "model:mockllm/model", "LLM",
                                   10 + 400 * k, 300 + 400 * k, {"messages": msgs, "count": 2},
                                   {"completion": str(2 * i), "stop_reason": "stop"},
                                   {"mlflow.chat.tokenUsage": {"input_tokens": 120, "output_tokens": 8,
                                                               "total_tokens": 128},
                                    "mlflow.llm.cost": {"total_cost": 0.0001},
                                    "mlflow.llm.model": "mockllm/model", "mlflow.llm.provider": "mockllm",
                                    "temperature": 0.0, "max_tokens": 256, "working_time": 0.29}))
        spans.append(self.span("%016x" % rng.getrandbits(64), solver, "tool:add", "TOOL", 1300, 1400,
                               {"function": "add", "arguments": {"a": i, "b": i}}, {"result": str(2 * i)}))
        spans.append(self.span("%016x" % rng.getrandbits(64), solver, "generate", "CHAIN", 5, 1450))
        spans.append(self.span("%016x" % rng.getrandbits(64), solver, "use_tools", "CHAIN", 2, 4))
        for name in ("match", "includes"):
            spans.append(self.span("%016x" % rng.getrandbits(64), scorers, f"score:{name}", "EVALUATOR",
                                   1500, 1990, None, {"value": "C", "answer": str(2 * i)}))
        assert len(spans) == SPANS_PER_TRACE
        self.spans = spans
        self.tags = {"mlflow.traceName": f"sample:{i}", "inspect.run_id": "run-abc",
                     "inspect.eval_id": "eval-abc", "inspect.task": "addition",
                     "inspect.sample_id": str(i), "inspect.sample_uuid": f"uuid-{self.tid[:12]}",
                     "inspect.epoch": "1"}

    def span(self, sid, parent, name, typ, a_ms, b_ms, inputs=None, outputs=None, attrs=None):
        at = dict(attrs or {})
        at["mlflow.spanType"] = typ
        if inputs is not None:
            at["mlflow.spanInputs"] = inputs
        if outputs is not None:
            at["mlflow.spanOutputs"] = outputs
        s = {"traceId": self.tid, "spanId": sid, "name": name, "kind": 1,
             "startTimeUnixNano": str(self.start + a_ms * 1_000_000),
             "endTimeUnixNano": str(self.start + b_ms * 1_000_000),
             "attributes": [kv(k, v) for k, v in at.items()], "status": {"code": 1}}
        if parent:
            s["parentSpanId"] = parent
        return s

    def info(self, exp: str, run: str, state: str, previews: bool, spans_tag: bool) -> bytes:
        t0 = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.start / 1e9)) + \
            ".%03dZ" % (self.start // 1_000_000 % 1000)
        tags = dict(self.tags)
        if spans_tag:
            tags["mlflow.trace.spansLocation"] = "TRACKING_STORE"
        ass = []
        for name, val in (("match", 1.0), ("includes", 1.0)):
            ass.append({"assessment_id": "a-" + self.tid[:24] + name[:8].ljust(8, "0").encode().hex()[:8],
                        "assessment_name": f"inspect/{name}", "trace_id": self.id, "span_id": self.root,
                        "source": {"source_type": "CODE", "source_id": "inspect_ai"},
                        "feedback": {"value": val}, "rationale": "matched",
                        "metadata": {"mlflow.assessment.sourceRunId": run}, "create_time": t0,
                        "last_update_time": t0})
        info = {"trace_id": self.id,
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
                "request_time": t0, "execution_duration": "2.000000000s", "state": state,
                "trace_metadata": {"mlflow.trace_schema.version": "3", "mlflow.sourceRun": run},
                "tags": tags, "assessments": ass}
        if previews:
            info["request_preview"] = json.dumps(self.inputs)[:1000]
            info["response_preview"] = json.dumps(self.outputs)[:1000]
        return json.dumps({"trace": {"trace_info": info, "spans": []}}).encode()


def otlp_json(spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [kv("service.name", "ringflow")]},
                               "scopeSpans": [{"scope": {"name": "ringflow", "version": "0.1"},
                                               "spans": spans}]}]}


def otlp_body(spans: list[dict], proto: bool) -> tuple[bytes, str]:
    doc = otlp_json(spans)
    if not proto:
        return json.dumps(doc).encode(), "application/json"
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for f in ("traceId", "spanId", "parentSpanId"):
            if f in s:
                s[f] = base64.b64encode(bytes.fromhex(s[f])).decode()
    return ParseDict(doc, ExportTraceServiceRequest()).SerializeToString(), "application/x-protobuf"


def span_batches(traces: list[Trace], tags_as_attrs: bool, link: bool = True) -> list[list[dict]]:
    """<= MAX_LINK traces (roots; when the request links them) and <= MAX_SPANS
    spans per request; a trace's spans in one request (its root last)."""
    out, cur, ntr = [], [], 0
    for t in traces:
        spans = [dict(s) for s in t.spans[1:]] + [dict(t.spans[0])]
        if tags_as_attrs:
            root = spans[-1]
            root["attributes"] = root["attributes"] + [kv(f"mlflow.traceTag.{k}", v) for k, v in t.tags.items()]
        if cur and ((link and ntr == MAX_LINK) or len(cur) + len(spans) > MAX_SPANS):
            out.append(cur)
            cur, ntr = [], 0
        cur.extend(spans)
        ntr += 1
    if cur:
        out.append(cur)
    return out


# ---- one upload -------------------------------------------------------------

def prepare_bodies(option: str, traces: list[Trace], exp: str, run: str):
    proto = option == "b_info_first_pb"
    info_first = option.startswith("b_")
    infos = [] if option == "c_spans_only" else [
        t.info(exp, run, "IN_PROGRESS" if info_first else "OK",
               previews=option != "b_info_first_nopv",
               spans_tag=info_first and option != "b_info_first_notag") for t in traces]
    batches = [otlp_body(b, proto) for b in span_batches(traces, option == "c_spans_only",
                                                          link=option != "b_info_first_nolink")]
    return info_first, infos, batches


def upload(srv: Server, option: str, info_first: bool, infos: list[bytes], batches, exp: str, run: str,
           tid_order: list[str] | None = None) -> dict:
    conn = Conn(srv.port)
    errors: list[str] = []
    hdr = {"x-mlflow-experiment-id": exp, "x-mlflow-run-id": run}
    if option == "b_info_first_nolink":
        del hdr["x-mlflow-run-id"]

    def send_info(body):
        st, resp = conn.call("POST", "/api/3.0/mlflow/traces", body)
        if st != 200:
            errors.append(f"StartTraceV3 {st} {resp[:200]!r}")

    def send_spans(b):
        body, ctype = b
        st, resp = conn.call("POST", "/v1/traces", body, ctype, hdr)
        if st != 200:
            errors.append(f"/v1/traces {st} {resp[:200]!r}")

    with ThreadPoolExecutor(4) as pool:
        if info_first:
            list(pool.map(send_info, infos))
            for b in batches:
                send_spans(b)
        else:
            for b in batches:
                send_spans(b)
            list(pool.map(send_info, infos))
    return {"errors": errors[:5], "n_errors": len(errors), "requests": len(infos) + len(batches),
            "span_requests": len(batches)}


def setup_run(srv: Server, name: str) -> tuple[str, str]:
    conn = Conn(srv.port)
    st, r = conn.call("POST", "/api/2.0/mlflow/experiments/create", json.dumps({"name": name}).encode())
    exp = json.loads(r)["experiment_id"]
    st, r = conn.call("POST", "/api/2.0/mlflow/runs/create",
                      json.dumps({"experiment_id": exp, "start_time": int(time.time() * 1000)}).encode())
    return exp, json.loads(r)["run"]["info"]["run_id"]


def trial(option: str, n: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="rf-tp-") as d:
        srv = Server(Path(d))
        try:
            exp, run = setup_run(srv, f"tp-{option}")
            traces = [Trace(random.Random(seed * 100003 + i), i, time.time_ns() - 3600 * 10**9)
                      for i in range(n)]
            info_first, infos, batches = prepare_bodies(option, traces, exp, run)
            time.sleep(1.0)  # let the server settle after startup
            c0, w0 = srv.cpu(), time.perf_counter()
            res = upload(srv, option, info_first, infos, batches, exp, run)
            wall = time.perf_counter() - w0
            time.sleep(0.5)
            cpu = srv.cpu() - c0
            link_errors = srv.logf.read_text(errors="replace").count("Failed to link")
            return {"bench": "trace_protocol", "option": option, "traces": n,
                    "spans_per_trace": SPANS_PER_TRACE, "server_cpu_s": round(cpu, 2),
                    "server_cpu_ms_per_trace": round(cpu * 1000 / n, 1), "wall_s": round(wall, 2),
                    "link_errors_in_server_log": link_errors, **res}
        finally:
            srv.stop()


# ---- what a reader sees -----------------------------------------------------

def check(option: str, n: int) -> dict:
    """Upload n traces while a reader polls; then verify everything."""
    import logging

    os.environ["MLFLOW_MODEL_CATALOG_URI"] = ""
    import mlflow
    from mlflow import MlflowClient

    warnings: list[str] = []

    class H(logging.Handler):
        def emit(self, rec):
            if rec.levelno >= logging.WARNING:
                warnings.append(rec.getMessage()[:200])

    logging.getLogger("mlflow").addHandler(H())
    with tempfile.TemporaryDirectory(prefix="rf-tpc-") as d:
        srv = Server(Path(d))
        try:
            mlflow.set_tracking_uri(srv.url)
            client = MlflowClient(srv.url)
            exp, run = setup_run(srv, f"tpc-{option}")
            traces = [Trace(random.Random(7 + i), i, time.time_ns() - 3600 * 10**9) for i in range(n)]
            info_first, infos, batches = prepare_bodies(option, traces, exp, run)
            seen: dict[str, set] = {}
            broken: list[str] = []
            stop = threading.Event()
            conn = Conn(srv.port)

            def note(kind: str, tr) -> None:
                if tr is None:
                    seen.setdefault(kind, set()).add("absent")
                    return
                st = str(tr.info.state).rsplit(".", 1)[-1]
                ns = len(tr.data.spans) if tr.data else 0
                na = len(tr.info.assessments or [])
                nt = sum(1 for k in traces[0].tags if k in tr.info.tags)
                seen.setdefault(kind, set()).add(f"{st}/spans={ns}/tags={nt}/assess={na}")
                if st in ("OK", "ERROR") and (ns != SPANS_PER_TRACE or nt < 7 or
                                              (option != "c_spans_only" and na != 2)):
                    broken.append(f"{kind}: final state {st} but spans={ns} tags={nt} assessments={na}")
                if ns and ns != SPANS_PER_TRACE:
                    broken.append(f"{kind}: partial trace, {ns} spans")

            def reader():
                k = 0
                while not stop.is_set():
                    k += 1
                    try:
                        got = client.search_traces(locations=[exp], max_results=500)
                        for tr in got:
                            note("search_traces", tr)
                        infos_only = client.search_traces(locations=[exp], max_results=500,
                                                          include_spans=False)
                        seen.setdefault("search_infos", set()).update(
                            str(t.info.state).rsplit(".", 1)[-1] for t in infos_only)
                        for t in infos_only[:3] + infos_only[-3:]:
                            tr = mlflow.get_trace(t.info.trace_id, silent=True)
                            note("get_trace", tr)
                            st, body = conn.call("GET", "/ajax-api/2.0/mlflow/get-trace-artifact"
                                                 f"?request_id={t.info.trace_id}", None)
                            seen.setdefault("ui_trace_artifact", set()).add(st)
                            if st != 200:
                                broken.append(f"UI get-trace-artifact {st}: {body[:120]!r}")
                    except Exception as e:  # noqa: BLE001 - every failure is an observation
                        broken.append(f"reader: {type(e).__name__}: {str(e)[:160]}")
                    time.sleep(0.02)

            th = threading.Thread(target=reader, daemon=True)
            th.start()
            # Slow the upload down so the reader sees the middle: send in slices.
            if info_first:
                for k in range(0, len(infos), 10):
                    upload(srv, option, True, infos[k:k + 10], [], exp, run)
                    time.sleep(0.3)
                for b in batches:
                    upload(srv, option, True, [], [b], exp, run)
                    time.sleep(0.5)
            else:
                for b in batches:
                    upload(srv, option, False, [], [b], exp, run)
                    time.sleep(0.5)
                for k in range(0, len(infos), 10):
                    upload(srv, option, False, infos[k:k + 10], [], exp, run)
                    time.sleep(0.3)
            time.sleep(1.0)
            stop.set()
            th.join(timeout=120)
            # After: everything complete?
            final = {}
            got = client.search_traces(locations=[exp], max_results=500)
            by_id = {t.info.trace_id: t for t in got}
            missing = [t.id for t in traces if t.id not in by_id]
            bad = []
            for t in traces:
                tr = by_id.get(t.id)
                if not tr:
                    continue
                info = tr.info
                problems = []
                if str(info.state).rsplit(".", 1)[-1] != "OK":
                    problems.append(f"state {info.state}")
                if len(tr.data.spans) != SPANS_PER_TRACE:
                    problems.append(f"{len(tr.data.spans)} spans")
                if not info.request_preview or not info.response_preview:
                    problems.append("previews")
                if any(info.tags.get(k) != v for k, v in t.tags.items()):
                    problems.append("tags")
                if option != "c_spans_only" and len(info.assessments or []) != 2:
                    problems.append(f"{len(info.assessments or [])} assessments")
                if problems:
                    bad.append((t.id, problems))
            by_run = client.search_traces(locations=[exp], run_id=run, max_results=500, include_spans=False)
            with sqlite3.connect(srv.db) as db:
                links = db.execute("select count(*) from entity_associations where source_type='trace' "
                                   "and destination_type='run' and destination_id=?", (run,)).fetchone()[0]
            final = {"traces": n, "found": len(got), "missing": len(missing), "incomplete": len(bad),
                     "incomplete_first": bad[:3], "by_run": len(by_run), "run_links": links,
                     "link_errors_in_server_log": srv.logf.read_text(errors="replace").count("Failed to link")}
            return {"check": option, "seen_while_uploading": {k: sorted(map(str, v)) for k, v in seen.items()},
                    "broken_while_uploading": len(broken), "broken_first": broken[:5],
                    "client_warnings": len(warnings), "client_warnings_first": warnings[:3], **final}
        finally:
            srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--options", default=",".join(OPTIONS))
    ap.add_argument("--check-traces", type=int, default=120)
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--no-measure", action="store_true")
    a = ap.parse_args()
    opts = [o for o in a.options.split(",") if o]
    for o in opts:
        if o not in OPTIONS:
            sys.exit(f"unknown option {o}; known: {', '.join(OPTIONS)}")
    if not a.no_check:
        for o in opts:
            log(f"check {o}")
            print(json.dumps(check(o, a.check_traces)), flush=True)
    if a.no_measure:
        return
    rows: dict[str, list[dict]] = {o: [] for o in opts}
    for r in range(a.repeats):
        order = opts[r % len(opts):] + opts[:r % len(opts)]
        for o in order:
            log(f"repeat {r + 1}/{a.repeats}: {o}, {a.traces} traces")
            try:
                row = trial(o, a.traces, seed=r)
            except (OSError, SystemExit) as e:  # a server killed (OOM on a shared host)
                print(json.dumps({"bench": "trace_protocol", "option": o, "repeat": r + 1,
                                  "not_measured": f"{type(e).__name__}: {str(e)[:200]}"}), flush=True)
                continue
            row["repeat"] = r + 1
            rows[o].append(row)
            print(json.dumps(row), flush=True)
    for o, rs in rows.items():
        if not rs:
            continue
        v = [x["server_cpu_ms_per_trace"] for x in rs]
        print(json.dumps({"summary": o, "traces": a.traces, "repeats": len(rs),
                          "server_cpu_ms_per_trace_median": round(statistics.median(v), 1),
                          "server_cpu_ms_per_trace_range": [min(v), max(v)],
                          "requests": rs[0]["requests"],
                          "wall_s_range": [min(x["wall_s"] for x in rs), max(x["wall_s"] for x in rs)],
                          "errors": sum(x["n_errors"] for x in rs),
                          "link_errors_in_server_log": sum(x["link_errors_in_server_log"] for x in rs)}),
              flush=True)


if __name__ == "__main__":
    main()
