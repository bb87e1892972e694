#!/usr/bin/env bash
# make bench-e2e: the same real Inspect eval with no hook, with ringflow and
# with inspect-mlflow 0.9.0 from PyPI, each against a fresh MLflow server
# (bench/e2e.py).  JSON lines on stdout and in bench/results/e2e.jsonl (small,
# committed beside the table); rewrites the "## End to end" section of
# bench/RESULTS.md from them (bench/e2e_report.py).  Runs under nice.
#
#   BENCH_SIZES=100,1000      sizes (default 100,1000,10000; 10,000 x inspect-mlflow takes ~1.5 h)
#   BENCH_MODES=...           subset of nohook,ringflow,inspect_mlflow,ringflow_tracking,
#                             inspect_mlflow_tracking (default the first three)
#   BENCH_REPEATS=100:3,...   repeats per size (default 100:3,1000:1,10000:1)
#   BENCH_ONCE=inspect_mlflow modes run in the first repeat only
#   BENCH_DEADLINE=HH:MM      UTC: trials not done by then are "not measured (time)"
#   BENCH_APPEND=1            add to bench/results/e2e.jsonl instead of starting it
#                             afresh (e.g. the 10,000-sample runs later)
#   BENCH_LATENCY_MS=N        every sample waits N ms for its model (an async sleep):
#                             the eval at a real model's pace; raw lines in
#                             bench/results/e2e_latency.jsonl, section "End to end, model latency"
#   BENCH_RINGFLOWD=path      the ringflowd to start (default build/release/bin/ringflowd;
#                             another commit's build for an A/B, named in each trial's line)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/e2e.jsonl
section="End to end"
if [ "${BENCH_LATENCY_MS:-0}" != 0 ]; then
	out=bench/results/e2e_latency.jsonl
	section="End to end, model latency"
fi

# inspect-mlflow lives in its own venv, so neither package sees the other.
IMV=.venv-inspect-mlflow
REQ=bench/requirements-inspect-mlflow.txt
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if ! [ -x "$IMV/bin/python" ] || [ "$(cat "$IMV/.stamp" 2>/dev/null)" != "$want" ]; then
	base=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
	echo "run_e2e.sh: creating $IMV from $REQ" >&2
	rm -rf "$IMV"
	"$base" -m venv "$IMV"
	"$IMV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ" >&2
	echo "$want" >"$IMV/.stamp"
fi
.venv/bin/python -m pip install --disable-pip-version-check -q -r bench/requirements-bench.txt >&2

[ "${BENCH_APPEND:-0}" = 1 ] || : >"$out"
cmd="make bench-e2e"
for v in BENCH_SIZES BENCH_MODES BENCH_REPEATS BENCH_ONCE BENCH_DEADLINE BENCH_APPEND BENCH_LATENCY_MS; do
	[ -z "${!v:-}" ] || cmd="$cmd $v=${!v}"
done
export BENCH_COMMAND="${BENCH_COMMAND:-$cmd}"
nice .venv/bin/python bench/e2e.py | tee -a "$out"
.venv/bin/python bench/e2e_report.py --section "$section" "$out" |
	.venv/bin/python bench/results_section.py bench/RESULTS.md "$section"
echo "run_e2e.sh: wrote the $section section of bench/RESULTS.md" >&2
