"""Print the "Small traced evals" and "Workers" sections of bench/RESULTS.md
from bench/results/trace_tail.jsonl (written by bench/run_trace_tail.sh) and
put them in place:

    .venv/bin/python bench/trace_tail_report.py [--write]

Figures are ranges over the repeats (min-max), never a single trial.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = HERE / "results" / "trace_tail.jsonl"


def rng(xs: list[float], unit: str = " s", nd: int = 2) -> str:
    lo, hi = min(xs), max(xs)
    return f"{lo:.{nd}f}{unit}" if lo == hi else f"{lo:.{nd}f}-{hi:.{nd}f}{unit}"


def main() -> None:
    lines = [json.loads(x) for x in RAW.read_text().splitlines() if x.strip()]
    metas = [x["meta"] for x in lines if "meta" in x and x["meta"]["when"] == "start"]
    rows = [x for x in lines if "samples" in x]
    loads = [m["load"][0] for m in metas] + [r["load"][0] for r in rows if "load" in r]
    head = (f"Raw lines: `bench/results/trace_tail.jsonl`. Command: `bench/run_trace_tail.sh` "
            f"({metas[0]['date']}, commit {metas[0]['commit']}, {metas[0]['nproc']} CPUs "
            f"{metas[0]['cpu']}; 1-min load {min(loads):.1f}-{max(loads):.1f} during the runs: "
            "the host is shared). Each trial: a fresh `mlflow server` "
            "(`MLFLOW_MODEL_CATALOG_URI=\"\"`, job runner off), ringflowd from build/release, a "
            "real Inspect eval of N one-call mockllm samples with tracing on. \"complete\" = both "
            "runs FINISHED (ringflow holds FINISHED until the run's traces are in) and N traces "
            "listed. Server CPU: the server's processes (and PostgreSQL's) from the eval's start "
            "to complete.\n")
    small = defaultdict(list)
    for r in rows:
        if r.get("backend", "sqlite") == "sqlite":
            small[(r["samples"], r.get("workers", 1))].append(r)
    out = ["## Small traced evals: how long until everything is in", "", head,
           "SQLite; `mlflow server --workers W` (4 is what `mlflow server` starts by default, "
           "1 the worst case). \"complete\" counts the traces by their infos (state OK, which the "
           "request storing a trace's root span sets), so the check itself costs the server "
           "little.", "",
           "| samples | server workers | trials | eval | complete after the eval's end | "
           "server CPU per trace |",
           "|---:|---:|---:|---|---|---|"]
    for (n, w) in sorted(small):
        rs = small[(n, w)]
        cpu = [r["server_cpu_s"] / n * 1000 for r in rs if "server_cpu_s" in r]
        out.append(f"| {n} | {w} | {len(rs)} | {rng([r['eval_s'] for r in rs])} | "
                   f"{rng([r['complete_after_end_s'] for r in rs])} | "
                   f"{rng(cpu, ' ms', 0) if cpu else '-'} |")
    for w in sorted({w for _, w in small}):
        worst = {n: max(r["complete_after_end_s"] for r in small[(n, ww)])
                 for (n, ww) in small if ww == w}
        met = [n for n in sorted(worst) if worst[n] <= 2.0]
        missed = [n for n in sorted(worst) if worst[n] > 2.0]
        out += ["", f"Goal (issue 16), {w} server worker{'s' if w > 1 else ''}: <= 2 s for a traced "
                "eval of up to a few hundred samples on an idle server: met at "
                f"{', '.join(map(str, met)) or 'none'}"
                + (f"; not met at {', '.join(map(str, missed))} (worst trial)" if missed else "")
                + "."]
    out += ["", "What is left is the server working through the traces it could not take while "
            "the eval ran: one trace info per sample (MLflow has no batch form of it) at ~15-20 ms "
            "of server CPU each, while the eval, mockllm answering at once, makes ~100 samples/s on "
            "the same 2 cores."]
    work = defaultdict(list)
    for r in rows:
        if r.get("backend") == "postgres":
            work[(bool(r.get("drain")), r["workers"])].append(r)
    if work:
        out += ["", "## Workers", "", head,
                "PostgreSQL backend (Debian's postgresql, a fresh cluster per trial), 300 traced "
                "samples, `mlflow server --workers W`; ringflowd keeps as many trace requests in "
                "flight as the server takes (trace/rf_trace_pace.c). *live*: ringflowd runs "
                "during the eval (the eval, ringflowd and the server share the 2 cores); "
                "*drained*: the eval runs first, then ringflowd starts and the time is from its "
                "start (what sidecar and server sustain without the eval competing).", "",
                "| mode | workers | trials | complete after | traces/s | server CPU per trace |",
                "|---|---:|---:|---|---|---|"]
        for (drain, w) in sorted(work):
            rs = work[(drain, w)]
            n = rs[0]["samples"]
            tps = [n / (r["complete_after_end_s"] + (0 if drain else r["eval_s"])) for r in rs]
            out.append(f"| {'drained' if drain else 'live'} | {w} | {len(rs)} | "
                       f"{rng([r['complete_after_end_s'] for r in rs])} | {rng(tps, '', 1)} | "
                       f"{rng([r['server_cpu_s'] / n * 1000 for r in rs], ' ms', 0)} |")
        for drain in (True, False):
            one, four = work.get((drain, 1)), work.get((drain, 4))
            if one and four:
                t1 = [r["complete_after_end_s"] + (0 if drain else r["eval_s"]) for r in one]
                t4 = [r["complete_after_end_s"] + (0 if drain else r["eval_s"]) for r in four]
                out.append("")
                out.append(f"Speed-up of 4 workers over 1 ({'drained' if drain else 'live'}, "
                           f"time to complete): {min(t1) / max(t4):.2f}-{max(t1) / min(t4):.2f}x.")
        out += ["", "On these 2 shared cores the server's 4 workers compete with the eval, "
                "ringflowd and PostgreSQL for the same CPUs, so the speed-up here is bounded by "
                "the cores, not by the requests ringflowd keeps in flight; see "
                "docs/OPERATIONS.md (\"Sizing the MLflow server\")."]
    text = "\n".join(out) + "\n"
    if "--write" in sys.argv:
        sections = text.split("\n## ")
        for i, sec in enumerate(sections):
            sec = sec if i == 0 else "## " + sec
            title = sec.split("\n", 1)[0][3:]
            subprocess.run([sys.executable, str(HERE / "results_section.py"),
                            str(HERE / "RESULTS.md"), title], input=sec, text=True, check=True)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
