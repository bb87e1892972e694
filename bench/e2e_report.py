"""The "## End to end" section of bench/RESULTS.md and bench/e2e.png, from the
JSON lines of bench/e2e.py (one or more invocations; for a size and mode the
last invocation that measured it wins).

    python bench/e2e_report.py build/bench/e2e.jsonl [--sizes 100,1000,10000] [--png bench/e2e.png]

Sizes asked for but not measured are listed as "not measured (time)": nothing
is extrapolated.  Prints the markdown section on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

MODES = ("nohook", "ringflow", "inspect_mlflow")
LABEL = {"nohook": "(a) no hook", "ringflow": "(b) ringflow", "inspect_mlflow": "(c) inspect-mlflow 0.9.0"}


def load(paths: list[str]):
    summ, checks, trials, invs = {}, {}, [], []
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
            if "invocation" in r:
                invs.append(r["invocation"])
            elif "note" in r:  # a line added by whoever ran it: conditions worth knowing
                notes.append(r["note"])
            elif r.get("summary"):
                if "not_measured" in r and (r["samples"], r["mode"]) in summ:
                    continue  # an earlier invocation measured it
                summ[(r["samples"], r["mode"])] = r
            elif "check" in r:
                checks[r["samples"]] = r
            else:
                trials.append(r)
    return summ, checks, trials, invs, notes


def fmt(v, spec="{:.2f}", none="—"):
    return none if v is None else spec.format(v)


def plot(summ: dict, sizes: list[int], png: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    style = {"nohook": ("tab:gray", "o"), "ringflow": ("tab:blue", "s"), "inspect_mlflow": ("tab:red", "^")}
    for m in MODES:
        pts = [(n, summ[(n, m)]["eval_s"]) for n in sizes if (n, m) in summ and "eval_s" in summ[(n, m)]]
        if pts:
            c, mk = style[m]
            ax1.plot(*zip(*pts), marker=mk, color=c, label=LABEL[m])
        if m != "nohook":
            pv = [(n, summ[(n, m)]["visible_after_s"]) for n in sizes
                  if (n, m) in summ and summ[(n, m)].get("visible_after_s") is not None]
            if pv:
                c, mk = style[m]
                ax2.plot(*zip(*pv), marker=mk, color=c, label=LABEL[m])
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.set_xlim(sizes[0] / 1.6, sizes[-1] * 1.6)
        ax.set_xlabel("samples in the eval")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax2.axhline(2.0, color="tab:green", ls="--", lw=1)
    ax2.text(sizes[0], 2.1, "goal 2 s", color="tab:green", fontsize=8)
    ax1.set_ylabel("eval() wall time, s (median)")
    ax1.set_title("Eval time against eval size")
    ax2.set_ylabel("s from eval() return until all is queryable")
    ax2.set_title("Visible in MLflow after the eval")
    missing = [f"{n} {m}" for n in sizes for m in MODES
               if (n, m) not in summ or "eval_s" not in summ[(n, m)]]
    foot = "run conditions (machine load, overlaps): bench/RESULTS.md, End to end"
    if missing:
        foot = "not measured (time): " + ", ".join(missing) + ".  " + foot
    fig.text(0.01, 0.01, foot, fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(png, dpi=110)
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl", nargs="+")
    ap.add_argument("--sizes", default=os.environ.get("BENCH_REPORT_SIZES", "100,1000,10000"))
    ap.add_argument("--png", default="")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",") if x]
    summ, checks, trials, invs, notes = load(a.jsonl)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    P = print
    P("## End to end\n")
    P("Written by `bench/run_e2e.sh` (`bench/e2e.py`, `bench/e2e_report.py`); do not edit by hand.  "
      "Raw JSON lines: `build/bench/e2e.jsonl`.  Plot: [`bench/e2e.png`](e2e.png).\n")
    P("- Command: `make bench-e2e` (all of it: sizes 100, 1,000, 10,000); this table came from:")
    for inv in invs:
        P(f"  - `{inv['command']}` at {inv['date']}" + (f" (commit {inv['commit']})" if inv.get("commit") else "")
          + f": sizes {inv['sizes']}, modes {', '.join(inv['modes'])} (in this order), repeats {inv['repeats']}, "
          f"max_samples {inv['max_samples']}, ringflow tracing {'on' if inv['ringflow_tracing'] else 'off'}, "
          f"load average {' '.join(f'{x:.1f}' for x in inv['load'])} at the start"
          + (f", deadline {inv['deadline']} UTC" if inv.get("deadline") else ""))
    for note in notes:
        P(f"  - Note: {note}")
    loads = [t["load1"] for t in trials if "load1" in t]
    P(f"- Machine: {os.cpu_count()} CPUs, {cpu}, kernel {platform.release()}, Python "
      f"{platform.python_version()}; shared with other jobs: 1-min load average at the trials' starts "
      + (f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?") + ".")
    P("- Eval: `bench/hook_eval.py`, N samples, mockllm with usage set on every call, a tool call "
      "(`multiply`) then an answer per sample, scorers `match` and `includes`.  Each trial gets a fresh "
      "`mlflow server` 3.17.2 (SQLite, one worker) on loopback.  (a) no hook: ringflow installed but "
      "`RINGFLOW_DISABLED=1`, no `MLFLOW_TRACKING_URI`; (b) ringflow: this repo's hook + a `ringflowd` the "
      "harness starts, `MLFLOW_INSPECT_TRACING=true` when ringflowd supports it; (c) inspect-mlflow 0.9.0 "
      "from PyPI in its own venv (`bench/requirements-inspect-mlflow.txt`), tracking + "
      "`MLFLOW_INSPECT_TRACING=true`.  Modes alternate within each repeat; figures are medians.")
    P("- `HTTP requests`: lines in the server's uvicorn access log, minus `/health` and minus the harness's "
      "own reads (counted by a proxy it reads through).  `visible after`: from `eval()` returning until "
      "every run of the experiment is FINISHED, the task run has `<scorer>/accuracy`, `total_samples`, "
      "`usage/mockllm/model/{input,output,total}_tokens` and N steps of `sample/match` and "
      "`sample/includes`, and the traces are listed (ringflow: one per sample = N; inspect-mlflow: its "
      "design writes one per eval run = 1, which stays IN_PROGRESS because its root span is never "
      "exported).  `runs + metrics visible after`: the same without the traces (a dash where "
      "not recorded).  Polled every 0.1 s through the MLflow client.  `exit after eval`: when the eval "
      "process ended, after `eval()` returned (hooks flushing at exit; in invocations without a commit "
      "shown it was noticed between two polls, so an upper bound).  Sidecar CPU and peak RSS "
      "(VmHWM) are ringflowd's, read when everything is visible.\n")
    P("| samples | mode | trials | eval s | vs no hook | HTTP requests | visible after s | runs + metrics "
      "visible after s | exit after eval s | sidecar CPU s | sidecar peak RSS MB | MLflow server CPU s "
      "| eval process CPU s | traces |")
    P("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        for m in MODES:
            s = summ.get((n, m))
            if not s or "eval_s" not in s:
                P(f"| {n:,} | {LABEL[m]} | 0 | not measured (time) | | | | | | | | | | |")
                continue
            tr = [t for t in trials if t.get("samples") == n and t.get("mode") == m and "eval_s" in t]
            ex = sorted(t["exit_after_eval_s"] for t in tr if "exit_after_eval_s" in t)
            states = tr[-1].get("trace_states") if tr else None
            traces = "—" if not s.get("tracing") else \
                f"{s.get('traces')} ({', '.join(f'{k} {v}' for k, v in (states or {}).items())})"
            vis = fmt(s.get("visible_after_s"), "{:.2f}") if m != "nohook" else "—"
            if m != "nohook" and not s.get("visible_all", True):
                vis += " (not all trials)"
            P(f"| {n:,} | {LABEL[m]} | {s['trials']} | {s['eval_s']:.2f} "
              f"({', '.join(f'{x:.1f}' for x in s['eval_s_runs'])}) | {fmt(s.get('ratio_vs_nohook'), '{:.3f}x')} "
              f"| {s['http_requests'] if m != 'nohook' else 0:,} | {vis} "
              f"| {fmt(s.get('runs_metrics_visible_after_s')) if m != 'nohook' else '—'} "
              f"| {fmt(ex[len(ex) // 2] if ex and m != 'nohook' else None)} "
              f"| {fmt(s.get('sidecar_cpu_s'))} | {fmt(s.get('sidecar_peak_rss_mb'), '{:.1f}')} "
              f"| {fmt(s.get('server_cpu_s'), '{:.1f}')} | {fmt(s.get('eval_process_cpu_s'), '{:.1f}')} "
              f"| {traces} |")
    P("")
    for n in sizes:
        tr = [t for t in trials if t.get("samples") == n and "requests_by_path" in t]
        for m in ("ringflow", "inspect_mlflow"):
            t = next((x for x in reversed(tr) if x["mode"] == m), None)
            if t:
                P(f"- {n:,} samples, {m}, requests by endpoint: "
                  + ", ".join(f"`{k}` {v}" for k, v in t["requests_by_path"].items()) + ".")
    P("")
    P("Consistency, (b) against (c), read back from MLflow (per-sample `match`/`includes` raw and numeric "
      "values from each run's `inspect/sample_scores.json`, keyed by sample id; the `sample/<scorer>` "
      "metric values; `<scorer>/accuracy`; `usage/mockllm/model/{input,output,total}_tokens`):\n")
    for n in sizes:
        c = checks.get(n)
        if not c:
            P(f"- {n:,} samples: not checked (both modes not measured)")
            continue
        tok = ", ".join(f"{k} {v:,.0f}" for k, v in c["tokens"].items() if v is not None)
        P(f"- {n:,} samples: **{'match' if c['match'] else 'MISMATCH'}** ({c['score_rows']:,} samples "
          f"compared; tokens {tok})" + ("" if c["match"] else f": {json.dumps(c['differences'])[:600]}"))
    P("")
    # goals, reported not asserted
    def goal(ok, vals=True):
        return "**not measured**" if not vals else "**met**" if ok else "**not met**"

    meas = [n for n in sizes if (n, "ringflow") in summ and "eval_s" in summ[(n, "ringflow")]]
    P("Goals (reported, not asserted; only measured sizes count, the others are named):\n")
    rat = {n: summ[(n, "ringflow")].get("ratio_vs_nohook") for n in meas}
    ok = all(v is not None and v <= 1.03 for v in rat.values()) and meas
    P(f"- (b) eval time <= 1.03x (a) at every size: {goal(ok, rat)} — "
      + ", ".join(f"{n:,}: {fmt(v, '{:.3f}x')}" for n, v in rat.items()) + ".")
    rq = {}
    for n in meas:
        c = summ.get((n, "inspect_mlflow"))
        b = summ[(n, "ringflow")].get("http_requests")
        if c and c.get("http_requests") and b:
            rq[n] = (c["http_requests"] / b, b, c["http_requests"])
    ok = bool(rq) and all(v[0] >= 50 for v in rq.values())
    P(f"- >= 50x fewer HTTP requests than (c): {goal(ok, rq)} — "
      + ", ".join(f"{n:,}: {v[0]:.1f}x ({v[1]:,} against {v[2]:,})" for n, v in rq.items()) + ".")
    vis = {n: summ[(n, "ringflow")].get("visible_after_s") for n in meas}
    ok = bool(vis) and all(v is not None and v <= 2 for v in vis.values())
    P(f"- (b) everything visible <= 2 s after the eval: {goal(ok, vis)} — "
      + ", ".join(f"{n:,}: {fmt(v, '{:.2f} s', 'never')}" for n, v in vis.items())
      + ("; inspect-mlflow: " + ", ".join(
          f"{n:,}: {fmt(summ[(n, 'inspect_mlflow')].get('visible_after_s'), '{:.2f} s', 'never')}"
          for n in sizes if (n, "inspect_mlflow") in summ and "eval_s" in summ[(n, "inspect_mlflow")])) + ".")
    rss = {n: summ[(n, "ringflow")].get("sidecar_peak_rss_mb_max") for n in meas}
    ok = bool(rss) and all(v is not None and v <= 64 for v in rss.values())
    P(f"- sidecar peak RSS <= 64 MiB at every size: {goal(ok, rss)} — "
      + ", ".join(f"{n:,}: {fmt(v, '{:.1f} MB')}" for n, v in rss.items()) + ".")
    P("- >= 2 M events/s per core: measured by `make bench-sidecar` (section \"Sidecar\").")
    nm = [f"{n:,} {m}" for n in sizes for m in MODES if (n, m) not in summ or "eval_s" not in summ[(n, m)]]
    if nm:
        P(f"- Not measured (time): {', '.join(nm)}.")
    if a.png:
        if plot(summ, sizes, a.png):
            P(f"\n![eval time and visibility against eval size](e2e.png)\n\n(`{a.png}` written "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.)")


if __name__ == "__main__":
    main()
