"""Run the pipeline outside the platform with a RecordingReporter and check what it learned."""

from pathlib import Path

import numpy as np
import pytest
from azuraforge_app_my_pipeline import MyPipeline

from azuraforge_pipeline import Cancelled, ConfigError, RecordingReporter, RunContext


def test_learns_the_weights_and_reports_every_epoch(tmp_path: Path) -> None:
    reporter = RecordingReporter()
    context = RunContext(artifact_dir=tmp_path, reporter=reporter, seed=0)
    config = MyPipeline.validate_config({"epochs": 20})
    result = MyPipeline().run(config, context)

    np.testing.assert_allclose(result["weights"], result["true_weights"], atol=0.05)
    assert result["val_mse"] < 0.1 * result["baseline_mean_mse"]
    assert [epoch for _, _, epoch in reporter.metric_points] == list(range(1, 21))
    assert {path for path, _, _ in reporter.artifacts} == {"model.safetensors", "metrics.json"}

    rows = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    preds = MyPipeline.predict(tmp_path / "model.safetensors", rows)
    assert preds[0] - preds[1] == pytest.approx(result["weights"][0], abs=1e-5)
    with pytest.raises(ValueError, match="expected rows of 3 numbers"):
        MyPipeline.predict(tmp_path / "model.safetensors", [[1.0, 2.0]])


def test_cancel_stops_the_run(tmp_path: Path) -> None:
    context = RunContext(artifact_dir=tmp_path, seed=0, stop_requested=lambda: True)
    with pytest.raises(Cancelled):
        MyPipeline().run(MyPipeline.validate_config({}), context)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="epochs"):
        MyPipeline.validate_config({"epochs": 0})
