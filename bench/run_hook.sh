#!/usr/bin/env bash
# make bench-hook: the Inspect hook's cost (bench/hook_bench.py), as JSON lines
# on stdout and in bench/results/hook.jsonl, and the "## Hook" section of
# bench/RESULTS.md (bench/hook_report.py).  HOOK_BENCH_ARGS overrides the defaults (1000 samples, 5
# alternating repeats).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/hook.jsonl
cmd="make bench-hook${HOOK_BENCH_ARGS:+ HOOK_BENCH_ARGS='$HOOK_BENCH_ARGS'}"
.venv/bin/python bench/bench_meta.py hook "$cmd" start | tee "$out"
# shellcheck disable=SC2086
nice .venv/bin/python bench/hook_bench.py ${HOOK_BENCH_ARGS:---samples 1000 --repeats 5} | tee -a "$out"
.venv/bin/python bench/bench_meta.py hook "$cmd" end | tee -a "$out"
.venv/bin/python bench/hook_report.py "$out" | .venv/bin/python bench/results_section.py bench/RESULTS.md "Hook"
echo "run_hook.sh: wrote the Hook section of bench/RESULTS.md" >&2
