"""Render bench/results/trace.jsonl as the "## Tracing" section of bench/RESULTS.md.

    trace_results.py bench/results/trace.jsonl   (bench/run_trace.sh; bench/bench_meta.py's
                                                  start and end lines give date, machine, load)
"""
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
meta = next((r["meta"] for r in lines if "meta" in r and r["meta"].get("when") == "start"), {})
end = next((r["meta"] for r in lines if "meta" in r and r["meta"].get("when") == "end"), {})
rows = [r for r in lines if "lang" in r]
import mlflow
def get(lang, impl, size):
    return next(r for r in rows if r["lang"] == lang and r["impl"] == impl and r["size"] == size)
print("## Tracing\n")
print("Written by `bench/run_trace.sh` (`bench/trace_results.py` prints); do not edit by hand.  "
      "Raw JSON lines: `bench/results/trace.jsonl` (committed).\n")
print(f"- Command: `{meta.get('command', 'make bench-trace')}`" + (f" at commit {meta['commit']}" if meta.get("commit") else ""))
print(f"- Date: {meta.get('date', '?')}")
print(f"- Machine: {meta.get('nproc', '?')} CPUs, {meta.get('cpu', '?')}, kernel {meta.get('kernel', '?')}, "
      f"Python {meta.get('python', '?')}, MLflow {mlflow.__version__}; load average "
      f"{' '.join(map(str, meta.get('load', [])))} before, {' '.join(map(str, end.get('load', [])))} after "
      "(shared machine; run under nice)")
print("- Method: one program per language: a root CHAIN span calling an LLM-typed function spans-1 times, each "
      "with a text input and output; 10 spans of ~1 KB (a ~10 KB trace) or 100 spans of ~10 KB (~1 MB). "
      "C: `rf_span_start`/`rf_span_end` (bench/trace_bench.c, a consumer thread drains the ring); Python: the "
      "`@trace` decorator (bench/trace_bench.py; ringflow-dump drains the ring); MLflow: the same Python program "
      "with `import mlflow` and `MLFLOW_ENABLE_ASYNC_TRACE_LOGGING=true`, against a local `mlflow server` "
      "(SQLite). **ns/span** = (median wall time of one traced call - median of the same call untraced) / spans: "
      "the time the caller loses; the median keeps preemption by other processes out. **CPU ns/span**: the "
      "calling thread's CPU time per span over all calls. trace bytes: C, the records' bytes; Python, the ring "
      "bytes (records, headers and claim padding); MLflow, `len(Trace.to_json())`. MLflow's export runs in its "
      "own thread after the call returns; `flush s` is `mlflow.flush_trace_async_logging()` after each "
      "repeat (not in ns/span).\n")
print("| lang | impl | trace size | spans | trace bytes | ns/span (median; min-max of repeats) | CPU ns/span | flush s |")
print("|---|---|---|---:|---:|---:|---:|---|")
for r in rows:
    fl = ", ".join(f"{x:.2f}" for x in r.get("flush_s", [])) or "-"
    lo, hi = r["ns_per_span_runs"]
    print(f"| {r['lang']} | {r['impl']} | {r['size']} | {r['spans_per_trace']} | {r['trace_bytes']:,} | "
          f"{r['ns_per_span']:,.0f} ({lo:,.0f}-{hi:,.0f}) | {r['cpu_ns_per_span']:,.0f} | {fl} |")
print("\nGoals (reported, not asserted):\n")
for size in ("10k", "1m"):
    c = get("c", "ringflow", size)["ns_per_span"]
    py = get("python", "ringflow", size)["ns_per_span"]
    ml = get("python", "mlflow", size)["ns_per_span"]
    ratio = ml / py if py > 0 else float("inf")
    mc = get("python", "mlflow", size)["cpu_ns_per_span"]
    pc = get("python", "ringflow", size)["cpu_ns_per_span"]
    cratio = mc / pc if pc > 0 else float("inf")
    print(f"- {size}: C <= 200 ns/span: **{'met' if c <= 200 else 'not met'}** ({c:,.0f} ns); "
          f"Python <= 3 us/span: **{'met' if py <= 3000 else 'not met'}** ({py/1000:.2f} us); "
          f">= 100x less caller time than MLflow's tracing: **{'met' if ratio >= 100 else 'not met'}** "
          f"({ratio:,.0f}x in wall time: {ml/1000:,.1f} us vs {py/1000:.2f} us; in the calling "
          f"thread's CPU time {cratio:,.0f}x: {mc/1000:,.1f} us vs {pc/1000:.2f} us, MLflow's wall "
          f"time also counting its export thread holding the GIL)")
