"""The model against its baselines on the test targets, and the verdict a person reads.

`judge_forecasts` puts every forecast's metrics side by side (`compare_forecasts`) and adds
a Diebold-Mariano test of the model against each baseline on the same points, with the loss
the verdict talks about (absolute error: the verdict compares MAEs). The model "beats" a
baseline only when its MAE is lower AND the difference is significant (two-sided, at
`alpha`); otherwise it is "no better than" that baseline, however the MAEs happen to fall:

    The model beats the naive forecast: MAE 2.09 vs 2.25, 7.2% lower (DM p = 0.003).
    The model is no better than the naive forecast: MAE 13.07 vs 13.09 (0.1% lower, not
    significant: DM p = 0.41).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from azuraforge_learner.timeseries import compare_forecasts

from .significance import diebold_mariano

ALPHA = 0.05  # two-sided significance level of "beats" / "is worse than"


def format_p(p: float, alpha: float = ALPHA) -> str:
    """'= 0.41', '= 0.003', '< 0.001': two significant digits, more where rounding would
    put the shown value on the other side of `alpha` than the p-value, or on it (0.0496 and
    0.0504, not 0.05)."""
    if p < 0.001:
        return "< 0.001"
    for digits in range(2, 8):
        text = f"{p:.{digits}g}"
        shown = float(text)
        if (shown < alpha) == (p < alpha) and (shown != alpha or p == alpha):
            return f"= {text}"
    return f"= {p!r}"


def judge_forecasts(
    actual: Any,
    forecasts: Mapping[str, Any],
    previous: Any = None,
    *,
    reference: str = "model",
    horizon: int = 1,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """`compare_forecasts` plus, per baseline, 'dm' (the `DMTest` of the reference against
    it, as a dict) and a 'dm_p' entry in the baseline's metrics (None without a test);
    'beats' holds only where the reference's MAE is lower and DM p < `alpha`; 'worse' where
    it is higher and DM p < `alpha`. `horizon`: how many steps ahead every forecast is."""
    comparison = compare_forecasts(actual, forecasts, previous=previous, reference=reference)
    y = np.asarray(actual, dtype=np.float64).reshape(-1)
    ref_errors = y - np.asarray(forecasts[reference], dtype=np.float64).reshape(-1)
    tests, beats, worse = {}, {}, {}
    for name in comparison["mae_ratio"]:
        errors = y - np.asarray(forecasts[name], dtype=np.float64).reshape(-1)
        test = diebold_mariano(ref_errors, errors, horizon=horizon, loss="absolute")
        significant = test.p_value is not None and test.p_value < alpha
        beats[name] = significant and test.mean_difference < 0
        worse[name] = significant and test.mean_difference > 0
        tests[name] = test.as_dict()
        comparison["metrics"][name]["dm_p"] = test.p_value
    comparison.update(dm=tests, beats=beats, worse=worse, alpha=alpha)
    return comparison


def _difference(ref: float, base: float) -> str:
    if ref == base:
        return "the same MAE"
    if base == 0:
        return "higher"  # a perfect baseline: no percentage of zero
    return f"{abs(ref - base) / base * 100.0:.1f}% {'lower' if ref < base else 'higher'}"


def describe_verdict(judgement: Mapping[str, Any], what: str = "The model") -> str:
    """One plain sentence per baseline of a `judge_forecasts` result."""
    ref = judgement["metrics"][judgement["reference"]]["mae"]
    alpha = judgement.get("alpha", ALPHA)
    parts = []
    for name in judgement["mae_ratio"]:
        base = judgement["metrics"][name]["mae"]
        test = judgement["dm"][name]
        maes, diff = f"MAE {ref:.4g} vs {base:.4g}", _difference(ref, base)
        if test["p_value"] is None:
            parts.append(
                f"{what} is no better than the {name} forecast: {maes} ({diff}; no DM test: "
                f"{test['note']})."
            )
            continue
        p = f"DM p {format_p(test['p_value'], alpha)}"
        if judgement["beats"][name]:
            parts.append(f"{what} beats the {name} forecast: {maes}, {diff} ({p}).")
        elif judgement["worse"][name]:
            parts.append(f"{what} is worse than the {name} forecast: {maes}, {diff} ({p}).")
        else:
            why = test["note"] or "not significant"  # the note: identical losses
            parts.append(
                f"{what} is no better than the {name} forecast: {maes} ({diff}, {why}: {p})."
            )
    return " ".join(parts)


__all__ = ["ALPHA", "describe_verdict", "format_p", "judge_forecasts"]
