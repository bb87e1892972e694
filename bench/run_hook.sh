#!/usr/bin/env bash
# make bench-hook: the Inspect hook's cost (bench/hook_bench.py), as JSON lines
# on stdout and in build/bench/hook.jsonl, and the "## Hook" section of
# bench/RESULTS.md.  HOOK_BENCH_ARGS overrides the defaults (1000 samples, 3
# alternating repeats).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
out=build/bench/hook.jsonl
# shellcheck disable=SC2086
.venv/bin/python bench/hook_bench.py ${HOOK_BENCH_ARGS:---samples 1000 --repeats 3} | tee "$out"
.venv/bin/python - "$out" <<'PY' | .venv/bin/python bench/results_section.py bench/RESULTS.md "Hook"
import json, os, platform, subprocess, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
ev = [r for r in rows if "event" in r]
(ev_run,) = [r for r in rows if "eval_s_nohook" in r]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print("## Hook\n")
print("Written by `bench/run_hook.sh`; do not edit by hand.  Raw JSON lines: `build/bench/hook.jsonl`.\n")
print("- Command: `make bench-hook`")
print(f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
print(f"- Machine: {os.cpu_count()} CPUs, {cpu}, kernel {platform.release()}, Python {platform.python_version()}")
print("- Method: per event kind, the hook's own `on_sample_event` coroutine awaited on real Inspect "
      "event objects (best of 3 x N), with a consumer draining the ring; ModelEvents are delivered twice "
      "as Inspect does, so their figure is per delivery. Eval: the same mockllm eval with a tool call "
      "per sample, hook disabled vs enabled, alternating, median of the repeats.\n")
print("| event | us per event | await alone |")
print("|---|---:|---:|")
for r in ev:
    print(f"| {r['event']} | {r['us_per_event']:.2f} | {r['us_await_baseline']:.2f} |")
r = ev_run
print(f"\nEval of {r['samples']} samples (max_samples {r['max_samples']}), {r['repeats']} runs each: "
      f"no hook {r['eval_s_nohook']:.2f} s {r['runs_nohook']}, ringflow {r['eval_s_ringflow']:.2f} s "
      f"{r['runs_ringflow']}: **ratio {r['ratio']:.3f}**.\n")
worst = max(x["us_per_event"] for x in ev)
print("Goals: <= 5 us per event: **" + ("met" if worst <= 5 else "not met") + f"** (worst {worst:.2f} us); "
      "eval ratio <= 1.03: **" + ("met" if r["ratio"] <= 1.03 else "not met") + f"** ({r['ratio']:.3f}).")
PY
echo "run_hook.sh: wrote the Hook section of bench/RESULTS.md" >&2
