"""One traced program written against MLflow's tracing API, for
test_trace_compat.py: run with `mlflow` it traces with MLflow itself; run
with `ringflow.tracing` it is the same program after the changed import.

    rf_compat_prog.py MODULE EXPERIMENT

The last stdout line is JSON: the ids of the traces it made, in order.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys

import rf_traced

mlflow = importlib.import_module(sys.argv[1])  # `import mlflow` / `import ringflow.tracing as mlflow`
from_entities = importlib.import_module(f"{sys.argv[1]}.entities")
SpanType = from_entities.SpanType
SpanEvent = from_entities.SpanEvent
AssessmentSource = from_entities.AssessmentSource

mlflow.set_experiment(experiment_name=sys.argv[2])

TOOLS = [{"type": "function", "function": {
    "name": "double", "description": "Double a number",
    "parameters": {"type": "object", "properties": {"x": {"type": "number"}},
                   "required": ["x"]}}}]


traced = rf_traced.tools(mlflow, SpanType, SpanEvent)
tool_call = traced.tool_call


@mlflow.trace(name="llm_generate", span_type=SpanType.LLM, attributes={"model": "mock-1"})
async def generate(prompt: str, temperature: float = 0.0) -> str:
    mlflow.tracing.set_span_chat_tools(mlflow.get_current_active_span(), TOOLS)
    a = await tool_call("double", 1)
    return f"answer({prompt}) {a}"


@mlflow.trace
def stream(n: int):
    for i in range(n):
        yield i * i


@mlflow.trace(span_type=SpanType.AGENT)
def agent(question: str) -> dict:
    mlflow.update_current_trace(tags={"session": "s-42"}, metadata={"user_group": "beta"})
    # feedback on the trace while it runs
    mlflow.log_feedback(trace_id=mlflow.get_active_trace_id(), name="live", value="good")
    docs, answer, squares = traced.work(question, generate, stream, 3)
    with traced.postprocess(answer) as span:
        span.set_outputs({"final": answer.upper()})
    try:
        with mlflow.start_span("fails") as span:
            span.set_inputs({"x": 1})
            raise KeyError("missing")
    except KeyError:
        pass
    return {"answer": answer, "docs": len(docs), "squares": squares}


@mlflow.trace(span_type=SpanType.CHAIN)
async def numbers(n: int):
    for i in range(n):
        await asyncio.sleep(0)
        yield {"i": i}


async def consume() -> list:
    return [x async for x in numbers(2)]


def main() -> None:
    agent("why is the sky blue?")
    t1 = mlflow.get_last_active_trace_id()
    asyncio.run(consume())  # an async generator function
    t2 = mlflow.get_last_active_trace_id()

    root = mlflow.start_span_no_context("manual", span_type=SpanType.CHAIN, inputs={"q": 1},
                                        tags={"kind": "manual"})
    child = mlflow.start_span_no_context("child", parent_span=root, inputs={"i": 2})
    child.set_attribute("depth", 1)
    child.end(outputs={"o": 3})
    root.end(outputs="done")
    t3 = root.trace_id

    # After the traces ended: wait until they are stored, then score and tag them.
    mlflow.flush_trace_async_logging()
    mlflow.set_trace_tag(t1, "reviewed", "yes")
    mlflow.set_trace_tag(t1, "to_delete", "x")
    mlflow.delete_trace_tag(t1, "to_delete")
    mlflow.log_feedback(trace_id=t1, name="relevance", value=0.75, rationale="on topic",
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge-1"),
                        metadata={"round": "2"})
    mlflow.log_feedback(trace_id=t1, name="correct", value=True)
    mlflow.log_feedback(trace_id=t3, name="judge_failed",
                        error=from_entities.AssessmentError(error_code="RATE_LIMIT",
                                                            error_message="429 from the judge"))
    mlflow.log_expectation(trace_id=t1, name="expected_answer",
                           value={"text": "blue", "n": 1},
                           source=AssessmentSource(source_type="HUMAN", source_id="labeler"))
    mlflow.log_expectation(trace_id=t3, name="expected_q", value=1)
    mlflow.flush_trace_async_logging()

    # A finished trace read back (MLflow's client) and copied into a new one.
    remote = mlflow.get_trace(t3)
    with mlflow.start_span("host", span_type=SpanType.AGENT) as span:
        span.set_inputs({"call": "remote"})
        mlflow.add_trace(remote)
    t4 = mlflow.get_last_active_trace_id()
    t5 = mlflow.log_trace(name="logged", request={"q": "x"}, response="y",
                          start_time_ms=1700000000000, execution_time_ms=250)
    mlflow.flush_trace_async_logging()
    print(json.dumps({"traces": [t1, t2, t3, t4, t5]}))


main()
