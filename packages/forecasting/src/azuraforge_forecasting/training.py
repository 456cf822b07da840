"""The model and its training: an LSTM/GRU or an MLP over a window of past rows, fitted with
early stopping, reporting live every epoch and stopping once the run is cancelled."""

from __future__ import annotations

from typing import Any

import numpy as np

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
)
from azuraforge_learner.timeseries import downsample_indices, forecast_metrics
from azuraforge_pipeline import RunContext

from .config import ForecastConfig
from .problem import Problem, iso_dates

MAX_EVENT_POINTS = 300  # a live chart needs no more; keeps each event small


def build_model(
    kind: str, n_features: int, window: int, hidden: int, layers: int = 1
) -> Sequential:
    """One output from a window (batch, window, n_features): an LSTM/GRU's last hidden
    state, or for "mlp" the flattened window."""
    if kind == "mlp":
        return Sequential(Flatten(), Linear(window * n_features, hidden), ReLU(), Linear(hidden, 1))
    rnn = LSTM if kind == "lstm" else GRU
    return Sequential(rnn(n_features, hidden, num_layers=layers), Linear(hidden, 1))


class StopOnCancel(Callback):
    """Stops the Learner at the next batch once the platform asked the run to stop."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def on_batch_end(self, logs: dict[str, Any]) -> bool:
        return self.context.should_stop()


class LiveReport(Callback):
    """Every epoch: progress, loss and validation metrics in the original units, and the
    validation predictions against the truth as a `predictions` event (for a live chart)."""

    def __init__(self, context: RunContext, forecaster: Problem, total_epochs: int) -> None:
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
                "dates": iso_dates(p.dates_next["val"][k], p.recipe["step"]),
                "actual": np.round(actual[k], 6).tolist(),
                "predicted": np.round(pred[k], 6).tolist(),
                "naive": np.round(naive[k], 6).tolist(),
            },
        )


def train(
    config: ForecastConfig, context: RunContext, problem: Problem
) -> tuple[Learner, EarlyStopping]:
    """Build the model `config` asks for and fit it on the problem's training windows, with
    early stopping on the validation windows (the best epoch's weights are kept), a live
    report every epoch and a stop at the next batch once the run is cancelled."""
    recipe = problem.recipe
    n_feat = problem.features.shape[1]
    af.manual_seed(config.seed)
    model = build_model(
        config.model, n_feat, recipe["window"], config.hidden_size, config.num_layers
    )
    if context.device != "cpu":  # a GPU worker (AZURAFORGE_DEVICE=cuda): batches follow
        model.to(context.device)
    early = EarlyStopping("val_loss", patience=config.patience, restore_best_weights=True)
    learner = Learner(
        model, "mse", Adam(model.named_parameters(), lr=config.learning_rate),
        callbacks=[early, LiveReport(context, problem, config.epochs), StopOnCancel(context)],
        seed=config.seed,
    )  # fmt: skip
    context.log(
        f"training a {config.model.upper()} ({model.num_parameters()} parameters, on "
        f"{context.device}) on "
        f"{len(problem.idx_train)} windows of {recipe['window']} rows x {n_feat} features; "
        f"validating on {len(problem.idx_val)}, testing on {len(problem.idx_test)}"
    )
    learner.fit(problem.X["train"], problem.z["train"], epochs=config.epochs,
                batch_size=config.batch_size,
                validation_data=(problem.X["val"], problem.z["val"]))  # fmt: skip
    return learner, early


__all__ = ["MAX_EVENT_POINTS", "LiveReport", "StopOnCancel", "build_model", "train"]
