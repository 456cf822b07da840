"""The Diebold-Mariano test and the t distribution behind its p-value, checked against hand
computations and against second, independent derivations."""

import math

import numpy as np
import pytest

from azuraforge_forecasting.significance import (
    diebold_mariano,
    regularized_incomplete_beta,
    student_t_two_sided_p,
)

# A small example worked by hand. Model errors [1, -2, 1, 0, -1], baseline errors
# [2, 2, -3, 1, 1]: absolute-loss differentials d = [-1, 0, -2, -1, 0], mean -4/5;
# deviations [-1/5, 4/5, -6/5, -1/5, 4/5]; g0 = (1 + 16 + 36 + 1 + 16) / 25 / 5 = 14/25;
# g1 = (-4 - 24 + 6 - 4) / 25 / 5 = -26/125.
MODEL = [1.0, -2.0, 1.0, 0.0, -1.0]
BASE = [2.0, 2.0, -3.0, 1.0, 1.0]


def test_hand_computed_example_one_step_ahead():
    # h = 1: V = g0 / n = 14/125, DM = -(4/5) / sqrt(14/125), DM^2 = 200/35 = 40/7;
    # HLN factor (n - 1) / n = 4/5, so DM*^2 = 32/7. With 4 degrees of freedom
    # cos^2(theta) = 4 / (4 + 32/7) = 7/15, and for even df (Abramowitz & Stegun 26.7.4)
    # P(|T| <= t) = sin(theta) * (1 + cos^2(theta) / 2) = sqrt(8/15) * 37/30.
    test = diebold_mariano(MODEL, BASE, horizon=1)
    assert test.statistic == pytest.approx(-math.sqrt(32 / 7), rel=1e-12)
    assert test.p_value == pytest.approx(1 - math.sqrt(8 / 15) * 37 / 30, rel=1e-12)
    assert test.p_value == pytest.approx(0.0993, abs=1e-4)
    assert (test.n, test.horizon, test.loss, test.note) == (5, 1, "absolute", None)
    assert test.mean_difference == pytest.approx(-0.8)
    # the test is antisymmetric in its two forecasts
    flipped = diebold_mariano(BASE, MODEL)
    assert flipped.statistic == pytest.approx(-test.statistic)
    assert flipped.p_value == pytest.approx(test.p_value)


def test_hand_computed_example_two_steps_ahead():
    # h = 2 adds the lag-1 autocovariance: V = (g0 + 2 g1) / n = (70 - 52) / 125 / 5 = 18/625,
    # DM^2 = (16/25) / (18/625) = 200/9; HLN factor (5 + 1 - 4 + 2/5) / 5 = 12/25, so
    # DM*^2 = 32/3. cos^2(theta) = 4 / (4 + 32/3) = 3/11: P(|T| <= t) = sqrt(8/11) * 25/22.
    test = diebold_mariano(MODEL, BASE, horizon=2)
    assert test.statistic == pytest.approx(-math.sqrt(32 / 3), rel=1e-12)
    assert test.p_value == pytest.approx(1 - math.sqrt(8 / 11) * 25 / 22, rel=1e-12)


def test_squared_loss():
    # d = e1^2 - e2^2 = [-3, 0, -8, -1, 0]: mean -12/5, deviations [-3, 12, -28, 7, 12] / 5,
    # sum of squares 1130 / 25 = 45.2, sample variance 11.3; at h = 1 DM* is the paired t:
    # -2.4 / sqrt(11.3 / 5).
    test = diebold_mariano(MODEL, BASE, loss="squared")
    assert test.statistic == pytest.approx(-2.4 / math.sqrt(11.3 / 5), rel=1e-12)
    assert test.loss == "squared"


def paired_t(a, b):
    """The paired t statistic of two loss series, written out: mean / (sd / sqrt(n))."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    return mean / (sd / math.sqrt(n))


def t_cdf_abs_integer_df(t, df):
    """P(|T| <= t) for whole df by the finite trigonometric series of Abramowitz & Stegun
    26.7.3 (odd df) and 26.7.4 (even df): a derivation independent of the incomplete beta."""
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term = math.cos(theta)
    total = term
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * total)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_step_statistic_is_the_paired_t_test_of_the_losses(seed):
    rng = np.random.default_rng(seed)
    n = 40 + 17 * seed
    truth = rng.normal(0, 1, n)
    e_model = truth * 0.9 + rng.normal(0, 0.3, n)
    e_base = truth + rng.normal(0, 0.3, n)
    test = diebold_mariano(e_model, e_base)
    expected = paired_t(np.abs(e_model).tolist(), np.abs(e_base).tolist())
    assert test.statistic == pytest.approx(expected, rel=1e-10)
    assert test.p_value == pytest.approx(1 - t_cdf_abs_integer_df(expected, n - 1), rel=1e-9)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10, 29, 30, 101, 250])
def test_t_p_values_match_the_closed_form_series(df):
    for t in (0.0, 0.05, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0):
        expected = 1 - t_cdf_abs_integer_df(t, df)
        if expected < 1e-6:
            continue  # 1 - A loses the digits of a tiny tail; tails are checked below
        assert student_t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-9, abs=1e-15)
        assert student_t_two_sided_p(-t, df) == student_t_two_sided_p(t, df)


def test_t_tails_and_limits():
    # Cauchy (df 1): P(|T| > t) = 1 - 2 atan(t) / pi = 2 atan(1/t) / pi, exact in the tail
    for t in (10.0, 1e3, 1e6):
        assert student_t_two_sided_p(t, 1) == pytest.approx(
            2 * math.atan(1 / t) / math.pi, rel=1e-10
        )
    # df 2: P(|T| > t) = 1 - t / sqrt(2 + t^2) = 2 / (sqrt(2 + t^2) (sqrt(2 + t^2) + t))
    for t in (5.0, 100.0, 1e5):
        r = math.sqrt(2 + t * t)
        assert student_t_two_sided_p(t, 2) == pytest.approx(2 / (r * (r + t)), rel=1e-10)
    # many degrees of freedom approach the normal: P(|Z| > 1.96) = 0.04999579
    assert student_t_two_sided_p(1.96, 1e6) == pytest.approx(
        math.erfc(1.96 / math.sqrt(2)), rel=1e-5
    )
    assert student_t_two_sided_p(0.0, 5) == 1.0
    assert student_t_two_sided_p(math.inf, 5) == 0.0
    for bad in (0, -1):
        with pytest.raises(ValueError, match="degrees of freedom"):
            student_t_two_sided_p(1.0, bad)
    with pytest.raises(ValueError, match="NaN"):
        student_t_two_sided_p(math.nan, 3)


def test_incomplete_beta_known_values():
    # I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 - (1 - x)^b; I_x(1/2, 1/2) = 2 asin(sqrt x) / pi
    for x in (0.0, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0):
        assert regularized_incomplete_beta(1, 1, x) == pytest.approx(x, abs=1e-15)
        assert regularized_incomplete_beta(3.5, 1, x) == pytest.approx(
            x**3.5, rel=1e-12, abs=1e-300
        )
        assert regularized_incomplete_beta(1, 4, x) == pytest.approx(
            1 - (1 - x) ** 4, rel=1e-12, abs=1e-15
        )
        arcsine = 2 * math.asin(math.sqrt(x)) / math.pi
        assert regularized_incomplete_beta(0.5, 0.5, x) == pytest.approx(
            arcsine, rel=1e-12, abs=1e-15
        )
    with pytest.raises(ValueError, match="x must lie in"):
        regularized_incomplete_beta(1, 1, 1.5)
    with pytest.raises(ValueError, match="must be positive"):
        regularized_incomplete_beta(0, 1, 0.5)


def test_matches_scipy_where_it_is_installed():
    stats = pytest.importorskip("scipy.stats")  # the dev environment has it (scikit-learn)
    for df in (1, 3, 12, 87, 1000, 2.5):
        for t in (0.1, 1.0, 2.2, 4.0, 9.0):
            expected = 2 * stats.t.sf(t, df)
            assert student_t_two_sided_p(t, df) == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ degenerate inputs
def test_identical_errors_mean_no_difference():
    errors = [0.5, -1.0, 2.0, 0.0]
    for other in (errors, [-e for e in errors]):  # the same absolute errors, signs flipped
        test = diebold_mariano(errors, other)
        assert (test.statistic, test.p_value, test.mean_difference) == (0.0, 1.0, 0.0)
        assert "identical" in test.note
    assert diebold_mariano([1.0], [1.0]).p_value == 1.0  # identical, however few


def test_constant_difference_has_no_variance_to_test_against():
    base = np.array([0.3, -1.7, 2.2, 0.9, -0.4, 1.1])
    model = np.sign(base) * (np.abs(base) - 0.1)  # every absolute error 0.1 smaller
    test = diebold_mariano(model, base)
    assert test.statistic is None and test.p_value is None
    assert test.note == "the loss difference is the same at every point (zero variance)"
    assert test.mean_difference == pytest.approx(-0.1)


@pytest.mark.parametrize(("n", "horizon"), [(0, 1), (1, 1), (2, 2), (3, 3)])
def test_too_few_points(n, horizon):
    rng = np.random.default_rng(n)
    test = diebold_mariano(rng.normal(size=n) + 1, rng.normal(size=n) - 5, horizon=horizon)
    assert test.statistic is None and test.p_value is None
    assert test.note == f"too few points for a DM test at horizon {horizon} ({n})"


def test_two_points_at_one_step_are_enough():
    test = diebold_mariano([1.0, 2.0], [2.0, 4.0])  # d = [-1, -2]: t = -1.5 / 0.5 = -3, df 1
    assert test.statistic == pytest.approx(-3.0)
    assert test.p_value == pytest.approx(2 * math.atan(1 / 3) / math.pi)


def test_non_positive_long_run_variance_is_reported_not_rooted():
    # d alternates 1, 0, 1, 0, ...: g0 = 1/4, g1 close to -1/4, so g0 + 2 g1 < 0
    model = np.array([2.0, 1.0] * 4)
    test = diebold_mariano(model, np.ones(8), horizon=2)
    assert test.statistic is None and test.p_value is None
    assert "not positive" in test.note
    assert diebold_mariano(model, np.ones(8), horizon=1).p_value is not None


def test_caller_mistakes_raise():
    with pytest.raises(ValueError, match="3 errors against 2"):
        diebold_mariano([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN or infinite"):
        diebold_mariano([1, math.nan, 3], [1, 2, 3])
    for horizon in (0, 1.5, True):
        with pytest.raises(ValueError, match="horizon"):
            diebold_mariano([1, 2, 3], [3, 2, 1], horizon=horizon)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        diebold_mariano([1, 2, 3], [3, 2, 1], loss="hinge")


def test_results_serialise_to_plain_json_values():
    import json

    for test in (diebold_mariano(MODEL, BASE), diebold_mariano([1.0], [2.0])):
        assert json.loads(json.dumps(test.as_dict(), allow_nan=False)) == test.as_dict()
