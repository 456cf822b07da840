"""The verdict: "beats" only for a significant difference, in plain words with the p-value."""

import numpy as np
import pytest

from azuraforge_forecasting.verdict import describe_verdict, format_p, judge_forecasts


def series(n=250, seed=0):
    rng = np.random.default_rng(seed)
    actual = 100 + np.cumsum(rng.normal(0, 1, n))
    naive = np.r_[100.0, actual[:-1]]
    return rng, actual, naive


def test_a_tiny_lead_is_no_better_than_naive():
    # the model is the naive forecast nudged a little towards the truth: a lower MAE, by
    # about 0.1%, that noise explains
    rng, actual, naive = series()
    model = naive + 0.001 * (actual - naive) + rng.normal(0, 0.02, len(actual))
    judged = judge_forecasts(actual, {"model": model, "naive": naive}, previous=naive)
    ref, base = judged["metrics"]["model"]["mae"], judged["metrics"]["naive"]["mae"]
    assert ref < base and base / ref < 1.01  # lower, yet...
    p = judged["dm"]["naive"]["p_value"]
    assert p > 0.05 and judged["metrics"]["naive"]["dm_p"] == p
    assert judged["beats"] == {"naive": False} and judged["worse"] == {"naive": False}
    text = describe_verdict(judged)
    change = (base - ref) / base * 100
    assert text == (
        f"The model is no better than the naive forecast: MAE {ref:.4g} vs {base:.4g} "
        f"({change:.1f}% lower, not significant: DM p = {p:.2g})."
    )
    assert "beats" not in text


def test_a_real_lead_beats_naive_with_its_p_value():
    rng, actual, naive = series()
    model = naive + 0.4 * (actual - naive) + rng.normal(0, 0.2, len(actual))
    judged = judge_forecasts(actual, {"model": model, "naive": naive})
    ref, base = judged["metrics"]["model"]["mae"], judged["metrics"]["naive"]["mae"]
    p = judged["dm"]["naive"]["p_value"]
    assert p < 0.001 and judged["beats"] == {"naive": True}
    assert judged["dm"]["naive"]["statistic"] < 0 and judged["dm"]["naive"]["horizon"] == 1
    change = (base - ref) / base * 100
    assert describe_verdict(judged) == (
        f"The model beats the naive forecast: MAE {ref:.4g} vs {base:.4g}, {change:.1f}% lower "
        "(DM p < 0.001)."
    )


def test_significantly_worse_and_several_baselines():
    rng, actual, naive = series(seed=3)
    good = naive + 0.5 * (actual - naive) + rng.normal(0, 0.1, len(actual))
    bad = actual + rng.normal(0, 3, len(actual))
    judged = judge_forecasts(actual, {"model": naive + 0.0, "good": good, "bad": bad})
    assert judged["beats"] == {"good": False, "bad": True}
    assert judged["worse"] == {"good": True, "bad": False}
    sentences = describe_verdict(judged, what="Persistence").split(". ")
    assert sentences[0].startswith("Persistence is worse than the good forecast: MAE ")
    assert "% higher (DM p < 0.001)" in sentences[0]
    assert sentences[1].startswith("Persistence beats the bad forecast: MAE ")


def test_a_moderate_p_value_is_quoted_as_it_is():
    # the model's absolute error is 0.5 below the naive one's (2.0) 24 times and 0.5 above
    # it 16 times: MAE 1.9 vs 2, 5% lower; paired t = -0.1 / (sqrt(9.6 / 39) / sqrt(40))
    step = np.r_[np.full(8, -0.5), np.tile([-0.5, 0.5], 16)]
    judged = judge_forecasts(np.zeros(40), {"model": -(2.0 + step), "naive": np.full(40, -2.0)})
    assert judged["dm"]["naive"]["statistic"] == pytest.approx(-0.1 / np.sqrt(9.6 / 39 / 40))
    p = judged["dm"]["naive"]["p_value"]
    assert p == pytest.approx(0.21, abs=0.005) and judged["beats"] == {"naive": False}
    assert describe_verdict(judged) == (
        "The model is no better than the naive forecast: MAE 1.9 vs 2 (5.0% lower, not "
        f"significant: DM p = {p:.2g})."
    )


def test_identical_forecasts_and_too_few_points_are_stated_plainly():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    same = judge_forecasts(actual, {"model": actual - 1, "naive": actual - 1})
    assert same["beats"] == {"naive": False} and same["metrics"]["naive"]["dm_p"] == 1.0
    assert describe_verdict(same) == (
        "The model is no better than the naive forecast: MAE 1 vs 1 (the same MAE, the two "
        "forecasts' losses are identical: DM p = 1)."
    )
    one = judge_forecasts(actual[:1], {"model": actual[:1], "naive": actual[:1] - 3})
    assert one["metrics"]["naive"]["dm_p"] is None and one["beats"] == {"naive": False}
    assert describe_verdict(one) == (
        "The model is no better than the naive forecast: MAE 0 vs 3 (100.0% lower; no DM "
        "test: too few points for a DM test at horizon 1 (1))."
    )


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.41, "= 0.41"), (0.003, "= 0.003"), (0.0031, "= 0.0031"), (0.0496, "= 0.0496"),
     (0.0504, "= 0.0504"), (0.05, "= 0.05"), (0.123456, "= 0.12"), (1.0, "= 1"),
     (0.00099, "< 0.001"), (0.0, "< 0.001")],
)  # fmt: skip
def test_p_values_are_shown_on_the_right_side_of_five_percent(p, text):
    assert format_p(p) == text
