"""make bench-hook: what the ringflow Inspect hook costs the eval.

1. us_per_event: Python-side cost of one hook call per Inspect event kind
   (model, tool, score, span), measured by awaiting the hook's own coroutine
   on real Inspect event objects, with a consumer draining the ring.
2. eval wall time: the same 1,000-sample mockllm eval with tool calls, run
   alternately with the hook disabled and enabled (side by side in one run,
   REPEATS times each), median of each, ratio.

Prints one JSON object per line ("bench": "hook").  Usage:
    python bench/hook_bench.py [--samples 1000] [--repeats 3] [--max-samples 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DUMP = REPO / "build" / "release" / "bin" / "ringflow-dump"
EVAL_SCRIPT = Path(__file__).with_name("hook_eval.py")


def drain(ring: str) -> subprocess.Popen:
    """A consumer that keeps the ring empty (stands in for ringflowd)."""
    return subprocess.Popen([str(DUMP), "--ring", ring, "--idle-ms", "0", "--discard"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def per_event(n: int) -> list[dict]:
    from datetime import datetime, timezone

    from inspect_ai.event import ModelEvent, ScoreEvent, SpanBeginEvent, ToolEvent
    from inspect_ai.hooks import SampleEvent, SampleStart
    from inspect_ai.log import EvalSampleSummary
    from inspect_ai.model import ChatMessageUser, GenerateConfig, ModelOutput, ModelUsage
    from inspect_ai.scorer import Score

    import ringflow._hook as hook_mod

    hook = hook_mod.RingflowHooks()
    assert hook.enabled(), "hook not enabled (MLFLOW_TRACKING_URI / ring?)"
    now = datetime.now(timezone.utc)
    out = ModelOutput.from_content("mockllm/model", "The answer is 42.")
    out.usage = ModelUsage(input_tokens=120, output_tokens=8, total_tokens=128)
    events = {
        # Inspect delivers each ModelEvent twice (>= 0.3.253): the figure is
        # per delivery, a flush every second one.
        "model": ModelEvent(model="mockllm/model", input=[ChatMessageUser(content="q " * 50)] * 6,
                            tools=[], tool_choice="auto", config=GenerateConfig(temperature=0.0),
                            output=out, timestamp=now, completed=now, working_time=0.01),
        "tool": ToolEvent(id="call_1", function="multiply", arguments={"a": 6, "b": 7},
                          result="42", timestamp=now, completed=now, working_time=0.001),
        "score": ScoreEvent(score=Score(value="C", answer="42", explanation="exact"), target="42",
                            scorer="match", timestamp=now),
        "span_begin": SpanBeginEvent(id="s1", name="generate", type="solver", timestamp=now),
    }
    summary = EvalSampleSummary(id=1, epoch=1, input="q", target="42", uuid="u1")
    loop = asyncio.new_event_loop()
    loop.run_until_complete(hook.on_sample_start(SampleStart(
        eval_set_id=None, run_id="r", eval_id="e", sample_id="u1", summary=summary)))
    results = []
    for kind, ev in events.items():
        data = SampleEvent(eval_set_id=None, run_id="r", eval_id="e", sample_id="u1", event=ev)

        async def many(k=kind, d=data):
            t0 = time.perf_counter_ns()
            for i in range(n):
                await hook.on_sample_event(d)
                if k == "model" and i % 2:
                    hook._flush(hook._samples["u1"])
                    hook._samples["u1"].emitted.clear()
            return time.perf_counter_ns() - t0

        async def baseline(d=data):  # the await itself, which any hook pays
            async def noop(_):
                return None

            t0 = time.perf_counter_ns()
            for _ in range(n):
                await noop(d)
            return time.perf_counter_ns() - t0

        loop.run_until_complete(many())  # warm up
        ns = min(loop.run_until_complete(many()) for _ in range(3))
        base = min(loop.run_until_complete(baseline()) for _ in range(3))
        results.append({"bench": "hook", "event": kind, "events": n,
                        "us_per_event": round(ns / n / 1000, 3),
                        "us_await_baseline": round(base / n / 1000, 3)})
    assert hook.errors == 0
    loop.close()
    return results


def run_eval(samples: int, max_samples: int, enabled: bool, ring: str, log_dir: str) -> tuple[float, float]:
    """(eval() wall seconds, CPU seconds of the eval process and its children)."""
    env = dict(os.environ)
    env.update(RINGFLOW_RING=ring, RINGFLOW_AUTOSTART="0", INSPECT_LOG_DIR=log_dir)
    if enabled:
        env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"  # hook on; it never calls it
    else:
        env.pop("MLFLOW_TRACKING_URI", None)  # hook off, as if not installed
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, str(EVAL_SCRIPT), str(samples), str(max_samples), log_dir],
                       env=env, capture_output=True, text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"eval failed: {p.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return float(p.stdout.strip().splitlines()[-1]), cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--max-samples", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--events", type=int, default=20000)
    a = ap.parse_args()
    ring = f"/rf-bench-hook-{os.getpid()}"
    os.environ["RINGFLOW_RING"] = ring
    os.environ["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"
    os.environ["RINGFLOW_AUTOSTART"] = "0"
    import ringflow

    ringflow.Producer(ring=ring, capacity=64 << 20).close()  # created before the drain attaches
    consumer = drain(ring)
    try:
        for r in per_event(a.events):
            print(json.dumps(r), flush=True)
        times = {"nohook": [], "ringflow": []}
        cpus = {"nohook": [], "ringflow": []}
        load0 = round(os.getloadavg()[0], 2)
        with tempfile.TemporaryDirectory() as logs:
            for i in range(a.repeats):
                for mode in ("nohook", "ringflow") if i % 2 == 0 else ("ringflow", "nohook"):
                    wall, cpu = run_eval(a.samples, a.max_samples, mode == "ringflow", ring, logs)
                    times[mode].append(wall)
                    cpus[mode].append(cpu)
        no, rf = statistics.median(times["nohook"]), statistics.median(times["ringflow"])
        # Each repeat runs the two back to back: their ratio is one trial's
        # figure; the spread of those is what the eval ratio can be said to be.
        pairs = [round(r / n, 4) for n, r in zip(times["nohook"], times["ringflow"])]
        # The eval process's CPU seconds move far less with the host's load.
        cpu_pairs = [round(r / n, 4) for n, r in zip(cpus["nohook"], cpus["ringflow"])]
        print(json.dumps({"bench": "hook", "samples": a.samples, "max_samples": a.max_samples,
                          "repeats": a.repeats, "eval_s_nohook": round(no, 3),
                          "eval_s_ringflow": round(rf, 3), "ratio": round(rf / no, 4),
                          "ratio_pairs": pairs, "ratio_pairs_range": [min(pairs), max(pairs)],
                          "load1": [load0, round(os.getloadavg()[0], 2)],
                          "runs_nohook": [round(t, 3) for t in times["nohook"]],
                          "runs_ringflow": [round(t, 3) for t in times["ringflow"]],
                          "cpu_s_nohook": [round(t, 2) for t in cpus["nohook"]],
                          "cpu_s_ringflow": [round(t, 2) for t in cpus["ringflow"]],
                          "cpu_ratio_pairs": cpu_pairs,
                          "cpu_ratio_pairs_range": [min(cpu_pairs), max(cpu_pairs)]}), flush=True)
    finally:
        consumer.terminate()
        consumer.wait()
        try:
            os.unlink(f"/dev/shm{ring}")
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
