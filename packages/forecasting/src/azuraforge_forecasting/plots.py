"""The run's pictures: the loss per epoch and the test period's forecasts, as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pandas as pd


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


__all__ = ["plot_history", "plot_predictions"]
