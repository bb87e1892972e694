"""Assessments on a trace (MLflow's log_feedback / log_expectation /
log_assessment) and the entity classes they take, for ringflow.tracing.

An assessment is one record (docs/EVENTS.md, 28 trace_assessment) written in
the calling thread; ringflowd adds it to the trace's info when it still holds
the trace, else makes MLflow's CreateAssessment call.  MLflow's own entity
objects (mlflow.entities.Feedback, ...) are accepted too, so code that builds
them keeps working.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

from . import _producer, _ringflow

DEFAULT_FEEDBACK_NAME = "feedback"


class AssessmentSourceType:
    """Who made an assessment (MLflow's AssessmentSourceType)."""

    SOURCE_TYPE_UNSPECIFIED = "SOURCE_TYPE_UNSPECIFIED"
    LLM_JUDGE = "LLM_JUDGE"
    AI_JUDGE = "AI_JUDGE"  # deprecated by MLflow: stored as LLM_JUDGE
    HUMAN = "HUMAN"
    CODE = "CODE"
    _TYPES = ("SOURCE_TYPE_UNSPECIFIED", "LLM_JUDGE", "HUMAN", "CODE")

    def __init__(self, source_type: str):
        self._source_type = self._standardize(source_type)

    @staticmethod
    def _standardize(source_type: str) -> str:
        t = str(getattr(source_type, "value", source_type)).upper()
        if t == "AI_JUDGE":
            t = "LLM_JUDGE"
        if t not in AssessmentSourceType._TYPES:
            raise ValueError(f"Invalid assessment source type: {source_type}. "
                             f"Valid source types: {list(AssessmentSourceType._TYPES)}")
        return t


class AssessmentSource:
    """Source of an assessment (MLflow's AssessmentSource)."""

    def __init__(self, source_type: str, source_id: str | None = "default"):
        self.source_type = AssessmentSourceType._standardize(source_type)
        self.source_id = source_id

    def __eq__(self, other: object) -> bool:
        return (getattr(other, "source_type", None) == self.source_type and
                getattr(other, "source_id", None) == self.source_id)

    def __repr__(self) -> str:
        return f"AssessmentSource(source_type={self.source_type!r}, source_id={self.source_id!r})"


class AssessmentError:
    """Why a feedback could not be computed (MLflow's AssessmentError)."""

    def __init__(self, error_code: str, error_message: str | None = None,
                 stack_trace: str | None = None):
        self.error_code = error_code
        self.error_message = error_message
        self.stack_trace = stack_trace


class Assessment:
    """Common fields of Feedback and Expectation (MLflow's Assessment)."""

    kind = ""

    def __init__(self, name: str, source: AssessmentSource, trace_id: str | None = None,
                 rationale: str | None = None, metadata: dict[str, Any] | None = None,
                 span_id: str | None = None, create_time_ms: int | None = None,
                 last_update_time_ms: int | None = None):
        if not isinstance(source, AssessmentSource) and not hasattr(source, "source_type"):
            raise TypeError(f"`source` must be an AssessmentSource, got {type(source)}")
        self.name = name
        self.source = source
        self.trace_id = trace_id
        self.rationale = rationale
        self.metadata = metadata
        self.span_id = span_id
        now = int(time.time() * 1000)
        self.create_time_ms = create_time_ms if create_time_ms is not None else now
        self.last_update_time_ms = (last_update_time_ms if last_update_time_ms is not None
                                    else self.create_time_ms)
        self.assessment_id: str | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, value={self.value!r}, "
                f"trace_id={self.trace_id!r}, assessment_id={self.assessment_id!r})")


class Feedback(Assessment):
    """A score on a trace or span (MLflow's Feedback); source defaults to CODE."""

    kind = "feedback"

    def __init__(self, name: str = DEFAULT_FEEDBACK_NAME, value: Any = None,
                 error: BaseException | AssessmentError | str | None = None,
                 source: AssessmentSource | None = None, trace_id: str | None = None,
                 metadata: dict[str, Any] | None = None, span_id: str | None = None,
                 create_time_ms: int | None = None, last_update_time_ms: int | None = None,
                 rationale: str | None = None, overrides: str | None = None,
                 valid: bool = True):
        if source is None:
            source = AssessmentSource(AssessmentSourceType.CODE)
        if isinstance(error, BaseException):
            error = AssessmentError(
                error_code=type(error).__name__, error_message=str(error),
                stack_trace="".join(traceback.format_exception(
                    type(error), error, error.__traceback__))[:1000])
        elif isinstance(error, str):
            error = AssessmentError(error_code="ASSESSMENT_ERROR", error_message=error)
        elif error is not None and not isinstance(error, AssessmentError):
            raise TypeError("'error' must be an Exception, AssessmentError, or string. "
                            f"Got: {type(error)}")
        super().__init__(name, source, trace_id, rationale, metadata, span_id, create_time_ms,
                         last_update_time_ms)
        self.value = value
        self.error = error
        self.overrides = overrides
        self.valid = valid


class Expectation(Assessment):
    """An expected value (ground truth) on a trace (MLflow's Expectation);
    source defaults to HUMAN."""

    kind = "expectation"

    def __init__(self, name: str, value: Any, source: AssessmentSource | None = None,
                 trace_id: str | None = None, metadata: dict[str, Any] | None = None,
                 span_id: str | None = None, create_time_ms: int | None = None,
                 last_update_time_ms: int | None = None):
        if source is None:
            source = AssessmentSource(AssessmentSourceType.HUMAN)
        if value is None:
            raise ValueError("The `value` field must be specified.")
        super().__init__(name, source, trace_id, None, metadata, span_id, create_time_ms,
                         last_update_time_ms)
        self.value = value


def _fields_of(a: Any) -> dict[str, Any]:
    """Record fields of an assessment: ours, or one of MLflow's entities."""
    if isinstance(a, Assessment):
        kind, value, error = a.kind, a.value, getattr(a, "error", None)
    elif getattr(a, "expectation", None) is not None:  # mlflow.entities.Expectation
        kind, value, error = "expectation", a.expectation.value, None
    elif getattr(a, "feedback", None) is not None:  # mlflow.entities.Feedback
        kind, value, error = "feedback", a.feedback.value, a.feedback.error
    else:
        raise TypeError(f"not an assessment: {type(a)} (want Feedback or Expectation)")
    f: dict[str, Any] = {"kind": kind, "name": a.name}
    if value is not None:
        f["value"] = value
    if error is not None:
        e = {"error_code": error.error_code}
        if getattr(error, "error_message", None) is not None:
            e["error_message"] = error.error_message
        if getattr(error, "stack_trace", None) is not None:
            e["stack_trace"] = error.stack_trace
        f["error"] = e
    src = a.source
    f["source_type"] = str(getattr(src.source_type, "value", src.source_type))
    if src.source_id is not None:
        f["source_id"] = src.source_id
    if getattr(a, "rationale", None) is not None:
        f["rationale"] = a.rationale
    if a.metadata:
        f["metadata"] = {str(k): str(v) for k, v in a.metadata.items()}
    if a.span_id:
        f["span_id"] = str(a.span_id)
    f["time_ns"] = int(a.create_time_ms) * 1_000_000
    return f


def log_assessment(trace_id: str, assessment: Any) -> Any:
    """Log a Feedback or Expectation to the trace (MLflow's log_assessment).
    The assessment comes back with its trace_id and assessment_id set."""
    f = _fields_of(assessment)
    assessment.trace_id = trace_id
    if trace_id is None:  # an unrecorded trace (a no-op span's id): as MLflow, nothing
        return assessment
    aid = "a-" + os.urandom(16).hex()  # client-chosen: a replay upserts the same row
    f["trace_id"] = str(trace_id)
    f["assessment_id"] = aid
    if _producer.emit(_ringflow.EV_TRACE_ASSESSMENT, f):
        try:
            assessment.assessment_id = aid
        except AttributeError:
            pass
    return assessment


def log_feedback(*, trace_id: str, name: str = DEFAULT_FEEDBACK_NAME, value: Any = None,
                 source: AssessmentSource | None = None,
                 error: BaseException | AssessmentError | None = None,
                 rationale: str | None = None, metadata: dict[str, Any] | None = None,
                 span_id: str | None = None) -> Feedback:
    """A feedback (score) on a trace or one of its spans (MLflow's log_feedback)."""
    return log_assessment(trace_id, Feedback(name=name, value=value, error=error, source=source,
                                             rationale=rationale, metadata=metadata,
                                             span_id=span_id))


def log_expectation(*, trace_id: str, name: str, value: Any,
                    source: AssessmentSource | None = None,
                    metadata: dict[str, Any] | None = None,
                    span_id: str | None = None) -> Expectation:
    """An expected value on a trace (MLflow's log_expectation)."""
    return log_assessment(trace_id, Expectation(name=name, value=value, source=source,
                                                metadata=metadata, span_id=span_id))
