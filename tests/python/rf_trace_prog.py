"""A traced Python program for the tracing tests (run in its own process).

    rf_trace_prog.py demo             the nested trace the tests check, plus a
                                      sampled-out and a disabled trace
    rf_trace_prog.py sampling N RATE  N small traces at sampling ratio RATE

The last stdout line is JSON: what the program did (trace ids, counts), so
the tests can compare the records / MLflow with it.  Only ringflow is
imported: the program is what a user writes after `import ringflow.tracing as
mlflow`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import rf_traced
import ringflow
import ringflow.tracing as mlflow
from ringflow.tracing import SpanEvent, SpanStatus, SpanStatusCode, SpanType


class Doc:
    """Not JSON: recorded as its str()."""

    def __str__(self) -> str:
        return "Doc(42)"


traced = rf_traced.tools(mlflow, SpanType, SpanEvent)
tool_call = traced.tool_call


@mlflow.trace(name="llm_generate", span_type=SpanType.LLM, attributes={"model": "mock-1"})
async def generate(prompt: str, temperature: float = 0.0) -> str:
    a, b = await asyncio.gather(tool_call("double", 1), tool_call("double", 2))
    return f"answer({prompt}) {a} {b}"


@mlflow.trace(span_type="CUSTOM_STEP")
def stream(n: int):
    for i in range(n):
        yield i * i


@mlflow.trace(span_type=SpanType.AGENT)
def agent(question: str, secret_token: str = "tok-123", doc: Doc | None = None) -> dict:
    mlflow.update_current_trace(tags={"session": "s-42", "turn": 3},
                                metadata={"user_group": "beta"}, session_id="sess-1")
    docs, answer, squares = traced.work(question, generate, stream, 4)
    with traced.postprocess(answer) as span:
        span.set_status(SpanStatus(SpanStatusCode.CANCELLED, "user stopped"))
        span.set_outputs({"final": answer.upper()})
    # a third-party callable, wrapped
    dumps = mlflow.trace(json.dumps, name="json_dumps", span_type=SpanType.PARSER)
    dumps({"k": 1})
    # callback code: an explicit parent, ended on another thread
    parent = mlflow.get_current_active_span()
    cb = mlflow.start_span_no_context("callback", span_type=SpanType.TOOL, parent_span=parent,
                                      inputs={"event": "on_done"})
    t = threading.Thread(target=lambda: cb.end(outputs="handled", status="OK"))
    t.start()
    t.join()
    return {"answer": answer, "docs": len(docs), "squares": squares}


@mlflow.trace
def never_recorded(x: int) -> int:
    return inner(x) + 1


@mlflow.trace
def inner(x: int) -> int:
    return x


def demo() -> dict:
    out = {}
    result = agent("why is the sky blue?", doc=Doc())
    out["result"] = result
    out["trace_id"] = mlflow.get_last_active_trace_id()
    mlflow.set_sampling_ratio(0.0)
    never_recorded(1)
    with mlflow.start_span("sampled_out_block"):
        inner(2)
    mlflow.set_sampling_ratio(1.0)
    mlflow.disable()
    never_recorded(3)
    mlflow.enable()
    out["stats"] = ringflow.stats()
    return out


def sampling(n: int, rate: float) -> dict:
    mlflow.set_sampling_ratio(rate)
    for i in range(n):
        never_recorded(i)
    return {"n": n, "rate": rate, "stats": ringflow.stats()}


if __name__ == "__main__":
    mode = sys.argv[1]
    res = demo() if mode == "demo" else sampling(int(sys.argv[2]), float(sys.argv[3]))
    print(json.dumps(res, default=str))
