"""`ForecastConfig`: the settings every forecaster app shares (each app adds its data fields
and sets its own defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from azuraforge_pipeline import DataPath, FieldError, PipelineConfig, applies_when


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


__all__ = ["ForecastConfig"]
