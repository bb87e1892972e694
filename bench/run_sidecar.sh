#!/usr/bin/env bash
# make bench-sidecar: ringflowd's throughput (bench/sidecar_bench.c: decode +
# aggregate per core, from a pre-filled ring, without and with uploads to a
# loopback sink) and a 1,000-sample eval against a real MLflow server
# (bench/sidecar_e2e.py).  JSON lines on stdout and bench/results/sidecar.jsonl;
# rewrites the "## Sidecar" section of bench/RESULTS.md (bench/sidecar_report.py).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/sidecar.jsonl
.venv/bin/python bench/bench_meta.py sidecar "make bench-sidecar" start | tee "$out"
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
for i in 1 2 3; do nice ./build/release/bench/sidecar_bench --events 700000 | tee -a "$out"; done
nice ./build/release/bench/sidecar_bench --events 700000 --sink "http://127.0.0.1:$port" | tee -a "$out"
nice .venv/bin/python bench/sidecar_e2e.py --samples 1000 --max-samples 100 | tee -a "$out"
.venv/bin/python bench/bench_meta.py sidecar "make bench-sidecar" end | tee -a "$out"
.venv/bin/python bench/sidecar_report.py "$out" | .venv/bin/python bench/results_section.py bench/RESULTS.md "Sidecar"
echo "run_sidecar.sh: wrote the Sidecar section of bench/RESULTS.md" >&2
