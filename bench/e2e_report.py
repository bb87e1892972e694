"""The "## End to end" section of bench/RESULTS.md from the JSON lines of
bench/e2e.py (one or more invocations appended to one file: the trials of a
size and mode add up, medians and ranges are computed here from the trial
lines, with bench/e2e.py's own summarize()).

    python bench/e2e_report.py bench/results/e2e.jsonl [--sizes 1000]

Only measured sizes are listed: nothing is extrapolated.  Prints the markdown
section on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e import MODES, pair_ratios, summarize  # noqa: E402  (the same medians and pair ratios as the harness)

LABEL = {"nohook": "(a) no hook", "ringflow_tracking": "(b0) ringflow, tracking only",
         "ringflow": "(b) ringflow, tracing on",
         "inspect_mlflow_tracking": "(c0) inspect-mlflow 0.9.0, tracking only",
         "inspect_mlflow": "(c) inspect-mlflow 0.9.0, tracing on"}
ORDER = ("nohook", "ringflow_tracking", "inspect_mlflow_tracking", "ringflow", "inspect_mlflow")
PAIRS = (("ringflow_tracking", "inspect_mlflow_tracking"), ("ringflow", "inspect_mlflow"))
RAW = "bench/results/e2e.jsonl"


def load(paths: list[str]):
    """Trials, checks, invocations and notes of every file; the summaries are
    recomputed here from all trials of a size and mode (several invocations
    add up), never taken from a file."""
    checks, trials, invs = {}, [], []
    notes: list[str] = []
    for p in paths:
        if not Path(p).exists():
            continue
        for line in open(p):
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("bench") != "e2e":
                continue
            if isinstance(r.get("invocation"), dict):  # trials name theirs by its date
                invs.append(r["invocation"])
            elif "note" in r:  # a line added by whoever ran it: conditions worth knowing
                notes.append(r["note"])
            elif r.get("summary"):
                continue
            elif "check" in r:
                checks[(r["samples"], r["check"])] = r
            else:
                trials.append(r)
    summ = {}
    for n in sorted({t["samples"] for t in trials}):
        rows = [t for t in trials if t["samples"] == n]
        modes = [m for m in MODES if any(t["mode"] == m for t in rows)]
        if "nohook" not in modes:
            modes.insert(0, "nohook")
        for s in summarize(rows, n, modes):
            if s["trials"]:
                summ[(n, s["mode"])] = s
    return summ, checks, trials, invs, notes


def fmt(v, spec="{:.2f}", none="—"):
    return none if v is None else spec.format(v)


def rng(v, spec="{:.2f}"):
    """'a-b' of a [min, max] pair, or the one value when they are equal."""
    if not v:
        return "—"
    lo, hi = v
    return spec.format(lo) if spec.format(lo) == spec.format(hi) else f"{spec.format(lo)}-{spec.format(hi)}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl", nargs="+")
    ap.add_argument("--section", default="End to end", help="the section's title")
    ap.add_argument("--sizes", default=os.environ.get("BENCH_REPORT_SIZES", ""),
                    help="sizes to list (default: the measured ones)")
    a = ap.parse_args()
    summ, checks, trials, invs, notes = load(a.jsonl)
    sizes = [int(x) for x in a.sizes.split(",") if x] or sorted({n for n, _ in summ})
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    P = print
    raw = a.jsonl[0] if len(a.jsonl) == 1 else RAW
    P(f"## {a.section}\n")
    P("Written by `bench/run_e2e.sh` (`bench/e2e.py` measures, `bench/e2e_report.py` prints this "
      f"section from the raw lines); do not edit by hand.  Raw JSON lines: `{raw}` (committed).  "
      f"Regenerate: `.venv/bin/python bench/e2e_report.py --section \"{a.section}\" {raw} | .venv/bin/python "
      f"bench/results_section.py bench/RESULTS.md \"{a.section}\"`.\n")
    P("- Commands (each line of the raw file's invocations):")
    for inv in invs:
        P(f"  - `{inv['command']}` at {inv['date']}" + (f" (commit {inv['commit']})" if inv.get("commit") else "")
          + f": sizes {inv['sizes']}, modes {', '.join(inv['modes'])} (in this order, rotated per repeat), "
          f"repeats {inv['repeats']}"
          + (f" ({', '.join(inv['once'])} in the first only)" if inv.get("once") else "")
          + f", max_samples {inv['max_samples']}, "
          + (f"model latency {inv['latency_ms']} ms per sample, " if inv.get("latency_ms") else "")
          + f"load average {' '.join(f'{x:.1f}' for x in inv['load'])} at the start"
          + (f", nice {inv['nice']}" if inv.get("nice") is not None else "")
          + (f", deadline {inv['deadline']} UTC" if inv.get("deadline") else ""))
    for note in notes:
        P(f"  - Note: {note}")
    loads = [x for t in trials for x in (t.get("load1"), t.get("load1_end")) if x is not None]
    P(f"- Machine: {os.cpu_count()} CPUs, {cpu}, kernel {platform.release()}, Python "
      f"{platform.python_version()}; shared with other jobs: 1-min load average at the trials' starts "
      "and ends " + (f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?") + ".")
    P("- Eval: `bench/hook_eval.py`, N samples, mockllm with usage set on every call, a tool call "
      "(`multiply`) then an answer per sample, scorers `match` and `includes`"
      + ("; each sample first waits the model latency named above (an async sleep: no CPU, the eval "
         "runs at a real model's pace)" if any(i.get("latency_ms") for i in invs) else
         " (instant answers: the eval makes samples as fast as Inspect can, the stress case)")
      + ".  Each trial gets a fresh "
      "`mlflow server` 3.17.2 (SQLite, one worker, no job runner, no model price catalog) on loopback.  "
      "(a) no hook: ringflow installed but `RINGFLOW_DISABLED=1`, no `MLFLOW_TRACKING_URI`; (b) ringflow: "
      "this repo's hook + a `ringflowd` the harness starts; (c) inspect-mlflow 0.9.0 from PyPI in its own "
      "venv (`bench/requirements-inspect-mlflow.txt`).  Tracking only (b0, c0): "
      "`MLFLOW_INSPECT_TRACING=false`; tracing on (b, c): `MLFLOW_INSPECT_TRACING=true`.  Modes alternate "
      "within each repeat; figures are medians over the trials, ranges are min-max.")
    P("- `vs no hook`: median eval time over the median no-hook eval time, and in parentheses the min-max "
      "of each trial's ratio to the no-hook trial of the same repeat (its neighbour in time).  "
      "`HTTP requests`: lines in the server's uvicorn access log, minus `/health` and minus the harness's "
      "own reads (counted by a proxy it reads through).  `visible after`: from `eval()` returning until "
      "every run of the experiment is FINISHED, the task run has `<scorer>/accuracy`, `total_samples`, "
      "`usage/mockllm/model/{input,output,total}_tokens` and N steps of `sample/match` and "
      "`sample/includes`, and, tracing on, the traces are listed (ringflow: one per sample = N; "
      "inspect-mlflow: its design writes one per eval run = 1, which stays IN_PROGRESS because its root "
      "span is never exported).  Polled every 0.1 s through the MLflow client; the time is the end of the "
      "poll that read all of it back, which at 10,000 samples itself takes seconds (two metric histories "
      "of 10,000 values, 20 pages of traces): issue 17's goal below also gives when that poll saw every "
      "run FINISHED.  `exit after eval`: when "
      "the eval process ended, after `eval()` returned (hooks flushing at exit).  Sidecar CPU and peak RSS "
      "(VmHWM in MiB, the largest over the trials) are ringflowd's, read when everything is visible.  "
      "MLflow server CPU: utime+stime of the server's process group during the trial.  Eval process CPU: "
      "utime+stime of the eval process and its children (`getrusage`), and beside it the same ratio to no "
      "hook as for wall time.\n")
    P("| samples | mode | trials | eval s (min-max) | vs no hook (pairs min-max) | HTTP requests | "
      "visible after s | exit after eval s | sidecar CPU s | sidecar peak RSS MiB | MLflow server CPU s "
      "| eval process CPU s | eval CPU vs no hook (pairs min-max) | traces |")
    P("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        for m in ORDER:
            s = summ.get((n, m))
            if not s:
                continue
            tr = [t for t in trials if t.get("samples") == n and t.get("mode") == m and "eval_s" in t]
            ex = sorted(t["exit_after_eval_s"] for t in tr if "exit_after_eval_s" in t)
            states = tr[-1].get("trace_states") if tr else None
            traces = "—" if not s.get("tracing") else \
                f"{s.get('traces')} ({', '.join(f'{k} {v}' for k, v in (states or {}).items())})"
            vis = fmt(s.get("visible_after_s"), "{:.2f}") if m != "nohook" else "—"
            if m != "nohook" and not s.get("visible_all", True):
                vis += " (not all trials)"
            ratio = "1x" if m == "nohook" else (
                fmt(s.get("ratio_vs_nohook"), "{:.2f}x")
                + (f" ({rng(s.get('ratio_pairs_range'))}x)" if s.get("ratio_pairs_range") else ""))
            rss = s.get("sidecar_peak_rss_mb_max")
            cratio = "1x" if m == "nohook" else (
                fmt(s.get("cpu_ratio_vs_nohook"), "{:.2f}x")
                + (f" ({rng(s.get('cpu_ratio_pairs_range'))}x)" if s.get("cpu_ratio_pairs_range") else ""))
            P(f"| {n:,} | {LABEL[m]} | {s['trials']} | {s['eval_s']:.1f} ({rng(s['eval_s_range'], '{:.1f}')}) "
              f"| {ratio} | {s['http_requests'] if m != 'nohook' else 0:,.0f} | {vis} "
              f"| {fmt(ex[len(ex) // 2] if ex and m != 'nohook' else None)} "
              f"| {fmt(s.get('sidecar_cpu_s'))} | {fmt(rss, '{:.1f}')} "
              f"| {fmt(s.get('server_cpu_s'), '{:.1f}')} | {fmt(s.get('eval_process_cpu_s'), '{:.1f}')} "
              f"| {cratio} | {traces} |")
    P("")
    for n in sizes:
        tr = [t for t in trials if t.get("samples") == n and "requests_by_path" in t]
        for m in ORDER[1:]:
            t = next((x for x in reversed(tr) if x["mode"] == m), None)
            if t:
                P(f"- {n:,} samples, {LABEL[m]}, requests by endpoint: "
                  + ", ".join(f"`{k}` {v}" for k, v in t["requests_by_path"].items()) + ".")
    P("")
    P("Consistency, ringflow against inspect-mlflow in the same tracing setting, read back from MLflow "
      "(per-sample `match`/`includes` raw and numeric values from each run's `inspect/sample_scores.json`, "
      "keyed by sample id; the `sample/<scorer>` metric values; `<scorer>/accuracy`; "
      "`usage/mockllm/model/{input,output,total}_tokens`):\n")
    for n in sizes:
        for rf, im in PAIRS:
            if (n, rf) not in summ or (n, im) not in summ:
                continue
            c = checks.get((n, f"{rf}_vs_{im}")) or (checks.get((n, "ringflow_vs_inspect_mlflow"))
                                                      if rf == "ringflow" else None)
            if not c:
                P(f"- {n:,} samples, {LABEL[rf]} against {LABEL[im]}: not checked")
                continue
            tok = ", ".join(f"{k} {v:,.0f}" for k, v in c["tokens"].items() if v is not None)
            P(f"- {n:,} samples, {LABEL[rf]} against {LABEL[im]}: "
              f"**{'match' if c['match'] else 'MISMATCH'}** ({c['score_rows']:,} samples "
              f"compared; tokens {tok})" + ("" if c["match"] else f": {json.dumps(c['differences'])[:600]}"))
    P("")

    def goal(ok, vals=True):
        return "**not measured**" if not vals else "**met**" if ok else "**not met**"

    P("Goals (reported, not asserted; only measured sizes count):\n")
    for rf, im in PAIRS:
        meas = [n for n in sizes if (n, rf) in summ]
        if not meas:
            continue
        P(f"- {LABEL[rf]}:")
        rat = {n: summ[(n, rf)] for n in meas}
        ok = all(s.get("ratio_pairs_range") and s["ratio_pairs_range"][1] <= 1.03 for s in rat.values())
        P(f"  - eval time <= 1.03x no hook in every trial: {goal(ok, rat)} — "
          + ", ".join(f"{n:,}: {fmt(s.get('ratio_vs_nohook'), '{:.2f}x')} (pairs {rng(s.get('ratio_pairs_range'))}x)"
                      for n, s in rat.items()) + ".")
        rq = {}
        for n in meas:
            c, b = summ.get((n, im)), summ[(n, rf)].get("http_requests")
            if c and c.get("http_requests") and b:
                rq[n] = (c["http_requests"] / b, b, c["http_requests"])
        if rq:
            ok = all(v[0] >= 50 for v in rq.values())
            P(f"  - >= 50x fewer HTTP requests than {LABEL[im]}: {goal(ok, rq)} — "
              + ", ".join(f"{n:,}: {v[0]:.0f}x ({v[1]:,.0f} against {v[2]:,.0f})" for n, v in rq.items()) + ".")
        vis = {n: summ[(n, rf)].get("visible_after_s") for n in meas}
        ok = all(v is not None and v <= 2 for v in vis.values())
        P(f"  - everything visible <= 2 s after the eval: {goal(ok, vis)} — "
          + ", ".join(f"{n:,}: {fmt(v, '{:.2f} s', 'never')}" for n, v in vis.items())
          + ("; inspect-mlflow: " + ", ".join(
              f"{n:,}: {fmt(summ[(n, im)].get('visible_after_s'), '{:.2f} s', 'never')}"
              for n in sizes if (n, im) in summ) if any((n, im) in summ for n in sizes) else "")
          + ".")
        rss = {n: summ[(n, rf)].get("sidecar_peak_rss_mb_max") for n in meas}
        ok = all(v is not None and v <= 64 for v in rss.values())
        P(f"  - sidecar peak RSS <= 64 MiB in every trial: {goal(ok, rss)} — "
          + ", ".join(f"{n:,}: {fmt(v, '{:.1f} MiB')}" for n, v in rss.items()) + ".")
        if rf != "ringflow":
            continue
        # Issue 17's goals for tracing, per trial (the worst counts).
        tt = {n: [t for t in trials if t.get("samples") == n and t.get("mode") == rf and "eval_s" in t]
              for n in meas}
        tt = {n: v for n, v in tt.items() if v}
        # Complete: the poll's run search saw every run FINISHED, which
        # ringflowd sends only once metrics, artifacts and traces are in
        # (finished_after_s).  Trials from before that field timed only the
        # end of the read-back: an upper bound, used for a size only when no
        # trial of it has the field.
        done, note = {}, {}
        for n, v in tt.items():
            fin = [t for t in v if "finished_after_s" in t]
            old = [t.get("visible_after_s") for t in v if "finished_after_s" not in t]
            done[n] = [t["finished_after_s"] for t in fin] if fin else old
            parts = []
            if fin and None not in [t.get("visible_after_s") for t in fin]:
                rb = [t["visible_after_s"] for t in fin]
                parts.append(f"its read-back ended at {rng([min(rb), max(rb)])} s")
            if fin and old and None not in old:
                parts.append(f"earlier trials timed only the read-back's end: {rng([min(old), max(old)])} s")
            note[n] = f" ({'; '.join(parts)})" if parts else ""
        ok = all(None not in v and max(v) <= 5 for v in done.values())
        P(f"  - traces and runs complete <= 5 s after the eval (issue 17; it asks it of a server "
          f"that keeps up) in every trial: {goal(ok, done)} — "
          + ", ".join(f"{n:,}: " + ("never" if None in v else rng([min(v), max(v)]) + " s") + note[n]
                      for n, v in done.items())
          + ". Complete = the harness's run search saw every run FINISHED: ringflowd sends that "
          "last, once the run's metrics, artifacts and traces are in.")
        req = {n: [(t.get("http_requests"), t.get("traces") or n) for t in v] for n, v in tt.items()}
        ok = all(r is not None and r <= tr + 60 for v in req.values() for r, tr in v)
        P(f"  - HTTP requests <= traces + 60 in every trial: {goal(ok, req)} — "
          + ", ".join(f"{n:,}: {rng([min(r for r, _ in v), max(r for r, _ in v)], '{:,.0f}')} "
                      f"(traces + {max(r for r, _ in v) - n:,})" for n, v in req.items()) + ".")
        # Up to the moment every run read FINISHED (server_cpu_finished_s):
        # the harness's read-back of 10,000 traces and metric values is not
        # the integration's cost.  Older trials have only the whole trial's.
        cpu, whole = {}, {}
        for n, v in tt.items():
            fin = [t for t in v if t.get("server_cpu_finished_s") is not None]
            cpu[n] = ([t["server_cpu_finished_s"] / n * 1000 for t in fin] if fin else
                      [t["server_cpu_s"] / n * 1000 for t in v if t.get("server_cpu_s") is not None])
            whole[n] = [t["server_cpu_s"] / n * 1000 for t in fin]
        ok = all(v and max(v) <= 30 for v in cpu.values())
        P(f"  - MLflow server CPU <= 30 ms per traced sample, tracking included, in every trial: "
          f"{goal(ok, cpu)} — "
          + ", ".join(f"{n:,}: {rng([min(v), max(v)], '{:.1f}')} ms"
                      + (f" (until every run read FINISHED; with the harness's read-back "
                         f"{rng([min(whole[n]), max(whole[n])], '{:.1f}')} ms)" if whole[n] else "")
                      for n, v in cpu.items() if v) + ".")
        newest_build(P, trials, invs, rf, meas)
    P("- >= 2 M events/s per core: measured by `make bench-sidecar` (section \"Sidecar\").")


def newest_build(P, trials: list[dict], invs: list[dict], rf: str, sizes: list[int]) -> None:
    """The goals above count every trial in the file, older builds' too.  Per
    size, the same figures for the newest invocation that measured it (its
    commit named): what the product does now."""
    commit = {i["date"]: i.get("commit", "?") for i in invs}
    parts = []
    for n in sizes:
        dates = sorted({t.get("invocation") for t in trials
                        if t.get("samples") == n and t.get("mode") == rf and "eval_s" in t
                        and t.get("invocation")})
        if not dates:
            continue
        rows = [t for t in trials if t.get("samples") == n and t.get("invocation") == dates[-1]]
        mine = [t for t in rows if t.get("mode") == rf and "eval_s" in t]
        pr = pair_ratios(rows, rf)
        fin = [t["finished_after_s"] for t in mine if t.get("finished_after_s") is not None]
        req = [t["http_requests"] - (t.get("traces") or n) for t in mine if t.get("http_requests")]
        cpu = [t["server_cpu_finished_s"] / n * 1000 for t in mine if t.get("server_cpu_finished_s")]
        parts.append(f"{n:,} ({commit.get(dates[-1], '?')}, {len(mine)} trial(s)): eval "
                     + (f"{rng([min(pr), max(pr)])}x no hook" if pr else "without a no-hook pair")
                     + (f", complete {rng([min(fin), max(fin)])} s" if fin else "")
                     + (f", requests traces + {rng([min(req), max(req)], '{:,.0f}')}" if req else "")
                     + (f", server CPU {rng([min(cpu), max(cpu)], '{:.1f}')} ms per traced sample"
                        if cpu else ""))
    if parts:
        P("  - the newest invocation of each size alone (pairs with its own no-hook trials): "
          + "; ".join(parts) + ".")


if __name__ == "__main__":
    main()
