"""`my_pipeline`: a template pipeline that fits y = X @ w + b on synthetic data.

Every part of a real plugin is here in miniature: a Config the dashboard turns into a form,
data, a model trained by the Learner, metrics every epoch, cancellation, a baseline, artifacts,
a saved model and `predict` on raw inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

import azuraforge_core as af
from azuraforge_learner import (
    SGD,
    Callback,
    Learner,
    Linear,
    MSELoss,
    load_model,
    save_model,
)
from azuraforge_pipeline import Cancelled, DataPath, Pipeline, PipelineConfig, RunContext

__all__ = ["MyPipeline", "MyPipelineConfig"]


class MyPipelineConfig(PipelineConfig):
    """Fields need a default, a title, a description and bounds: the dashboard's form."""

    n_samples: int = Field(500, ge=20, le=100_000, title="Samples", description="Rows to make.")
    n_features: int = Field(3, ge=1, le=100, title="Features", description="Inputs per row.")
    noise: float = Field(0.1, ge=0.0, le=10.0, title="Noise", description="Std of the noise.")
    epochs: int = Field(30, ge=1, le=1000, title="Epochs", description="Passes over the data.")
    learning_rate: float = Field(0.05, gt=0, le=1.0, title="Learning rate", description="SGD step.")
    seed: int = Field(0, ge=0, title="Seed", description="Data, initialisation and shuffling.")
    # A file or folder the user names is a DataPath: on a server it must be an upload or lie in
    # a data root (else the submission is refused), and at run time it arrives resolved.
    csv_path: DataPath | None = Field(
        None,
        title="CSV file",
        description="Your own rows instead of synthetic ones: a header line, then n_features "
        "numbers and the target per row.",
    )


class _Report(Callback):
    """Sends each epoch to the platform; a cancel stops the Learner after the current batch."""

    def __init__(self, context: RunContext, epochs: int) -> None:
        self.context, self.epochs = context, epochs

    def on_batch_end(self, logs: dict[str, Any]) -> bool | None:
        return True if self.context.should_stop() else None

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        self.context.log_metrics(
            {"loss": logs["loss"], "val_loss": logs["val_loss"]}, epoch=logs["epoch"]
        )
        self.context.progress(epoch=logs["epoch"], total_epochs=self.epochs)


def _read_rows(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    # Name the file, never quote its contents: a server shows this message to its client.
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float32)
    except (OSError, ValueError):
        raise ValueError(f"{path.name}: not a readable CSV of numbers with a header") from None
    if table.shape[1] != n_features + 1 or len(table) < 5:
        raise ValueError(
            f"{path.name}: expected at least 5 rows of {n_features + 1} numbers, got {table.shape}"
        )
    return table[:, :-1], table[:, -1:]


class MyPipeline(Pipeline[MyPipelineConfig]):
    id = "my_pipeline"  # must equal the entry-point name in pyproject.toml
    name = "My Pipeline"
    description = "Fits a linear model to synthetic data (the plugin template)."
    version = "0.1.0"
    Config: ClassVar[type[PipelineConfig]] = MyPipelineConfig

    def run(self, config: MyPipelineConfig, context: RunContext) -> dict[str, Any]:
        rng = np.random.default_rng(config.seed)
        af.manual_seed(config.seed)

        # data: y = X @ w + b + noise (or the user's rows), split 80/20 into training and validation
        w_true = rng.normal(size=config.n_features)
        b_true = float(rng.normal())
        if config.csv_path:
            X, y = _read_rows(Path(config.csv_path), config.n_features)
        else:
            X = rng.normal(size=(config.n_samples, config.n_features)).astype(np.float32)
            y = (X @ w_true + b_true + config.noise * rng.normal(size=config.n_samples))[:, None]
            y = y.astype(np.float32)
        cut = int(0.8 * len(X))
        X_tr, y_tr, X_val, y_val = X[:cut], y[:cut], X[cut:], y[cut:]

        model = Linear(config.n_features, 1)
        learner = Learner(
            model, MSELoss(), SGD(model.named_parameters(), lr=config.learning_rate),
            callbacks=[_Report(context, config.epochs)], seed=config.seed,
        )  # fmt: skip
        learner.fit(X_tr, y_tr, epochs=config.epochs, batch_size=32, validation_data=(X_val, y_val))
        if context.should_stop():
            raise Cancelled("cancelled during training")

        # an honest result: the model next to a trivial baseline on the same held-out rows
        mse = float(np.mean((learner.predict(X_val) - y_val) ** 2))
        baseline = float(np.mean((y_tr.mean() - y_val) ** 2))
        summary = {
            "val_mse": mse,
            "baseline_mean_mse": baseline,
            "weights": model.weight.numpy()[:, 0].tolist(),
            "true_weights": w_true.tolist(),
        }
        path = context.artifact_path("model.safetensors")
        save_model(model, path, metadata={"n_features": config.n_features})
        context.save_artifact("model.safetensors", path, kind="model")
        context.save_artifact("metrics.json", summary)
        context.log(f"validation MSE {mse:.4f} (predicting the mean: {baseline:.4f})")
        return summary

    @classmethod
    def predict(cls, model_path: str | os.PathLike[str], inputs: Any) -> list[float]:
        """Predictions for raw rows of features (a list of lists); the platform's
        `models predict` calls this with the saved model's path."""
        model, meta = load_model(Path(model_path), with_metadata=True)
        X = np.asarray(inputs, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != meta["n_features"]:
            raise ValueError(f"expected rows of {meta['n_features']} numbers, got shape {X.shape}")
        return [float(v) for v in model(X).numpy()[:, 0]]
