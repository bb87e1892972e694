"""The benchmark eval: N samples, each a tool call and an answer (mockllm with
usage set), two scorers.  Prints the wall time of eval() in seconds.

    python bench/hook_eval.py SAMPLES MAX_SAMPLES LOG_DIR [RESULT_JSON]

RESULT_JSON (bench/e2e.py) also gets the wall clock at which eval() returned,
so "visible after the eval" is measured from that moment, not from the
interpreter's exit (hooks may keep working in atexit handlers).

RF_BENCH_LATENCY_MS=N makes each sample wait N ms (an async sleep, no CPU)
before its model calls, as a real model's latency does: the eval then runs at
the pace of a model that answers in N ms, with max_samples at once.
"""

import json
import os
import sys
import time
from pathlib import Path

from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageTool, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import includes, match
from inspect_ai.solver import Generate, TaskState, generate, solver, use_tools

# The example's tool (examples/demo_eval.py): one definition for the demo,
# the benchmarks and the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from demo_eval import multiply  # noqa: E402


def outputs(input, tools, tool_choice, config):
    n = 10 * len(input)
    if isinstance(input[-1], ChatMessageTool):
        out = ModelOutput.from_content("mockllm/model", f"ANSWER: {input[-1].text}")
    else:
        out = ModelOutput.for_tool_call("mockllm/model", "multiply", {"a": 6, "b": 7})
    out.usage = ModelUsage(input_tokens=n, output_tokens=5, total_tokens=n + 5)
    return out


@solver
def model_latency(ms: int):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        import anyio

        await anyio.sleep(ms / 1000)
        return state

    return solve


def main():
    samples, max_samples, log_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    task = Task(
        dataset=[Sample(id=i, input=f"What is 6 x 7? #{i}", target="42") for i in range(samples)],
        solver=[use_tools(multiply())]
        + ([model_latency(latency_ms)] if (latency_ms := int(os.environ.get("RF_BENCH_LATENCY_MS") or 0)) else [])
        + [generate()],
        scorer=[match(), includes()],
    )
    model = get_model("mockllm/model", custom_outputs=outputs)
    t0 = time.perf_counter()
    logs = inspect_eval(task, model=model, log_dir=log_dir, display="none", max_samples=max_samples)
    dt = time.perf_counter() - t0
    end = time.time()
    assert logs[0].status == "success", logs[0].status
    if len(sys.argv) > 4:
        with open(sys.argv[4] + ".tmp", "w") as f:
            json.dump({"eval_s": dt, "end_epoch": end, "log": logs[0].location}, f)
        os.replace(sys.argv[4] + ".tmp", sys.argv[4])  # whole or absent for the reader
    print(f"{dt:.4f}")


if __name__ == "__main__":
    main()
