"""Real Inspect AI evals for the tests, run in a subprocess per eval.

    python rf_evals.py rich  <log_dir>     tool calls, 3 scorers, 2 epochs,
                                           an erroring and a retried sample
    python rf_evals.py plain <log_dir> N   N one-call samples
    python rf_evals.py varied <log_dir>    two models, failing tool calls,
                                           C/I/P/N, numeric and dict scores,
                                           2 epochs, a retried and a failing
                                           sample (prints the logs as JSON)

A subprocess per eval gives each its own environment (ring name, switches)
and a fresh hook instance (enabled() is cached per process, as Inspect asks).
mockllm outputs always carry usage: without it Inspect counts tokens with
tiktoken, which downloads an encoding and fails offline.  Prints the log path.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from inspect_ai import Task, eval as inspect_eval, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageTool, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import (CORRECT, INCORRECT, NOANSWER, PARTIAL, Score, Target, includes, match,
                               mean, scorer)
from inspect_ai.solver import Generate, TaskState, generate, solver, use_tools
from inspect_ai.tool import ToolError, tool

# The example's tool (examples/demo_eval.py): one definition for the demo,
# the benchmarks and the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from demo_eval import multiply  # noqa: E402

_attempts: dict[tuple, int] = {}


def mock_model(input, tools, tool_choice, config):
    """Ask for the tool first, answer once the tool has replied."""
    last = input[-1]
    n_in = 10 * len(input)
    # RF_TEST_MODEL_DELAY: seconds a call takes (trace tests check span lengths).
    delay = float(os.environ.get("RF_TEST_MODEL_DELAY", "0"))
    if delay:
        import time

        time.sleep(delay)
    if isinstance(last, ChatMessageTool):
        out = ModelOutput.from_content("mockllm/model", f"ANSWER: {last.text}")
        out.usage = ModelUsage(input_tokens=n_in, output_tokens=7, total_tokens=n_in + 7)
    else:
        out = ModelOutput.for_tool_call("mockllm/model", "multiply", {"a": 6, "b": 7})
        out.usage = ModelUsage(input_tokens=n_in, output_tokens=3, total_tokens=n_in + 3,
                               input_tokens_cache_read=2, reasoning_tokens=1, total_cost=0.001)
    return out


@solver
def trouble():
    """Sample "boom" always fails; sample "flaky" fails on its first attempt."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        key = (str(state.model), state.sample_id, state.epoch)
        _attempts[key] = _attempts.get(key, 0) + 1
        if state.sample_id == "boom":
            raise RuntimeError("boom sample always fails")
        if state.sample_id == "flaky" and _attempts[key] == 1:
            raise RuntimeError("flaky sample fails once")
        return state

    return solve


@scorer(metrics=[mean()])
def grade():
    """Letter grades: C, P or I."""

    async def score(state: TaskState, target: Target) -> Score:
        text = state.output.completion
        value = CORRECT if "42" in text else PARTIAL if "ANSWER" in text else INCORRECT
        return Score(value=value, answer=text, explanation=f"graded {value}")

    return score


@scorer(metrics={"accuracy": [mean()], "length": [mean()]})
def rubric():
    """A dict score."""

    async def score(state: TaskState, target: Target) -> Score:
        text = state.output.completion
        return Score(value={"accuracy": 1.0 if "42" in text else 0.0, "length": len(text)},
                     explanation="rubric")

    return score


@task
def rich():
    ids = ["q1", "q2", "q3", "flaky", "boom"]
    return Task(
        dataset=[Sample(id=i, input=f"What is 6 x 7? ({i})", target="42") for i in ids],
        solver=[trouble(), use_tools(multiply()), generate()],
        scorer=[match(), grade(), rubric()],
        epochs=2,
    )


@task
def plain(n: int = 10, note: str = "", password: str = ""):
    return Task(
        dataset=[Sample(id=i + 1, input=f"{note} Say {i}", target=str(i)) for i in range(n)],
        solver=[generate()],
        scorer=includes(),
    )


@tool
def divide():
    async def execute(a: int, b: int):
        """Divide two integers.

        Args:
            a: dividend
            b: divisor
        """
        if b == 0:
            raise ToolError("division by zero")
        return str(a // b)

    return execute


def varied_model(input, tools, tool_choice, config):
    """Samples "i" and "n" call divide by zero first (a failed tool call),
    then multiply; the others call multiply; then answer ("n" answers nothing)."""
    text = input[0].text
    tool_msgs = [m for m in input if isinstance(m, ChatMessageTool)]
    n_in = 10 * len(input)
    if ("(i)" in text or "(n)" in text) and not tool_msgs:
        out = ModelOutput.for_tool_call("mockllm/model", "divide", {"a": 6, "b": 0})
    elif not tool_msgs or (("(i)" in text or "(n)" in text) and len(tool_msgs) == 1):
        out = ModelOutput.for_tool_call("mockllm/model", "multiply", {"a": 6, "b": 7})
    else:
        answer = "" if "(n)" in text else "ANSWER: 41" if "(i)" in text else f"ANSWER: {tool_msgs[-1].text}"
        out = ModelOutput.from_content("mockllm/model", answer)
    out.usage = ModelUsage(input_tokens=n_in, output_tokens=len(input), total_tokens=n_in + len(input),
                           input_tokens_cache_read=1, reasoning_tokens=2, total_cost=0.0005)
    return out


@scorer(metrics=[mean()])
def letter():
    """C, P, I or N by sample id (p answers right but is graded partial)."""

    async def score(state: TaskState, target: Target) -> Score:
        value = {"c": CORRECT, "p": PARTIAL, "i": INCORRECT, "n": NOANSWER}.get(str(state.sample_id), CORRECT)
        return Score(value=value, answer=state.output.completion, explanation=f"letter {value}")

    return score


@scorer(metrics=[mean()])
def length():
    """A numeric score."""

    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=len(state.output.completion) / 4, explanation="length / 4")

    return score


@task
def varied():
    ids = ["c", "p", "i", "n", "flaky", "boom"]
    return Task(
        dataset=[Sample(id=i, input=f"What is 6 x 7? ({i})", target="42") for i in ids],
        solver=[trouble(), use_tools(multiply(), divide()), generate()],
        scorer=[match(), letter(), length(), rubric()],
        epochs=2,
    )


def plain_outputs(input, tools, tool_choice, config):
    out = ModelOutput.from_content("mockllm/model", input[-1].text.split()[-1])
    out.usage = ModelUsage(input_tokens=5, output_tokens=1, total_tokens=6)
    return out


def main() -> None:
    kind, log_dir = sys.argv[1], sys.argv[2]
    # varied and rich: a failing sample is retried once, and does not fail the eval.
    retried = dict(log_dir=log_dir, display="none", retry_on_error=1, fail_on_error=False)
    if kind == "varied":
        logs = inspect_eval(
            varied(),
            model=[get_model("mockllm/model", custom_outputs=varied_model),
                   get_model("mockllm/other", custom_outputs=varied_model)],
            max_tokens=64, temperature=0.5, **retried,
        )
        print(json.dumps([lg.location for lg in logs]))
        return
    if kind == "rich":
        logs = inspect_eval(
            rich(),
            # RF_TEST_MODEL: a model name MLflow rejects in metric keys, say.
            model=get_model(os.environ.get("RF_TEST_MODEL", "mockllm/model"), custom_outputs=mock_model),
            model_args={}, max_tokens=128, temperature=0.0, **retried,
        )
    else:
        # RF_TEST_SECRET (if set) goes where secrets leak in real evals: a
        # model arg, a task arg and the prompt text.
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
        secret = os.environ.get("RF_TEST_SECRET", "")
        model_args = {"custom_outputs": plain_outputs}
        if secret:
            model_args["api_key"] = secret
        logs = inspect_eval(
            plain(n=n, note=secret, password=secret),
            model="mockllm/model",
            model_args=model_args,
            log_dir=log_dir,
            display="none",
            max_samples=int(sys.argv[4]) if len(sys.argv) > 4 else None,
        )
    print(logs[0].location)
    print(logs[0].status)
    try:
        import ringflow

        print(json.dumps(ringflow.stats()))
    except ImportError:
        print("{}")


if __name__ == "__main__":
    main()
