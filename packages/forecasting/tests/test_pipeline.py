"""ForecastPipeline end to end through a toy app: a couple of epochs on a learnable series,
what it reports and saves, and `predict` from the saved model with a bounded horizon."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from toy_forecaster import OtherForecaster, ToyForecaster, toy_series

from azuraforge_forecasting import MAX_HORIZON, DataError
from azuraforge_pipeline import Cancelled, RecordingReporter, RunContext

ARTIFACTS = [
    "model.safetensors",
    "predictions.csv",
    "history.json",
    "metrics.json",
    "loss.png",
    "predictions.png",
    "report.md",
]


def train(tmp_path, frame, **config):
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    settings = {
        "csv_path": str(path),
        "model": "mlp",
        "window": 5,
        "epochs": 2,
        "learning_rate": 0.01,
        **config,
    }
    reporter = RecordingReporter()
    context = RunContext(artifact_dir=tmp_path / "artifacts", reporter=reporter, seed=0)
    summary = ToyForecaster().run(ToyForecaster.validate_config(settings), context)
    return summary, reporter, tmp_path / "artifacts"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    frame = toy_series(300)
    summary, reporter, artifacts = train(tmp_path_factory.mktemp("run"), frame)
    return frame, summary, reporter, artifacts


def test_a_run_reports_every_epoch_in_the_original_units(trained):
    _, summary, reporter, _ = trained
    assert [u["epoch"] for u in reporter.progress_updates] == [1, 2]
    epochs = [(values, epoch) for values, _, epoch in reporter.metric_points if "val_mae" in values]
    assert [epoch for _, epoch in epochs] == [1, 2]
    for values, _ in epochs:
        assert all(math.isfinite(v) for v in values.values())
    events = [payload for kind, payload in reporter.events if kind == "predictions"]
    assert [e["epoch"] for e in events] == [1, 2]
    last = events[-1]
    assert last["split"] == "validation" and last["target"] == "value"
    assert len(last["dates"]) == len(last["predicted"]) == summary["samples"]["val"]
    assert 30 < np.mean(last["predicted"]) < 70  # the series' units, not scaled ones


def test_a_run_learns_the_series_and_judges_it_against_the_naive_forecast(trained):
    _, summary, reporter, _ = trained
    assert summary["epochs_trained"] == 2
    assert summary["samples"] == {"train": 207, "val": 44, "test": 44}  # 295 windows
    assert set(summary["test"]) == {"model", "naive"}  # no season: no seasonal baseline
    # tomorrow flips today's deviation: the window predicts it, "tomorrow = today" cannot
    assert summary["test"]["model"]["mae"] < 0.7 * summary["test"]["naive"]["mae"]
    assert summary["beats_naive"] is True and summary["dm"]["naive"]["p_value"] < 0.05
    assert summary["verdict"].startswith("The model beats the naive forecast")
    assert ("info", summary["verdict"]) in reporter.logs


def test_a_run_saves_its_artifacts(trained):
    _, summary, _, artifacts = trained
    assert summary["artifacts"] == ARTIFACTS
    assert all((artifacts / name).stat().st_size > 0 for name in ARTIFACTS)
    assert json.loads((artifacts / "metrics.json").read_text())["verdict"] == summary["verdict"]
    table = pd.read_csv(artifacts / "predictions.csv")
    assert list(table.columns) == ["date", "split", "actual", "predicted", "naive"]
    assert table["split"].value_counts().to_dict() == {"val": 44, "test": 44}
    report = (artifacts / "report.md").read_text()
    assert report.startswith("# Toy Forecaster: value")
    assert "a window of 5 rows of 2 features (value, other)" in report
    assert summary["verdict"] in report
    assert (artifacts / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_predict_from_raw_rows_reproduces_the_runs_last_test_forecast(trained):
    frame, _, _, artifacts = trained
    table = pd.read_csv(artifacts / "predictions.csv")
    # the rows before the last one: their next step is the run's last test forecast
    rows = frame.iloc[:-1].to_dict("records")
    answer = ToyForecaster.predict(artifacts / "model.safetensors", rows)
    assert answer["target"] == "value"
    assert answer["dates"] == [frame["date"].iloc[-1]] == [table["date"].iloc[-1]]
    assert answer["predictions"] == pytest.approx([table["predicted"].iloc[-1]], rel=1e-4)


def test_predict_several_steps_feeds_each_forecast_back(trained):
    frame, _, _, artifacts = trained
    rows = frame.iloc[-10:].to_dict("records")  # a window of 5 needs only the last rows
    answer = ToyForecaster.predict(artifacts / "model.safetensors", {"rows": rows, "horizon": 4})
    assert answer["dates"] == ["2020-10-27", "2020-10-28", "2020-10-29", "2020-10-30"]
    assert len(answer["predictions"]) == 4
    assert all(30 < v < 70 for v in answer["predictions"])
    one = ToyForecaster.predict(artifacts / "model.safetensors", {"rows": rows, "horizon": 1})
    assert one["predictions"] == answer["predictions"][:1]


@pytest.mark.parametrize("horizon", [0, MAX_HORIZON + 1, 2.5, float("nan")])
def test_predict_refuses_a_horizon_out_of_bounds(trained, horizon):
    frame, _, _, artifacts = trained
    rows = frame.iloc[-10:].to_dict("records")
    with pytest.raises(DataError, match="horizon must be"):
        ToyForecaster.predict(artifacts / "model.safetensors", {"rows": rows, "horizon": horizon})


def test_predict_refuses_too_few_rows_a_path_inside_the_inputs_and_another_apps_model(trained):
    frame, _, _, artifacts = trained
    model = artifacts / "model.safetensors"
    with pytest.raises(DataError, match="4 rows are too few: this model needs the last 5 rows"):
        ToyForecaster.predict(model, frame.iloc[-4:].to_dict("records"))
    with pytest.raises(DataError, match="rows must be a list of row objects"):
        ToyForecaster.predict(model, {"rows": "/etc/passwd", "horizon": 1})
    with pytest.raises(DataError, match="was not trained by 'other_forecaster'"):
        OtherForecaster.predict(model, frame.iloc[-10:].to_dict("records"))


def test_a_cancelled_run_stops_and_saves_no_model(tmp_path):
    path = tmp_path / "series.csv"
    toy_series(200).to_csv(path, index=False)
    config = ToyForecaster.validate_config({"csv_path": str(path), "model": "mlp", "epochs": 50})
    context = RunContext(artifact_dir=tmp_path / "artifacts", seed=0, stop_requested=lambda: True)
    with pytest.raises(Cancelled):
        ToyForecaster().run(config, context)
    assert not (tmp_path / "artifacts" / "model.safetensors").exists()
