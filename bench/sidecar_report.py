"""The "## Sidecar" section of bench/RESULTS.md from bench/run_sidecar.sh's
JSON lines (bench/results/sidecar.jsonl: bench/bench_meta.py's lines,
sidecar_bench's decode runs, bench/sidecar_e2e.py's eval).

    python bench/sidecar_report.py bench/results/sidecar.jsonl | python bench/results_section.py bench/RESULTS.md Sidecar
"""

import json
import statistics
import sys

RAW = "bench/results/sidecar.jsonl"


def main() -> None:
    rows = [json.loads(ln) for ln in open(sys.argv[1]) if ln.startswith("{")]
    meta = next((r["meta"] for r in rows if "meta" in r and r["meta"].get("when") == "start"), {})
    end = next((r["meta"] for r in rows if "meta" in r and r["meta"].get("when") == "end"), {})
    dec = [r for r in rows if "uploads" in r and r.get("mode") != "e2e" and not r["uploads"]]
    up = [r for r in rows if "uploads" in r and r.get("mode") != "e2e" and r["uploads"]]
    (e,) = [r for r in rows if r.get("mode") == "e2e"]
    rates = [r["events_per_s_per_core"] for r in dec]
    med = statistics.median(rates)
    P = print
    P("## Sidecar\n")
    P("Written by `bench/run_sidecar.sh` (`bench/sidecar_bench.c`, `bench/sidecar_e2e.py` measure, "
      f"`bench/sidecar_report.py` prints); do not edit by hand.  Raw JSON lines: `{RAW}` (committed).\n")
    P(f"- Command: `{meta.get('command', 'make bench-sidecar')}`"
      + (f" at commit {meta['commit']}" if meta.get("commit") else ""))
    P(f"- Date: {meta.get('date', '?')}")
    P(f"- Machine: {meta.get('nproc', '?')} CPUs, {meta.get('cpu', '?')}, kernel {meta.get('kernel', '?')}; "
      f"load average {' '.join(map(str, meta.get('load', [])))} before, "
      f"{' '.join(map(str, end.get('load', [])))} after (shared machine; run under nice)\n")
    P("Decode + aggregate from a pre-filled ring (synthetic eval: per sample sample_init, 2 model calls, "
      "a tool call, 2 scores, sample_end; consume -> msgpack-c decode and validation -> rf_track), "
      "CPU time of the process:\n")
    P("| run | events | events/s per core | peak RSS MB |")
    P("|---|---:|---:|---:|")
    for i, r in enumerate(dec, 1):
        P(f"| no upload #{i} | {r['events']} | {r['events_per_s_per_core']:,.0f} | {r['peak_rss_mb']} |")
    for r in up:
        P(f"| uploads to a loopback sink | {r['events']} | {r['events_per_s_per_core']:,.0f} "
          f"({r['metrics']:,} metrics in {r['http_requests']} requests, done {r['upload_after_s']} s after "
          f"the drain) | {r['peak_rss_mb']} |")
    P("\n(peak RSS includes the benchmark's 1 GiB ring mapping as far as it was touched.)\n")
    P(f"Real MLflow 3.17.2 server (SQLite, one worker), {e['samples']}-sample eval (mockllm, a tool call "
      f"per sample, two scorers, max_samples {e['max_samples']}), hook -> ring -> ringflowd, tracking "
      "only (no traces):\n")
    P("| eval s | HTTP requests | metrics | metrics per log-batch | visible after eval end | ringflowd CPU "
      "| ringflowd peak RSS (VmHWM) |")
    P("|---:|---:|---:|---:|---:|---:|---:|")
    P(f"| {e['eval_s']} | {e['http_requests']} | {e['metrics']:,} | {e['metrics_per_request']} | "
      f"{e['visible_after_s']} s | {e['sidecar_cpu_s']} s | {e['sidecar_peak_rss_mb']} MiB |")
    P(f"\nRequests by endpoint: {', '.join(f'{k} {v}' for k, v in e['requests_by_path'].items())}.\n")
    P("Goals (reported, not asserted): >= 2 M events/s per core: **" + ("met" if med >= 2e6 else "not met")
      + f"** (median {med:,.0f}, runs {min(rates):,.0f}-{max(rates):,.0f}); >= 500 metrics per request: **"
      + ("met" if e["metrics_per_request"] >= 500 else "not met") + f"** ({e['metrics_per_request']}); "
      "visible <= 2 s after eval end: **" + ("met" if (e["visible_after_s"] or 99) <= 2 else "not met")
      + f"** ({e['visible_after_s']} s); peak RSS <= 64 MiB, tracking only: **"
      + ("met" if e["sidecar_peak_rss_mb"] <= 64 else "not met") + f"** ({e['sidecar_peak_rss_mb']} MiB). "
      "With traces on, and inspect-mlflow 0.9.0 on the same eval: section \"End to end\".")


if __name__ == "__main__":
    main()
