"""`ForecastPipeline`: the base class of AzuraForge's forecasting apps (weather, stocks).

A forecaster app subclasses `ForecastPipeline` and supplies its data (`load_frame`), what to
forecast and from which columns (`make_recipe`), and how raw rows become model features
(`engineer`). The base class does the rest, the same honest way for every app:

* a chronological train / validation / test split; the seasonal profile and the scalers are
  fitted on the training part only;
* a recurrent network (LSTM/GRU) or an MLP over a window of past rows, trained with early
  stopping on the validation part, reporting loss, validation metrics in the original units
  and the current validation predictions (a `predictions` event) every epoch, and stopping
  at the next batch once the run is cancelled;
* every test metric next to the naive forecast (next = last) and, where the series has a
  season, the seasonal average, with a Diebold-Mariano test of the model against each: the
  verdict says "beats" only for a significant difference (`verdict.py`);
* artifacts: metrics, history, the prediction series (CSV), plots, a markdown report, and the
  model saved with its whole preprocessing (the "recipe"), so `predict(model_path, rows)`
  takes raw rows in the dataset's own form and answers in the original units.

This module only wires the steps together; each lives in a module of its own: `data.py`
(reading and validating CSV files and rows, `DataError`), `config.py` (`ForecastConfig`),
`problem.py` (the split, scalers and windows), `training.py` (the model and its fitting),
`report.py` (the summary, the verdict and the markdown report), `plots.py` and `predict.py`
(forecasting from a saved model). The names this module always exported are importable
from it still.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from azuraforge_learner import EarlyStopping, Learner, save_model
from azuraforge_learner.timeseries import SeasonalProfile
from azuraforge_pipeline import Cancelled, Pipeline, PipelineConfig, RunContext

from .config import ForecastConfig
from .data import (
    DataError,
    column_name,
    frame_from_rows,
    package_data_file,
    prepare_frame,
    read_csv,
)
from .plots import plot_history, plot_predictions
from .predict import MAX_HORIZON, forecast_horizon
from .predict import predict as forecast
from .problem import EVAL_HORIZON, MIN_SAMPLES, Problem, iso_dates, next_dates
from .report import evaluate, write_report
from .training import MAX_EVENT_POINTS, build_model, train

ForecastConfigT = TypeVar("ForecastConfigT", bound=ForecastConfig)


class ForecastPipeline(Pipeline[ForecastConfigT]):
    """Base of a forecasting app: see the module docstring. Not registered itself. An app
    names its config model: `class Weather(ForecastPipeline[WeatherConfig])`."""

    Config: ClassVar[type[PipelineConfig]] = ForecastConfig
    warmup: ClassVar[int] = 0  # leading rows whose features are undefined (returns need 1)
    what: ClassVar[str] = "series"  # for messages and the report

    # ---- the app's part
    def load_frame(self, config: ForecastConfigT, context: RunContext) -> tuple[pd.DataFrame, str]:
        """The validated rows (see `prepare_frame`) and a short description of the source."""
        raise NotImplementedError

    def make_recipe(self, config: ForecastConfigT, frame: pd.DataFrame) -> dict[str, Any]:
        """{'target', 'inputs' (raw columns used), 'target_mode' ('log_return'|'anomaly'),
        'window', 'step' ('B' or seconds), 'seasonal_cycles' (list or None), ...}."""
        raise NotImplementedError

    @classmethod
    def engineer(cls, frame: pd.DataFrame, recipe: Mapping[str, Any]) -> np.ndarray:
        """Model features (T, F) of the raw rows, NaN for the first `warmup` rows."""
        raise NotImplementedError

    @classmethod
    def feature_names(cls, recipe: Mapping[str, Any]) -> list[str]:
        raise NotImplementedError

    @classmethod
    def next_row(cls, last: Mapping[str, Any], date: Any, value: float,
                 recipe: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
        """The row appended for a multi-step forecast: the other columns kept as they were."""
        return {**last, "date": date, recipe["target"]: value}

    # ---- shared helpers
    @classmethod
    def season(cls, dates: Any, recipe: Mapping[str, Any], column: int = 0) -> np.ndarray:
        """The seasonal average of the target (column 0) at `dates`; zeros without seasons."""
        d = np.asarray(dates, dtype="datetime64[s]")
        if not recipe.get("seasonal"):
            return np.zeros(len(d))
        return SeasonalProfile.from_state(recipe["seasonal"]).predict(d)[:, column]

    # ---- the run
    def run(self, config: ForecastConfigT, context: RunContext) -> dict[str, Any]:
        frame, source = self.load_frame(config, context)
        context.check_cancelled()  # a download may have taken a while
        if config.max_rows is not None and len(frame) > config.max_rows:
            frame = frame.iloc[-config.max_rows :].reset_index(drop=True)
        recipe = self.make_recipe(config, frame)
        recipe.update(pipeline=self.id, version=self.version)
        step = recipe["step"]
        context.log(
            f"{source}: {len(frame)} rows from {iso_dates(frame['date'].iloc[:1], step)[0]} "
            f"to {iso_dates(frame['date'].iloc[-1:], step)[0]}; target {recipe['target']!r}"
        )
        problem = Problem(type(self), frame, recipe, config.val_fraction, config.test_fraction)
        learner, early = train(config, context, problem)
        if context.should_stop():
            raise Cancelled("the run was cancelled")
        return self._finish(config, context, problem, learner, early, source)

    def _finish(self, config: ForecastConfigT, context: RunContext, p: Problem, learner: Learner,
                early: EarlyStopping, source: str) -> dict[str, Any]:  # fmt: skip
        recipe = p.recipe
        summary, table = evaluate(p, learner, early, source)
        context.log(summary["verdict"])
        context.log_metrics(
            {k: v for k, v in summary.items() if k.startswith("test_") and isinstance(v, float)},
            epoch=learner.epoch,
        )
        # Artifacts: the model with its preprocessing first, then what a person reads.
        meta = {"recipe": recipe, "features": self.feature_names(recipe),
                "model": {"kind": config.model, "hidden_size": config.hidden_size,
                          "num_layers": config.num_layers},
                "test_metrics": summary["test"]}  # fmt: skip
        model_path = save_model(learner.model, context.artifact_path("model.safetensors"), meta)
        context.save_artifact("model.safetensors", model_path)
        context.save_artifact("predictions.csv", table.to_csv(index=False, float_format="%.6g"))
        context.save_artifact("history.json", learner.history.to_dict())
        context.save_artifact("metrics.json", summary)
        context.save_artifact("loss.png", plot_history(learner.history.to_dict()))
        test_rows = table[table["split"] == "test"]
        title = f"{self.name}: {recipe['target']} on the test period"
        context.save_artifact("predictions.png", plot_predictions(test_rows, title))
        context.save_artifact("report.md", self.report(config, summary, recipe))
        summary["artifacts"] = ["model.safetensors", "predictions.csv", "history.json",
                                "metrics.json", "loss.png", "predictions.png", "report.md"]  # fmt: skip
        return summary

    def report(
        self, config: ForecastConfigT, summary: Mapping[str, Any], recipe: Mapping[str, Any]
    ) -> str:
        """The markdown report (`report.md`); an app may override it."""
        return write_report(self.name, config, summary, recipe, self.feature_names(recipe))

    # ---- inference on raw rows
    @classmethod
    def predict(
        cls, model_path: str | os.PathLike[str], inputs: Any, horizon: int = 1
    ) -> dict[str, Any]:
        """Forecast the `horizon` steps after the last of the raw rows `inputs` (in the
        dataset's own form: a list of dicts, a DataFrame or a CSV path; or, as the HTTP API
        sends it, {"rows": [...], "horizon": N}), in the original units. Steps after the
        first feed each prediction back as a new row (see `next_row`); `horizon` is at most
        MAX_HORIZON."""
        return forecast(cls, model_path, inputs, horizon)


__all__ = [
    "EVAL_HORIZON",
    "MAX_EVENT_POINTS",
    "MAX_HORIZON",
    "MIN_SAMPLES",
    "DataError",
    "ForecastConfig",
    "ForecastPipeline",
    "build_model",
    "column_name",
    "forecast_horizon",
    "frame_from_rows",
    "next_dates",
    "package_data_file",
    "plot_history",
    "plot_predictions",
    "prepare_frame",
    "read_csv",
]
