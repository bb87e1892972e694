"""The "## Hook" section of bench/RESULTS.md from bench/hook_bench.py's JSON
lines (bench/results/hook.jsonl, with bench/bench_meta.py's line first).

    python bench/hook_report.py bench/results/hook.jsonl | python bench/results_section.py bench/RESULTS.md Hook

The eval ratio is given as the median over the median and, beside it, the
min-max of the per-repeat ratios (each repeat runs no hook and ringflow back
to back): a handful of ~30 s runs on a shared machine cannot carry more
precision than that spread.
"""

import json
import sys

RAW = "bench/results/hook.jsonl"


def main() -> None:
    rows = [json.loads(ln) for ln in open(sys.argv[1]) if ln.startswith("{")]
    meta = next((r["meta"] for r in rows if "meta" in r and r["meta"].get("when") == "start"), {})
    end = next((r["meta"] for r in rows if "meta" in r and r["meta"].get("when") == "end"), {})
    ev = [r for r in rows if "event" in r]
    (r,) = [x for x in rows if "eval_s_nohook" in x]
    print("## Hook\n")
    print(f"Written by `bench/run_hook.sh` (`bench/hook_bench.py` measures, `bench/hook_report.py` prints); "
          f"do not edit by hand.  Raw JSON lines: `{RAW}` (committed).\n")
    print(f"- Command: `{meta.get('command', 'make bench-hook')}`"
          + (f" at commit {meta['commit']}" if meta.get("commit") else ""))
    print(f"- Date: {meta.get('date', '?')}")
    print(f"- Machine: {meta.get('nproc', '?')} CPUs, {meta.get('cpu', '?')}, kernel {meta.get('kernel', '?')}, "
          f"Python {meta.get('python', '?')}; load average {' '.join(map(str, meta.get('load', [])))} before, "
          f"{' '.join(map(str, end.get('load', [])))} after (shared machine; the benchmark ran under nice)")
    print("- Method: per event kind, the hook's own `on_sample_event` coroutine awaited on real Inspect "
          "event objects (best of 3 x N), with a consumer draining the ring; ModelEvents are delivered twice "
          "as Inspect does, so their figure is per delivery. Eval: the same mockllm eval with a tool call "
          "per sample, hook disabled vs enabled, alternating, back to back in each repeat.\n")
    print("| event | us per event | await alone |")
    print("|---|---:|---:|")
    for e in ev:
        print(f"| {e['event']} | {e['us_per_event']:.2f} | {e['us_await_baseline']:.2f} |")
    pairs = r.get("ratio_pairs") or [r["ratio"]]
    lo, hi = min(pairs), max(pairs)
    print(f"\nEval of {r['samples']} samples (max_samples {r['max_samples']}), {r['repeats']} runs each: "
          f"no hook {min(r['runs_nohook']):.1f}-{max(r['runs_nohook']):.1f} s {r['runs_nohook']}, ringflow "
          f"{min(r['runs_ringflow']):.1f}-{max(r['runs_ringflow']):.1f} s {r['runs_ringflow']}: ratio of the "
          f"medians {r['ratio']:.2f}, **per-repeat ratios {lo:.2f}-{hi:.2f}** {pairs}.\n")
    if r.get("cpu_ratio_pairs"):
        cp = r["cpu_ratio_pairs"]
        print(f"The eval process's CPU time (utime+stime of it and its children), which the host's load moves "
              f"far less: no hook {min(r['cpu_s_nohook']):.1f}-{max(r['cpu_s_nohook']):.1f} s, ringflow "
              f"{min(r['cpu_s_ringflow']):.1f}-{max(r['cpu_s_ringflow']):.1f} s: **per-repeat ratios "
              f"{min(cp):.2f}-{max(cp):.2f}** {cp}.\n")
    worst = max(x["us_per_event"] for x in ev)
    verdict = "met" if hi <= 1.03 else "not met" if lo > 1.03 else "not shown either way (the spread straddles it)"
    cpu = ""
    if r.get("cpu_ratio_pairs"):
        clo, chi = min(r["cpu_ratio_pairs"]), max(r["cpu_ratio_pairs"])
        cpu = (f"; eval CPU ratio <= 1.03 in every repeat: **{'met' if chi <= 1.03 else 'not met' if clo > 1.03 else 'not shown either way'}**"
               f" ({clo:.2f}-{chi:.2f})")
    print("Goals: <= 5 us per event: **" + ("met" if worst <= 5 else "not met") + f"** (worst {worst:.2f} us); "
          f"eval ratio <= 1.03 in every repeat: **{verdict}** ({lo:.2f}-{hi:.2f}){cpu}.")


if __name__ == "__main__":
    main()
