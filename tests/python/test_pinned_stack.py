"""The pinned Python stack works as ringflow relies on it.

The sidecar uploads to MLflow and the benchmarks drive Inspect AI evals, so
these check the exact pinned versions against a real server / real eval.
"""

import time
from importlib.metadata import version

import pytest

MLFLOW_PIN = "3.17.2"
INSPECT_PIN = "0.3.285"


def test_pinned_versions_installed():
    import inspect_ai
    import mlflow

    assert mlflow.__version__ == MLFLOW_PIN
    assert version("mlflow") == MLFLOW_PIN
    assert version("inspect-ai") == INSPECT_PIN
    # inspect_ai exposes its version too; it must agree with the dist metadata.
    assert getattr(inspect_ai, "__version__", INSPECT_PIN) == INSPECT_PIN


def test_server_roundtrip_experiment_run_metric(mlflow_server):
    from mlflow.entities import RunStatus
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    name = f"rf-pinned-{time.time_ns()}"
    exp_id = client.create_experiment(name)
    assert client.get_experiment_by_name(name).experiment_id == exp_id

    run = client.create_run(exp_id, run_name="roundtrip")
    run_id = run.info.run_id
    t0 = int(time.time() * 1000)
    for step, value in enumerate([0.5, 0.25, 0.125]):
        client.log_metric(run_id, "loss", value, timestamp=t0 + step, step=step)
    client.log_param(run_id, "ring_slots", "4096")
    client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FINISHED))

    got = client.get_run(run_id)
    assert got.info.experiment_id == exp_id
    assert got.info.status == "FINISHED"
    assert got.data.metrics["loss"] == pytest.approx(0.125)  # latest step wins
    assert got.data.params["ring_slots"] == "4096"
    hist = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in sorted(hist, key=lambda m: m.step)] == [
        (0, 0.5), (1, 0.25), (2, 0.125)]

    # The run is findable the way a UI/user would look it up.
    found = client.search_runs([exp_id], filter_string="metrics.loss < 0.2")
    assert [r.info.run_id for r in found] == [run_id]


def test_mockllm_eval_usage(run_mock_eval):
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import ModelUsage

    usage = ModelUsage(input_tokens=11, output_tokens=7, total_tokens=18)
    samples = [("1+1?", "2"), ("2+2?", "4"), ("3+3?", "6")]
    log = run_mock_eval(samples=samples, outputs=["2", "4", "5"], usage=usage)

    assert log.status == "success", log.error
    assert log.eval.model == "mockllm/model"
    assert len(log.samples) == 3

    # Usage is summed per model over the 3 generate calls.
    stats = log.stats.model_usage["mockllm/model"]
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (33, 21, 54)
    for s in log.samples:
        u = s.model_usage["mockllm/model"]
        assert (u.input_tokens, u.output_tokens, u.total_tokens) == (11, 7, 18)

    # match() scored 2 of 3 correct: the mock outputs really went through.
    acc = log.results.scores[0].metrics["accuracy"].value
    assert acc == pytest.approx(2 / 3)

    # And the log on disk says the same (that file is what tools read).
    disk = read_eval_log(log.location)
    assert disk.stats.model_usage["mockllm/model"].total_tokens == 54
