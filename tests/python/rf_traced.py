"""Traced functions shared by the tracing test programs (rf_trace_prog.py,
rf_compat_prog.py), written once against whichever tracing module the
program uses: MLflow's (`import mlflow`) or ringflow's (`import
ringflow.tracing as mlflow`)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any, Iterator


def tools(mlflow: Any, span_type: Any, span_event: Any) -> SimpleNamespace:
    """retrieve(query, k): a RETRIEVER span with one event; tool_call(name,
    arg): an async TOOL span returning arg * 2; parse(text): a PARSER span
    that raises ValueError; work(...) and postprocess(answer): the middle of
    each program's agent."""

    @mlflow.trace(span_type=span_type.RETRIEVER)
    def retrieve(query: str, k: int = 2) -> list[dict]:
        span = mlflow.get_current_active_span()
        span.add_event(span_event("index_lookup", attributes={"shards": 3, "hit": True}))
        return [{"doc": f"d{i}", "score": 1.0 / (i + 1)} for i in range(k)]

    @mlflow.trace(span_type=span_type.TOOL)
    async def tool_call(name: str, arg: int) -> int:
        await asyncio.sleep(0.001)
        return arg * 2

    @mlflow.trace(span_type=span_type.PARSER)
    def parse(text: str) -> dict:
        raise ValueError(f"cannot parse {text!r}")

    def work(question: str, generate: Any, stream: Any, n: int) -> tuple[list, str, list]:
        """Inside the agent's span: retrieve, generate (async, run to its
        end), a parse that fails (caught), n items of stream: (docs, answer,
        the items)."""
        docs = retrieve(question)
        answer = asyncio.run(generate(question))
        try:
            parse("%%")
        except ValueError:
            pass
        return docs, answer, list(stream(n))

    @contextlib.contextmanager
    def postprocess(answer: str) -> Iterator[Any]:
        """The agent's CHAIN span "postprocess" with its inputs and
        attributes set; the caller sets the rest."""
        with mlflow.start_span("postprocess", span_type=span_type.CHAIN,
                               attributes={"stage": "final"}) as span:
            span.set_inputs({"answer": answer})
            span.set_attribute("length", len(answer))
            span.set_attributes({"ok": True, "ratio": 0.5})
            yield span

    return SimpleNamespace(retrieve=retrieve, tool_call=tool_call, parse=parse, work=work,
                           postprocess=postprocess)
