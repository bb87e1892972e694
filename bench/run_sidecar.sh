#!/usr/bin/env bash
# make bench-sidecar: ringflowd's throughput (bench/sidecar_bench.c: decode +
# aggregate per core, from a pre-filled ring, without and with uploads to a
# loopback sink) and a 1,000-sample eval against a real MLflow server
# (bench/sidecar_e2e.py).  JSON lines on stdout and build/bench/sidecar.jsonl;
# rewrites the "## Sidecar" section of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/sidecar.jsonl
: >"$out"
# A loopback sink that answers 200 {} to everything (what the uploads cost us).
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/python - "$port" <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0); self.rfile.read(n)
        if self.path.endswith("runs/create"):
            body = b'{"run":{"info":{"run_id":"r%d","artifact_uri":"mlflow-artifacts:/1/r/artifacts"}}}' % id(self)
        elif "get-by-name" in self.path:
            body = b'{"experiment":{"experiment_id":"1","lifecycle_stage":"active"}}'
        else:
            body = b"{}"
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    do_GET = do_PUT = do_POST
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
sink=$!
trap 'kill $sink 2>/dev/null' EXIT
sleep 0.5
for i in 1 2 3; do ./build/release/bench/sidecar_bench --events 700000 | tee -a "$out"; done
./build/release/bench/sidecar_bench --events 700000 --sink "http://127.0.0.1:$port" | tee -a "$out"
.venv/bin/python bench/sidecar_e2e.py --samples 1000 --max-samples 100 | tee -a "$out"
.venv/bin/python - "$out" <<'PY' | .venv/bin/python bench/results_section.py bench/RESULTS.md "Sidecar"
import json, os, platform, statistics, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
dec = [r for r in rows if r.get("mode") != "e2e" and not r["uploads"]]
up = [r for r in rows if r.get("mode") != "e2e" and r["uploads"]]
(e2e,) = [r for r in rows if r.get("mode") == "e2e"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
med = statistics.median(r["events_per_s_per_core"] for r in dec)
print("## Sidecar\n")
print("Written by `bench/run_sidecar.sh`; do not edit by hand.  Raw JSON lines: `build/bench/sidecar.jsonl`.\n")
print("- Command: `make bench-sidecar`")
print(f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
print(f"- Machine: {os.cpu_count()} CPUs, {cpu}, kernel {platform.release()}\n")
print("Decode + aggregate from a pre-filled ring (synthetic eval: per sample sample_init, 2 model calls, "
      "a tool call, 2 scores, sample_end; consume -> msgpack-c decode and validation -> rf_track), "
      "CPU time of the process:\n")
print("| run | events | events/s per core | peak RSS MB |")
print("|---|---:|---:|---:|")
for i, r in enumerate(dec, 1):
    print(f"| no upload #{i} | {r['events']} | {r['events_per_s_per_core']:,.0f} | {r['peak_rss_mb']} |")
for r in up:
    print(f"| uploads to a loopback sink | {r['events']} | {r['events_per_s_per_core']:,.0f} "
          f"({r['metrics']:,} metrics in {r['http_requests']} requests, done {r['upload_after_s']} s after the drain) | {r['peak_rss_mb']} |")
print("\n(peak RSS includes the benchmark's 1 GiB ring mapping as far as it was touched.)\n")
e = e2e
print(f"Real MLflow 3.17.2 server (SQLite, one worker), {e['samples']}-sample eval (mockllm, a tool call "
      f"per sample, two scorers, max_samples {e['max_samples']}), hook -> ring -> ringflowd:\n")
print("| eval s | HTTP requests | metrics | metrics per log-batch | visible after eval end | ringflowd CPU | ringflowd peak RSS |")
print("|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {e['eval_s']} | {e['http_requests']} | {e['metrics']:,} | {e['metrics_per_request']} | "
      f"{e['visible_after_s']} s | {e['sidecar_cpu_s']} s | {e['sidecar_peak_rss_mb']} MB |")
print(f"\nRequests by endpoint: {', '.join(f'{k} {v}' for k, v in e['requests_by_path'].items())}.\n")
print("Goals (reported, not asserted): >= 2 M events/s per core: **" + ("met" if med >= 2e6 else "not met")
      + f"** (median {med:,.0f}); >= 500 metrics per request: **"
      + ("met" if e["metrics_per_request"] >= 500 else "not met") + f"** ({e['metrics_per_request']}); "
      "visible <= 2 s after eval end: **" + ("met" if (e["visible_after_s"] or 99) <= 2 else "not met")
      + f"** ({e['visible_after_s']} s); peak RSS <= 64 MiB: **"
      + ("met" if e["sidecar_peak_rss_mb"] <= 64 else "not met") + f"** ({e['sidecar_peak_rss_mb']} MB). "
      "inspect-mlflow 0.9.0 on the same eval: see the End to end section, measured side by side.")
PY
echo "run_sidecar.sh: wrote the Sidecar section of bench/RESULTS.md" >&2
