"""The example evaluation `make demo` runs: Inspect AI with the mockllm model,
a tool call per sample and two scorers (a letter grade and an exact match).

    python examples/demo_eval.py [SAMPLES] [LOG_DIR]

With ringflow installed and MLFLOW_TRACKING_URI set, its telemetry goes into
the ring (no code here mentions ringflow: the hook registers itself).
mockllm outputs carry usage, so Inspect never needs a tokenizer download.
"""

import sys

if __name__ == "__main__" and any(a in ("-h", "--help") for a in sys.argv[1:]):
    print(__doc__.strip())
    sys.exit(0)

from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageTool, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import CORRECT, INCORRECT, PARTIAL, Score, Target, match, mean, scorer
from inspect_ai.solver import TaskState, generate, use_tools
from inspect_ai.tool import tool


@tool
def multiply():
    async def execute(a: int, b: int):
        """Multiply two integers.

        Args:
            a: first factor
            b: second factor
        """
        return str(a * b)

    return execute


def model_outputs(input, tools, tool_choice, config):
    n = 12 * len(input)
    if isinstance(input[-1], ChatMessageTool):
        out = ModelOutput.from_content("mockllm/model", f"ANSWER: {input[-1].text}")
        out.usage = ModelUsage(input_tokens=n, output_tokens=6, total_tokens=n + 6, total_cost=n * 2e-6)
    else:
        a, b = (int(x) for x in input[0].text.split("?")[0].split()[-3::2])
        out = ModelOutput.for_tool_call("mockllm/model", "multiply", {"a": a, "b": b})
        out.usage = ModelUsage(input_tokens=n, output_tokens=4, total_tokens=n + 4, total_cost=n * 2e-6)
    return out


@scorer(metrics=[mean()])
def grade():
    async def score(state: TaskState, target: Target) -> Score:
        text = state.output.completion
        value = CORRECT if target.text in text else PARTIAL if "ANSWER" in text else INCORRECT
        return Score(value=value, answer=text, explanation=f"expected {target.text}")

    return score


def main():
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    log_dir = sys.argv[2] if len(sys.argv) > 2 else "logs"
    task = Task(
        name="demo_multiply",
        dataset=[Sample(id=i + 1, input=f"What is {i + 2} x {i + 3}?", target=str((i + 2) * (i + 3)))
                 for i in range(samples)],
        solver=[use_tools(multiply()), generate()],
        scorer=[grade(), match(location="end")],
    )
    logs = inspect_eval(task, model=get_model("mockllm/model", custom_outputs=model_outputs),
                        log_dir=log_dir, display="none")
    log = logs[0]
    print(f"eval: {log.status}, {len(log.samples)} samples, log {log.location}")
    for s in log.results.scores:
        print("  " + s.name + ": " + ", ".join(f"{k}={m.value:.3f}" for k, m in s.metrics.items()))


if __name__ == "__main__":
    main()
