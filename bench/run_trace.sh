#!/usr/bin/env bash
# make bench-trace: the tracing API's cost in the calling thread (C and
# Python, ringflow) and MLflow's own tracing on the same Python program
# against a real local `mlflow server` (async logging on).  JSON lines on
# stdout and in bench/results/trace.jsonl; rewrites the "## Tracing" section of
# bench/RESULTS.md.  TRACE_BENCH_REPEATS overrides the repeats (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/trace.jsonl
R=${TRACE_BENCH_REPEATS:-5}
cmd="make bench-trace${TRACE_BENCH_REPEATS:+ TRACE_BENCH_REPEATS=$TRACE_BENCH_REPEATS}"
.venv/bin/python bench/bench_meta.py trace "$cmd" start | tee "$out"

# A real MLflow server (SQLite, one worker) for the "mlflow" impl.
tmp=$(mktemp -d /tmp/rf-trace-bench.XXXXXX)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# MLFLOW_MODEL_CATALOG_URI="": no price-catalog fetch on the first LLM span (an
# offline server stalls ~7 s on it; the bench measures ringflow, not that).
# MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no idle job runner processes (~1.4 GB).
MLFLOW_DISABLE_TELEMETRY=true MLFLOW_MODEL_CATALOG_URI="" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid .venv/bin/mlflow server --backend-store-uri "sqlite:///$tmp/mlflow.db" \
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
	nice ./build/release/bench/trace_bench --size "$size" --repeats "$R" | tee -a "$out"
	nice .venv/bin/python bench/trace_bench.py --impl ringflow --size "$size" --repeats "$R" | tee -a "$out"
	MLFLOW_DISABLE_TELEMETRY=true nice .venv/bin/python bench/trace_bench.py --impl mlflow --size "$size" \
		--repeats 3 --tracking-uri "http://127.0.0.1:$port" | tee -a "$out"
done
.venv/bin/python bench/bench_meta.py trace "$cmd" end | tee -a "$out"

.venv/bin/python bench/trace_results.py "$out" |
	.venv/bin/python bench/results_section.py bench/RESULTS.md "Tracing"
echo "run_trace.sh: wrote the Tracing section of bench/RESULTS.md" >&2
