"""Run the pipeline outside the platform with a RecordingReporter and check what it learned."""

from pathlib import Path

import numpy as np
import pytest
from azuraforge_app_my_pipeline import MyPipeline

from azuraforge_pipeline import Cancelled, ConfigError, PathPolicy, RecordingReporter, RunContext


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


def test_learns_from_a_csv_file(tmp_path: Path) -> None:
    rows = [(x, -x, 2.0 * x + 1.0) for x in np.linspace(-1, 1, 50)]
    (tmp_path / "rows.csv").write_text("a,b,y\n" + "\n".join(",".join(map(str, r)) for r in rows))
    config = MyPipeline.validate_config(
        {"csv_path": str(tmp_path / "rows.csv"), "n_features": 2, "epochs": 60}
    )
    result = MyPipeline().run(config, RunContext(artifact_dir=tmp_path / "run", seed=0))
    assert result["val_mse"] < 0.01
    (tmp_path / "bad.csv").write_text("a,b,y\nsecret,1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: not a readable CSV") as err:
        MyPipeline().run(
            MyPipeline.validate_config({"csv_path": str(tmp_path / "bad.csv")}),
            RunContext(artifact_dir=tmp_path / "run2", seed=0),
        )
    assert "secret" not in str(err.value)


def test_a_server_confines_the_data_path(tmp_path: Path) -> None:
    # what the platform does for an API client: only its uploads and the data roots
    policy = PathPolicy.confined([tmp_path / "uploads"], base=tmp_path)
    MyPipeline.validate_config({"csv_path": "uploads/rows.csv"}, path_policy=policy)
    with pytest.raises(ConfigError, match="outside the folders") as err:
        MyPipeline.validate_config({"csv_path": "/etc/passwd"}, path_policy=policy)
    assert [path for path, _ in err.value.errors] == ["csv_path"]
