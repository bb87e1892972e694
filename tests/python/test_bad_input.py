"""Producer records are untrusted input to ringflowd: malformed bytes and
wrong field types written straight into the ring (libringflow's raw
rf_ring_write) must be counted and skipped, never crash the sidecar, and never
stop the good records around them from reaching a real MLflow server."""

from __future__ import annotations

import os
import re
import time

import msgpack
import pytest

from rf_rawring import RawRing
from test_sidecar import Sidecar, cleanup, exp_name, wait_finished  # noqa: F401

RUN_START, RUN_END, TASK_START, TASK_END, SAMPLE_END, MODEL_CALL = 3, 4, 5, 6, 11, 12

# Bytes no producer writes: each must be refused by the decoder (`malformed`).
MALFORMED = {
    "array root": msgpack.packb([1, 2, 3]),
    "string root": msgpack.packb("v"),
    "truncated map": msgpack.packb({"v": 1, "run_id": "r"})[:-2],
    "map32 of 2^32-1 entries": b"\xdf\xff\xff\xff\xff",
    "array32 of 2^32-1 in a map": b"\x81\xa1v\xdd\xff\xff\xff\xff",
    "str32 of 4 GiB": b"\x81\xa1v\xdb\xff\xff\xff\xf0abc",
    "bin32 of 4 GiB": b"\x81\xa1x\xc6\xff\xff\xff\xf0",
    "nested 200 deep": b"\x82\xa1v\x01\xa1x" + b"\x91" * 200 + b"\xc0",
    "integer map key": b"\x82\xa1v\x01\x07\xa1x",
    "no schema version": msgpack.packb({"run_id": "r"}),
    "version a string": msgpack.packb({"v": "1"}),
    "trailing bytes": msgpack.packb({"v": 1}) + b"\x00",
    "never-used byte 0xc1": b"\x81\xa1v\xc1",
    "empty": b"",
    "garbage": bytes(range(256)) * 4,
}


def rec(type_: int, **fields) -> tuple[int, bytes]:
    return type_, msgpack.packb({"v": 1, **fields}, use_bin_type=True)


def good_run(run_id: str, eval_id: str, t0: float) -> list[tuple[int, bytes]]:
    out = [rec(RUN_START, run_id=run_id, task_names=["t"], time=t0),
           rec(TASK_START, run_id=run_id, eval_id=eval_id, task="t", model="mockllm/model",
               created=t0 + 1)]
    for i in range(3):
        out.append(rec(SAMPLE_END, run_id=run_id, eval_id=eval_id, sample_uuid=f"s{i}",
                       sample_id=i + 1, epoch=1, total_time=1.0 + i, completed_at=t0 + 2 + i,
                       scores={"match": {"value": "C"}}))
    out += [rec(TASK_END, run_id=run_id, eval_id=eval_id, status="success", total_samples=3,
                completed_samples=3, completed_at=t0 + 6, time=t0 + 6),
            rec(RUN_END, run_id=run_id, time=t0 + 7)]
    return out


def test_malformed_and_mistyped_records_are_counted_and_good_ones_arrive(mlflow_server, tmp_path,
                                                                          exp_name):  # noqa: F811
    from mlflow.tracking import MlflowClient

    ring = f"/rf-pytest-bad-{os.getpid()}"
    spool = tmp_path / "spool"
    sc = Sidecar(mlflow_server, ring, spool, exp_name, RINGFLOW_SHUTDOWN_MS="5000")
    try:
        w = RawRing(ring, spool)
        assert w.rc == 0, w.error
        t0 = time.time() - 60
        # Wrong types inside otherwise valid maps: ids that are maps or
        # numbers (unusable: `invalid`), and fields of the wrong type
        # (`bad_fields`: ignored, the rest of the record used).
        invalid = [rec(RUN_START, run_id={"a": 1}, time=t0),
                   rec(TASK_START, run_id="bad-run", eval_id=12345, task="t"),
                   rec(SAMPLE_END, eval_id=["x"], total_time=1.0),
                   rec(MODEL_CALL, eval_id="bad-eval", event_uuid=None)]
        mistyped = [
            rec(SAMPLE_END, run_id="good-run-1", eval_id="good-eval-1", sample_uuid="sx",
                total_time="not a number", working_time={"x": 1},
                completed_at=float("nan"), scores="C"),
            rec(MODEL_CALL, run_id="good-run-1", eval_id="good-eval-1", event_uuid="m1",
                input_tokens={"n": 1}, output_tokens=[1], completed=float("inf")),
            rec(SAMPLE_END, run_id="good-run-1", eval_id="good-eval-1", sample_uuid="sy",
                total_time=float("inf"), completed_at=-5.0, model_usage=[1, 2]),
        ]
        overlong = [rec(TASK_START, run_id="good-run-2", eval_id="good-eval-2",
                        task="long-" + "x" * 20000, model="m" * 9000, created=t0 + 1,
                        task_args={"k" * 400: "v" * 7000})]
        unknown = [rec(999, whatever=True), rec(0x3fffffff, x=1)]
        # Good runs around the bad input: before, in between, after.
        run1 = good_run("good-run-1", "good-eval-1", t0)
        run2 = good_run("good-run-2", "good-eval-2", t0)
        sequence = (run1[:2] + [(SAMPLE_END, b) for b in MALFORMED.values()] + invalid + mistyped
                    + run1[2:] + overlong + run2[:1] + run2[2:] + unknown)
        for type_, payload in sequence:
            assert w.write(type_, payload) == 0
        w.close()
        client = MlflowClient(mlflow_server)
        wait_finished(client, exp_name, 90, runs=4)
        assert sc.proc.poll() is None, "ringflowd died on bad input"
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
    summary = [ln for ln in log_text.splitlines() if "records=" in ln][-1]
    counts = dict(re.findall(r"(\w+)=(\d+)", summary))
    assert int(counts["malformed"]) == len(MALFORMED), summary
    assert int(counts["invalid"]) == len(invalid), summary
    # string/map/array where numbers belong (total_time, working_time,
    # input_tokens, output_tokens), NaN/inf/negative times (completed_at x2,
    # completed), a string where the scores map belongs: 8 fields, each
    # counted and ignored.  (sample_end's model_usage feeds only the artifact
    # table, which takes an array there as absent.)
    assert int(counts["bad_fields"]) == 8, summary
    assert "malformed record" in log_text  # each (up to 10) reported with its reason
    assert "declared sizes larger than the record" in log_text or "truncated" in log_text

    exp = client.get_experiment_by_name(exp_name)
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    by_name = {r.info.run_name: r for r in runs}
    child1 = next(r for r in runs if r.data.tags.get("inspect.eval_id") == "good-eval-1")
    hist = client.get_metric_history(child1.info.run_id, "sample/total_time")
    # mistyped ones ignored; an infinite one is a number, logged as such
    # (MLflow stores it as the largest double) but kept out of the latency
    # percentiles
    assert sorted(m.value for m in hist) == [1.0, 2.0, 3.0, 1.7976931348623157e308]
    assert child1.data.metrics["latency/per_sample_p95_seconds"] <= 3.0
    assert child1.data.metrics["total_samples"] == 3
    child2 = next(r for r in runs if r.data.tags.get("inspect.eval_id") == "good-eval-2")
    assert len(child2.data.params["task"]) == 6000  # an overlong value is cut to MLflow's limit
    assert len(client.get_metric_history(child2.info.run_id, "sample/total_time")) == 3
    assert "inspect-good-run" in by_name


def test_garbage_journal_is_reported_and_replaced(mlflow_server, tmp_path, exp_name):  # noqa: F811
    """A journal that is not one (bytes from elsewhere) is reported and
    started over; the sidecar serves the ring."""
    ring = f"/rf-pytest-badj-{os.getpid()}"
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / f"journal-{ring[1:]}.rfj").write_bytes(os.urandom(4096))
    sc = Sidecar(mlflow_server, ring, spool, exp_name)
    try:
        log_text = sc.stop()
    finally:
        cleanup(sc, ring)
    assert "not a ringflow journal; started over" in log_text
