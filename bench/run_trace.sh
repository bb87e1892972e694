#!/usr/bin/env bash
# make bench-trace: the tracing API's cost in the calling thread (C and
# Python, ringflow) and MLflow's own tracing on the same Python program
# against a real local `mlflow server` (async logging on).  JSON lines on
# stdout and in build/bench/trace.jsonl; rewrites the "## Tracing" section of
# bench/RESULTS.md.  TRACE_BENCH_REPEATS overrides the repeats (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/trace.jsonl
: >"$out"
R=${TRACE_BENCH_REPEATS:-5}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# A real MLflow server (SQLite, one worker) for the "mlflow" impl.
tmp=$(mktemp -d /tmp/rf-trace-bench.XXXXXX)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# MLFLOW_MODEL_CATALOG_URI="": no price-catalog fetch on the first LLM span (an
# offline server stalls ~7 s on it; the bench measures ringflow, not that).
MLFLOW_DISABLE_TELEMETRY=true MLFLOW_MODEL_CATALOG_URI="" setsid .venv/bin/mlflow server --backend-store-uri "sqlite:///$tmp/mlflow.db" \
	--artifacts-destination "$tmp/artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" \
	--workers 1 >"$tmp/server.log" 2>&1 &
server=$!
trap 'kill -- -$server 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 240); do
	curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
	sleep 0.5
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { tail -20 "$tmp/server.log"; exit 1; }

for size in 10k 1m; do
	./build/release/bench/trace_bench --size "$size" --repeats "$R" | tee -a "$out"
	.venv/bin/python bench/trace_bench.py --impl ringflow --size "$size" --repeats "$R" | tee -a "$out"
	MLFLOW_DISABLE_TELEMETRY=true .venv/bin/python bench/trace_bench.py --impl mlflow --size "$size" \
		--repeats 3 --tracking-uri "http://127.0.0.1:$port" | tee -a "$out"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

.venv/bin/python bench/trace_results.py "$out" "$load_before" "$load_after" |
	.venv/bin/python bench/results_section.py bench/RESULTS.md "Tracing"
echo "run_trace.sh: wrote the Tracing section of bench/RESULTS.md" >&2
