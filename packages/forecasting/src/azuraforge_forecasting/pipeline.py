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
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

import azuraforge_core as af
from azuraforge_learner import (
    GRU,
    LSTM,
    Adam,
    Callback,
    EarlyStopping,
    Flatten,
    Learner,
    Linear,
    ReLU,
    Sequential,
    StandardScaler,
    chronological_split,
    load_model,
    save_model,
    scaler_from_state,
)
from azuraforge_learner.timeseries import (
    SeasonalProfile,
    compare_forecasts,
    downsample_indices,
    forecast_metrics,
)
from azuraforge_pipeline import (
    Cancelled,
    DataPath,
    FieldError,
    Pipeline,
    PipelineConfig,
    RunContext,
    applies_when,
)

from .verdict import describe_verdict, judge_forecasts

MAX_EVENT_POINTS = 300  # a live chart needs no more; keeps each event small
MIN_SAMPLES = 20  # windows, before the split: fewer cannot train and test anything
MAX_HORIZON = 1000  # steps one `predict` forecasts at most: each is one more model call
# Steps ahead of the forecasts a run evaluates: each target is the row right after its
# window (`_Problem`: actual = y[end + 1]); the DM test's autocovariance lags depend on it.
EVAL_HORIZON = 1


class DataError(ValueError):
    """Data that cannot be used, with a message that names the problem (missing column,
    too few rows, non-numeric cells, ...). Meant to be shown to the user as it is."""


# ----------------------------------------------------------------------- reading data
def package_data_file(package: str, relative: str, install_hint: str) -> Path:
    """A data file shipped inside an installed package, found WITHOUT importing the package
    (importing `arch` or `pmdarima` would pull in scipy and statsmodels for nothing)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the package {package!r} is not installed; {install_hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(f"the installed {package!r} has no data file {relative!r}; {install_hint}")
    return path


def column_name(name: Any) -> str:
    """'Adj Close' -> 'adj_close': CSV headers are matched case- and space-insensitively."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def read_csv(source: str | Path | bytes | io.IOBase, what: str = "the CSV file") -> pd.DataFrame:
    """A CSV (path, bytes or open file; .gz read transparently) as a DataFrame of strings and
    numbers, or a DataError saying why not. The messages name the file by its name only and
    never quote its contents (a server shows them to the client that named the file)."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{what}: no such file ({path.name})")
        source = path
    elif isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        return pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} is not UTF-8 text (a bad byte at offset {exc.start})") from None
    except pd.errors.ParserError as exc:
        # the C parser's messages give line and field counts, never cell contents
        raise DataError(f"{what} is not a readable CSV file: {exc}") from None
    except (ValueError, OSError):
        raise DataError(f"{what} is not a readable CSV file") from None


def _rows(mask: pd.Series, values: pd.Series | None, limit: int = 5) -> str:
    where = np.flatnonzero(mask.to_numpy())
    value = (lambda i: f" ({values.iloc[i]!r})") if values is not None else (lambda i: "")
    shown = ", ".join(f"row {i + 1}{value(i)}" for i in where[:limit])
    more = f" and {len(where) - limit} more" if len(where) > limit else ""
    return f"{shown}{more}"


def prepare_frame(
    df: pd.DataFrame,
    required: Sequence[str] = (),
    date_column: str = "date",
    what: str = "the data",
    *,
    quote_values: bool = True,
) -> pd.DataFrame:
    """Validate a table of dated rows: a 'date' column of dates, the `required` columns
    present and numeric, rows sorted by date without duplicates. Returns 'date' plus every
    numeric column (float64); columns of text (e.g. a 'weather' label) are left out.
    Row numbers in messages count data rows from 1; offending cells are quoted only with
    `quote_values` (rows the caller sent itself, not a file's contents)."""
    df = df.copy()
    df.columns = [column_name(c) for c in df.columns]
    date_column = column_name(date_column)
    columns = ", ".join(df.columns) or "none"
    if date_column not in df.columns:
        raise DataError(f"{what} has no '{date_column}' column (its columns: {columns})")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} is missing the column(s) {', '.join(repr(c) for c in missing)} "
            f"(its columns: {columns})"
        )
    if len(df) == 0:
        raise DataError(f"{what} has no rows")
    raw_dates = df[date_column]
    dates = pd.to_datetime(raw_dates, errors="coerce", format="mixed", utc=True)
    if dates.isna().any():
        raise DataError(
            f"{what}: column '{date_column}' has values that are not dates: "
            f"{_rows(dates.isna(), raw_dates if quote_values else None)}"
        )
    out = pd.DataFrame({"date": dates.dt.tz_localize(None)})
    for col in df.columns:
        if col == date_column:
            continue
        raw = df[col]
        values = pd.to_numeric(raw, errors="coerce")
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        bad = values.isna() & ~blank | np.isinf(values)
        if col not in required and bad.sum() > 0.5 * max(int((~blank).sum()), 1):
            continue  # a text column (labels, tickers): not a feature
        if bad.any():
            shown = _rows(bad, raw if quote_values else None)
            raise DataError(f"{what}: column {col!r} has non-numeric values: {shown}")
        if blank.any():
            raise DataError(
                f"{what}: column {col!r} has empty or missing cells in {_rows(blank, None)}; "
                "fill or drop those rows"
            )
        out[col] = values.astype(np.float64)
    duplicated = out["date"].duplicated()
    if duplicated.any():
        shown = _rows(duplicated, out["date"].astype(str) if quote_values else None)
        raise DataError(f"{what}: some dates appear twice: {shown}")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def frame_from_rows(rows: Any, required: Sequence[str], what: str = "the rows") -> pd.DataFrame:
    """Raw rows for `predict`: a list of dicts, a DataFrame, or a CSV file as a `Path` (an
    upload). A plain string is never taken for a file: JSON from a client cannot name one."""
    if isinstance(rows, os.PathLike):
        df = read_csv(Path(rows), what)
        return prepare_frame(df, required=required, what=what, quote_values=False)
    if isinstance(rows, str):
        raise DataError(f"{what} must be a list of dicts (one per row); upload a CSV file instead")
    if isinstance(rows, pd.DataFrame):
        df = rows.reset_index() if "date" not in map(column_name, rows.columns) else rows
    else:
        try:
            df = pd.DataFrame(list(rows))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what} must be a list of dicts (one per row): {exc}") from None
    return prepare_frame(df, required=required, what=what)


def forecast_horizon(value: Any) -> int:
    """A user's `horizon` as a whole number of steps in 1..MAX_HORIZON, or a DataError that
    says what is wrong (a float like 1e20 or Infinity must not become a loop count)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"horizon must be a whole number of steps, got {type(value).__name__}")
    whole = not isinstance(value, (float, np.floating)) or (
        np.isfinite(value) and float(value).is_integer()
    )
    if not whole:
        raise DataError(f"horizon must be a whole number of steps, got {float(value)!r}")
    steps = int(value)
    if not 1 <= steps <= MAX_HORIZON:
        raise DataError(f"horizon must be between 1 and {MAX_HORIZON} steps, got {steps:g}")
    return steps


# ------------------------------------------------------------------------------ config
class ForecastConfig(PipelineConfig):
    """Fields every forecaster shares; each app sets its own defaults and data fields."""

    csv_path: DataPath | None = Field(
        None,
        title="CSV file",
        description="Your own CSV of dated rows (a 'date' column plus numeric columns), used "
        "when the dataset is 'csv': an upload (`uploads/<id>.csv`) or a file in a data root.",
        json_schema_extra=applies_when(dataset=["csv"]),
    )
    window: int = Field(20, ge=1, le=365, title="Window", description="Past rows the model sees.")
    model: Literal["lstm", "gru", "mlp"] = Field(
        "lstm",
        title="Model",
        description="LSTM or GRU over the window, or an MLP on the flattened window.",
    )
    hidden_size: int = Field(32, ge=2, le=512, title="Hidden units")
    num_layers: int = Field(1, ge=1, le=3, title="Recurrent layers")
    epochs: int = Field(30, ge=1, le=1000, title="Epochs", description="At most this many.")
    patience: int = Field(
        5,
        ge=0,
        le=100,
        title="Early-stopping patience",
        description="Epochs without a better validation loss before training stops; the "
        "best epoch's weights are kept.",
    )
    batch_size: int = Field(64, ge=1, le=4096, title="Batch size")
    learning_rate: float = Field(1e-3, gt=0, le=1, title="Learning rate (Adam)")
    val_fraction: float = Field(
        0.15, ge=0.05, le=0.4, title="Validation share", description="Rows after training."
    )
    test_fraction: float = Field(
        0.15, ge=0.05, le=0.4, title="Test share", description="The last rows, held out."
    )
    max_rows: int | None = Field(
        None, ge=30, title="Use only the last N rows", description="Empty: use all rows."
    )
    seed: int = Field(0, ge=0, title="Seed", description="Weights and shuffling.")

    @model_validator(mode="after")
    def _csv_needs_path(self) -> ForecastConfig:
        if getattr(self, "dataset", None) == "csv" and not self.csv_path:
            raise FieldError("csv_path", "csv_path is required when dataset is 'csv'")
        return self


# ------------------------------------------------------------------------ the pipeline
def _encode(y_next: Any, y_last: Any, season_next: Any, mode: str) -> np.ndarray:
    if mode == "log_return":
        return np.log(np.asarray(y_next) / np.asarray(y_last))
    return np.asarray(y_next) - np.asarray(season_next)  # "anomaly"


def _decode(z: Any, y_last: Any, season_next: Any, mode: str) -> np.ndarray:
    if mode == "log_return":
        return np.asarray(y_last) * np.exp(np.asarray(z))
    return np.asarray(season_next) + np.asarray(z)


def next_dates(last: Any, steps: int, step: str | float) -> np.ndarray:
    """The `steps` dates after `last`: business days for step 'B', else `step` seconds apart."""
    if step == "B":
        day = np.asarray(last, dtype="datetime64[D]")
        return np.busday_offset(day, np.arange(1, steps + 1), roll="forward").astype(
            "datetime64[s]"
        )
    base = np.asarray(last, dtype="datetime64[s]")
    return base + (np.arange(1, steps + 1) * float(step)).astype("timedelta64[s]")


def _iso(dates: Any, step: str | float) -> list[str]:
    unit: Any = "D" if step == "B" or float(step) >= 86400 else "m"
    return [str(d) for d in np.datetime_as_string(np.asarray(dates, "datetime64[s]"), unit=unit)]


def build_model(
    kind: str, n_features: int, window: int, hidden: int, layers: int = 1
) -> Sequential:
    if kind == "mlp":
        return Sequential(Flatten(), Linear(window * n_features, hidden), ReLU(), Linear(hidden, 1))
    rnn = LSTM if kind == "lstm" else GRU
    return Sequential(rnn(n_features, hidden, num_layers=layers), Linear(hidden, 1))


class _StopOnCancel(Callback):
    """Stops the Learner at the next batch once the platform asked the run to stop."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def on_batch_end(self, logs: dict[str, Any]) -> bool:
        return self.context.should_stop()


class _LiveReport(Callback):
    """Every epoch: progress, loss and validation metrics in the original units, and the
    validation predictions against the truth as a `predictions` event (for a live chart)."""

    def __init__(self, context: RunContext, forecaster: _Problem, total_epochs: int) -> None:
        self.context, self.problem, self.total = context, forecaster, total_epochs
        self.keep = downsample_indices(len(forecaster.idx_val), MAX_EVENT_POINTS)

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        assert self.learner is not None
        p = self.problem
        pred = p.predict_split(self.learner, "val")
        actual, naive = p.actual["val"], p.naive["val"]
        m = forecast_metrics(actual, pred)
        naive_mae = float(np.mean(np.abs(actual - naive)))
        epoch = int(logs["epoch"])
        self.context.progress(epoch=epoch, total_epochs=self.total)
        values = {"loss": logs["loss"], "val_loss": logs["val_loss"], "lr": logs["lr"]}
        values.update({"val_mae": m["mae"], "val_rmse": m["rmse"], "val_naive_mae": naive_mae})
        values["val_mae_ratio_vs_naive"] = float(m["mae"] or 0.0) / naive_mae if naive_mae else 0.0
        self.context.log_metrics(
            {k: float(v) for k, v in values.items() if v is not None}, epoch=epoch
        )
        k = self.keep
        self.context.emit(
            "predictions",
            {
                "epoch": epoch,
                "split": "validation",
                "target": p.recipe["target"],
                "dates": _iso(p.dates_next["val"][k], p.recipe["step"]),
                "actual": np.round(actual[k], 6).tolist(),
                "predicted": np.round(pred[k], 6).tolist(),
                "naive": np.round(naive[k], 6).tolist(),
            },
        )


class _Problem:
    """The data of one run turned into model inputs, targets and baselines per split."""

    def __init__(self, app: type[ForecastPipeline], frame: pd.DataFrame, recipe: dict[str, Any],
                 val_fraction: float, test_fraction: float) -> None:  # fmt: skip
        self.recipe = recipe
        window, target = recipe["window"], recipe["target"]
        y = frame[target].to_numpy(np.float64)
        dates = frame["date"].to_numpy("datetime64[s]")
        if recipe["target_mode"] == "log_return" and np.any(y <= 0):
            raise DataError(f"column {target!r} must be positive to forecast returns")
        # Features that need earlier rows (returns) are NaN at the start: samples begin after.
        first = app.warmup
        ends = np.arange(first + window - 1, len(frame) - 1)  # last row of each sample's window
        if len(ends) < MIN_SAMPLES:
            raise DataError(
                f"{len(frame)} rows are too few for a window of {window}: need at least "
                f"{first + window + MIN_SAMPLES} rows (far more for a useful model)"
            )
        try:
            split = chronological_split(ends, val_size=val_fraction, test_size=test_fraction)
        except ValueError as exc:
            raise DataError(f"{len(frame)} rows are too few to split: {exc}") from None
        if min(len(s) for s in split) < 1:
            raise DataError(
                f"{len(frame)} rows are too few for a window of {window} and the validation/"
                "test shares: every split needs at least one sample"
            )
        train_rows = slice(0, int(split[0][-1]) + 2)  # through the last training target
        if recipe.get("seasonal_cycles"):
            profile = SeasonalProfile(recipe["seasonal_cycles"], 1)
            cols = [target, *recipe["inputs"]]
            profile.fit(dates[train_rows], frame[cols].to_numpy(np.float64)[train_rows])
            recipe["seasonal"] = profile.get_state()
        feats = app.engineer(frame, recipe)
        scaler = StandardScaler().fit(feats[first : train_rows.stop - 1])
        recipe["feature_scaler"] = scaler.get_state()
        season = app.season(frame["date"], recipe)
        z = _encode(y[1:], y[:-1], season[1:], recipe["target_mode"])  # target of row t at t
        tscaler = StandardScaler().fit(z[split[0]].reshape(-1, 1))
        recipe["target_scaler"] = tscaler.get_state()
        self.features = np.nan_to_num(scaler.transform(feats)).astype(np.float32)
        self.tscaler = tscaler
        self.idx_train, self.idx_val, self.idx_test = (np.asarray(s) for s in split)
        self.X: dict[str, np.ndarray] = {}
        self.z: dict[str, np.ndarray] = {}
        self.actual, self.naive, self.seasonal, self.dates_next = {}, {}, {}, {}
        for name, idx in (("train", split[0]), ("val", split[1]), ("test", split[2])):
            idx = np.asarray(idx)
            self.X[name] = self.features[idx[:, None] + np.arange(1 - window, 1)[None, :]]
            self.z[name] = tscaler.transform(z[idx].reshape(-1, 1)).astype(np.float32)
            self.actual[name], self.naive[name] = y[idx + 1], y[idx]
            self.seasonal[name] = season[idx + 1]
            self.dates_next[name] = dates[idx + 1]

    def predict_split(self, learner: Learner, name: str) -> np.ndarray:
        z = self.tscaler.inverse_transform(learner.predict(self.X[name]).reshape(-1, 1))
        return _decode(
            z.reshape(-1), self.naive[name], self.seasonal[name], self.recipe["target_mode"]
        )


class ForecastPipeline(Pipeline):
    """Base of a forecasting app: see the module docstring. Not registered itself."""

    Config: ClassVar[type[PipelineConfig]] = ForecastConfig
    warmup: ClassVar[int] = 0  # leading rows whose features are undefined (returns need 1)
    what: ClassVar[str] = "series"  # for messages and the report

    # ---- the app's part
    def load_frame(self, config: Any, context: RunContext) -> tuple[pd.DataFrame, str]:
        """The validated rows (see `prepare_frame`) and a short description of the source."""
        raise NotImplementedError

    def make_recipe(self, config: Any, frame: pd.DataFrame) -> dict[str, Any]:
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
    def run(self, config: Any, context: RunContext) -> dict[str, Any]:
        frame, source = self.load_frame(config, context)
        context.check_cancelled()  # a download may have taken a while
        if config.max_rows is not None and len(frame) > config.max_rows:
            frame = frame.iloc[-config.max_rows :].reset_index(drop=True)
        recipe = self.make_recipe(config, frame)
        recipe.update(pipeline=self.id, version=self.version)
        context.log(
            f"{source}: {len(frame)} rows from {_iso(frame['date'].iloc[:1], recipe['step'])[0]} "
            f"to {_iso(frame['date'].iloc[-1:], recipe['step'])[0]}; target {recipe['target']!r}"
        )
        problem = _Problem(type(self), frame, recipe, config.val_fraction, config.test_fraction)
        n_feat = problem.features.shape[1]
        af.manual_seed(config.seed)
        model = build_model(
            config.model, n_feat, recipe["window"], config.hidden_size, config.num_layers
        )
        early = EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)
        learner = Learner(
            model, "mse", Adam(model.named_parameters(), lr=config.learning_rate),
            callbacks=[early, _LiveReport(context, problem, config.epochs), _StopOnCancel(context)],
            seed=config.seed,
        )  # fmt: skip
        context.log(
            f"training a {config.model.upper()} ({model.num_parameters()} parameters) on "
            f"{len(problem.idx_train)} windows of {recipe['window']} rows x {n_feat} features; "
            f"validating on {len(problem.idx_val)}, testing on {len(problem.idx_test)}"
        )
        learner.fit(problem.X["train"], problem.z["train"], epochs=config.epochs,
                    batch_size=config.batch_size,
                    validation_data=(problem.X["val"], problem.z["val"]))  # fmt: skip
        if context.should_stop():
            raise Cancelled("the run was cancelled")
        return self._finish(config, context, problem, learner, early, source)

    def _finish(self, config: Any, context: RunContext, p: _Problem, learner: Learner,
                early: EarlyStopping, source: str) -> dict[str, Any]:  # fmt: skip
        recipe = p.recipe
        results: dict[str, Any] = {}
        table_rows = []
        for split in ("val", "test"):
            forecasts = {"model": p.predict_split(learner, split), "naive": p.naive[split]}
            if recipe.get("seasonal"):
                forecasts["seasonal"] = p.seasonal[split]
            if split == "test":  # the verdict's split: metrics plus DM tests
                results[split] = judge_forecasts(
                    p.actual[split], forecasts, previous=p.naive[split], horizon=EVAL_HORIZON
                )
            else:
                results[split] = compare_forecasts(
                    p.actual[split], forecasts, previous=p.naive[split]
                )
            for i in range(len(p.actual[split])):
                row = {"date": _iso(p.dates_next[split][i : i + 1], recipe["step"])[0],
                       "split": split, "actual": p.actual[split][i]}  # fmt: skip
                row.update({("predicted" if k == "model" else k): float(v[i])
                            for k, v in forecasts.items()})  # fmt: skip
                table_rows.append(row)
        test = results["test"]
        verdict = describe_verdict(test)
        summary: dict[str, Any] = {
            "target": recipe["target"],
            "source": source,
            "rows": len(p.features),
            "samples": {"train": len(p.idx_train), "val": len(p.idx_val), "test": len(p.idx_test)},
            "epochs_trained": learner.epoch,
            "best_epoch": early.best_epoch,
            "test": test["metrics"],
            "val": results["val"]["metrics"],
            "mae_ratio": test["mae_ratio"],
            "beats": test["beats"],  # significantly better (DM p < alpha), not merely lower MAE
            "beats_naive": test["beats"]["naive"],
            "worse": test["worse"],
            "significance_level": test["alpha"],
            "dm": test["dm"],
            "verdict": verdict,
        }
        for name, metrics in test["metrics"].items():
            prefix = "test" if name == "model" else f"test_{name}"
            summary.update({f"{prefix}_{k}": v for k, v in metrics.items() if v is not None})
        context.log(verdict)
        context.log_metrics(
            {k: v for k, v in summary.items() if k.startswith("test_") and isinstance(v, float)},
            epoch=learner.epoch,
        )
        # Artifacts: the model with its preprocessing first, then what a person reads.
        meta = {"recipe": recipe, "features": self.feature_names(recipe),
                "model": {"kind": config.model, "hidden_size": config.hidden_size,
                          "num_layers": config.num_layers},
                "test_metrics": test["metrics"]}  # fmt: skip
        model_path = save_model(learner.model, context.artifact_path("model.safetensors"), meta)
        context.save_artifact("model.safetensors", model_path)
        table = pd.DataFrame(table_rows)
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

    def report(self, config: Any, summary: Mapping[str, Any], recipe: Mapping[str, Any]) -> str:
        names = list(summary["test"])
        keys = [("mae", "MAE"), ("rmse", "RMSE"), ("mape", "MAPE %"),
                ("directional_accuracy", "Direction right"), ("dm_p", "DM p vs model")]  # fmt: skip
        lines = [
            f"# {self.name}: {recipe['target']}",
            "",
            f"Data: {summary['source']}, {summary['rows']} rows. Chronological split: "
            f"{summary['samples']['train']} training, {summary['samples']['val']} validation and "
            f"{summary['samples']['test']} test samples; the scalers"
            + (" and the seasonal profile" if recipe.get("seasonal") else "")
            + " were fitted on the training part only.",
            "",
            f"Model: {config.model.upper()}, {config.hidden_size} hidden units, a window of "
            f"{recipe['window']} rows of {len(self.feature_names(recipe))} features "
            f"({', '.join(self.feature_names(recipe))}); {summary['epochs_trained']} epochs, "
            f"best at epoch {summary['best_epoch']}.",
            "",
            "## Test period",
            "",
            "| metric | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for key, label in keys:
            cells = [summary["test"][n].get(key) for n in names]
            fmt = [("n/a" if c is None else f"{c:.4g}") for c in cells]
            if key == "dm_p":  # a comparison with the model: none in its own column
                fmt = ["" if n == "model" else ("no test" if c is None else f"{c:.3g}")
                       for n, c in zip(names, cells, strict=True)]  # fmt: skip
            lines.append(f"| {label} | " + " | ".join(fmt) + " |")
        lines += [
            "",
            "naive: the next value equals the last one. "
            + ("seasonal: the training years' average for that time of year. " if "seasonal" in names else "")
            + "A forecast that never moves calls no direction (n/a). "
            f"DM p: the Diebold-Mariano test (absolute errors, {EVAL_HORIZON}-step forecasts, "
            "Harvey-Leybourne-Newbold correction, two-sided) of the model against that "
            "baseline; the model beats a baseline only when its MAE is lower and "
            f"p < {summary['significance_level']:g}.",
            "",
            f"**{summary['verdict']}**",
            "",
            "Files: `predictions.csv` (date, actual, predicted and baselines), `loss.png`, "
            "`predictions.png`, `history.json`, `metrics.json`, `model.safetensors` (with its "
            "preprocessing; load it with the pipeline's `predict`).",
            "",
        ]  # fmt: skip
        return "\n".join(lines)

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
        rows = inputs
        if isinstance(inputs, Mapping) and "rows" in inputs:
            rows, horizon = inputs["rows"], inputs.get("horizon", horizon)
            if isinstance(rows, (str, os.PathLike)):
                # A path here would bypass the checks a server applies to a path given as
                # the inputs themselves.
                raise DataError(
                    "rows must be a list of row objects; to forecast from a CSV file, give "
                    "the file itself as the inputs"
                )
        horizon = forecast_horizon(horizon)
        model, meta = load_model(Path(model_path), with_metadata=True)
        recipe = meta.get("recipe") or {}
        if recipe.get("pipeline") != cls.id:
            raise DataError(
                f"{Path(model_path).name} was not trained by {cls.id!r} "
                f"(it says {recipe.get('pipeline')!r})"
            )
        target, window = recipe["target"], recipe["window"]
        frame = frame_from_rows(rows, required=[target, *recipe["inputs"]])
        need = cls.warmup + window
        if len(frame) < need:
            raise DataError(f"{len(frame)} rows are too few: this model needs the last {need} rows")
        frame = frame[["date", target, *[c for c in recipe["inputs"] if c != target]]]
        scaler = scaler_from_state(recipe["feature_scaler"])
        tscaler = scaler_from_state(recipe["target_scaler"])
        dates, values = [], []
        learner = Learner(model, "mse")
        for _ in range(horizon):
            tail = frame.iloc[-(need + 1) :].reset_index(drop=True)
            feats = scaler.transform(cls.engineer(tail, recipe)[-window:]).astype(np.float32)
            z = tscaler.inverse_transform(learner.predict(feats[None]).reshape(-1, 1))[0, 0]
            date = next_dates(tail["date"].to_numpy("datetime64[s]")[-1], 1, recipe["step"])
            last = float(tail[target].iloc[-1])
            value = float(_decode(z, last, cls.season(date, recipe)[0], recipe["target_mode"]))
            dates.append(date[0])
            values.append(value)
            new = cls.next_row(tail.iloc[-1].to_dict(), pd.Timestamp(date[0]), value, recipe)
            # the tail is all the next step reads: copying the whole history every step
            # would make a long horizon over a long CSV quadratic
            frame = pd.concat([tail, pd.DataFrame([new])], ignore_index=True)
        return {"target": target, "dates": _iso(dates, recipe["step"]), "predictions": values}


# ------------------------------------------------------------------------------ plots
def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    return buf.getvalue()


def plot_history(history: Mapping[str, Any]) -> bytes:
    """Training and validation loss per epoch, as PNG bytes."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = history["epoch"]
    for key in ("loss", "val_loss"):
        if key in history["history"]:
            ax.plot(epochs, history["history"][key], marker="o", ms=3, label=key)
    ax.set(xlabel="epoch", ylabel="loss (scaled target, MSE)", title="Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def plot_predictions(table: pd.DataFrame, title: str) -> bytes:
    """Actual against the model and the baselines (columns of `table`), as PNG bytes."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = pd.to_datetime(table["date"])
    ax.plot(x, table["actual"], color="black", lw=1.2, label="actual")
    ax.plot(x, table["predicted"], color="tab:blue", lw=1.0, label="model")
    styles = {"naive": ("tab:gray", ":"), "seasonal": ("tab:green", "--")}
    for name, (color, ls) in styles.items():
        if name in table:
            ax.plot(x, table[name], color=color, ls=ls, lw=0.9, label=name)
    ax.set(title=title, xlabel="date")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    return _png(fig)


__all__ = [
    "DataError",
    "ForecastConfig",
    "ForecastPipeline",
    "build_model",
    "column_name",
    "frame_from_rows",
    "next_dates",
    "package_data_file",
    "plot_history",
    "plot_predictions",
    "prepare_frame",
    "read_csv",
]
