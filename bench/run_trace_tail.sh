#!/usr/bin/env bash
# Traced evals: how long until everything is in MLflow after the eval ends
# (SQLite, 1 and 4 server workers, 4 being mlflow server's default: 20, 56 and
# 300 samples), and the PostgreSQL-backed
# server with 1 and 4 workers (300 samples, live and drained).  Raw lines:
# bench/results/trace_tail.jsonl; bench/trace_tail_report.py prints the
# "Small traced evals" and "Workers" sections of bench/RESULTS.md from them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/trace_tail.jsonl
py=.venv/bin/python
: >"$out"
run() {
	$py bench/bench_meta.py trace_tail "$*" start >>"$out"
	nice "$py" bench/trace_tail.py "$@" | tee -a "$out"
}
run --samples 20,56,300 --workers 1,4 --repeats "${TAIL_REPEATS:-2}"
run --samples 300 --backend postgres --workers 1,4 --repeats "${TAIL_REPEATS:-2}"
run --samples 300 --backend postgres --workers 1,4 --drain --repeats "${TAIL_REPEATS:-2}"
$py bench/bench_meta.py trace_tail "end" end >>"$out"
