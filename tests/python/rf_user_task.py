"""The task test_user_path.py runs with `inspect eval`, as a user would:
N one-call samples on mockllm/model, set in the task itself.  Its outputs
carry `usage` (else Inspect counts tokens with tiktoken, which downloads an
encoding and fails offline)."""

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


def outputs(input, tools, tool_choice, config):
    out = ModelOutput.from_content("mockllm/model", input[-1].text.split()[-1])
    out.usage = ModelUsage(input_tokens=5, output_tokens=1, total_tokens=6)
    return out


@task
def user_task(n: int = 3):
    return Task(dataset=[Sample(id=i + 1, input=f"Say {i}", target=str(i)) for i in range(n)],
                solver=[generate()], scorer=includes(),
                model=get_model("mockllm/model", custom_outputs=outputs))
