"""The run's results in words and numbers: every split's forecasts next to the baselines,
the test period's verdict (a model "beats" a baseline only when the Diebold-Mariano test says
the difference is significant, `verdict.py`), the summary a run returns and the markdown
report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from azuraforge_learner import EarlyStopping, Learner
from azuraforge_learner.timeseries import compare_forecasts

from .config import ForecastConfig
from .problem import EVAL_HORIZON, Problem, iso_dates
from .verdict import describe_verdict, judge_forecasts


def evaluate(
    p: Problem, learner: Learner, early: EarlyStopping, source: str
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The run's summary (metrics, DM tests, the verdict) and the table of every validation
    and test forecast (date, split, actual, predicted and the baselines)."""
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
            results[split] = compare_forecasts(p.actual[split], forecasts, previous=p.naive[split])
        for i in range(len(p.actual[split])):
            row = {"date": iso_dates(p.dates_next[split][i : i + 1], recipe["step"])[0],
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
    # the kept model on the validation split: what a hyperparameter study should optimise
    val_model = results["val"]["metrics"]["model"]
    summary.update({f"val_{k}": v for k, v in val_model.items() if v is not None})
    return summary, pd.DataFrame(table_rows)


def write_report(
    name: str,
    config: ForecastConfig,
    summary: Mapping[str, Any],
    recipe: Mapping[str, Any],
    features: Sequence[str],
) -> str:
    """The markdown report of a run: data, split, model, the test metrics and the verdict."""
    names = list(summary["test"])
    keys = [("mae", "MAE"), ("rmse", "RMSE"), ("mape", "MAPE %"),
            ("directional_accuracy", "Direction right"), ("dm_p", "DM p vs model")]  # fmt: skip
    lines = [
        f"# {name}: {recipe['target']}",
        "",
        f"Data: {summary['source']}, {summary['rows']} rows. Chronological split: "
        f"{summary['samples']['train']} training, {summary['samples']['val']} validation and "
        f"{summary['samples']['test']} test samples; the scalers"
        + (" and the seasonal profile" if recipe.get("seasonal") else "")
        + " were fitted on the training part only.",
        "",
        f"Model: {config.model.upper()}, {config.hidden_size} hidden units, a window of "
        f"{recipe['window']} rows of {len(features)} features "
        f"({', '.join(features)}); {summary['epochs_trained']} epochs, "
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


__all__ = ["evaluate", "write_report"]
