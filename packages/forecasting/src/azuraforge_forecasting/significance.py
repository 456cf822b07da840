"""Is one forecast's lead over another more than noise? The Diebold-Mariano test.

A model whose test MAE is 0.1% below the naive forecast's has not beaten it: on another
stretch of the same series the order could flip. `diebold_mariano` asks whether the mean
difference of the two forecasts' losses, point by point on the same targets, is larger than
its sampling noise:

    d_t   = L(e1_t) - L(e2_t)                       (loss differential, t = 1..n)
    g_k   = 1/n * sum_{t>k} (d_t - mean d)(d_{t-k} - mean d)    (its autocovariances)
    DM    = mean d / sqrt((g_0 + 2 * sum_{k=1}^{h-1} g_k) / n)
    DM*   = DM * sqrt((n + 1 - 2h + h(h - 1) / n) / n)

Diebold & Mariano (1995) for DM: h-step forecast errors are autocorrelated up to lag h-1,
hence the autocovariances up to that lag. Harvey, Leybourne & Newbold (1997) for DM*: the
small-sample correction, compared with Student's t with n - 1 degrees of freedom instead of
the normal. For h = 1, DM* is exactly the paired t statistic of the two loss series.

The t distribution is computed here (plain `math`, no scipy) through the regularized
incomplete beta function: P(|T| > t) = I_{v / (v + t^2)}(v / 2, 1 / 2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Loss = Literal["absolute", "squared"]
LOSSES: dict[str, str] = {"absolute": "absolute error (MAE)", "squared": "squared error (MSE)"}

_CF_EPS = 1e-15  # relative change at which the continued fraction has converged
_CF_MAX_TERMS = 100_000  # terms grow like sqrt(max(a, b)): ~1,000 for a million points
_TINY = 1e-300  # keeps Lentz's method off an exact zero


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (DLMF 8.17.22), by the modified Lentz method.
    Converges fast for x < (a + 1) / (a + b + 2); the caller uses the symmetry otherwise."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, _CF_MAX_TERMS):
        # two terms per step: the even coefficient d_{2m}, then the odd d_{2m+1}
        for coef in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            d = 1.0 + coef * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + coef / c
            c = c if abs(c) > _TINY else _TINY
            value *= c * d
        if abs(c * d - 1.0) < _CF_EPS:
            return value
    raise ArithmeticError(f"incomplete beta: no convergence for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float, y: float | None = None) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1. Pass `y` = 1 - x when it is known more
    accurately than 1 - x can be computed (a tail probability near 0 or 1 keeps its digits)."""
    y = 1.0 - x if y is None else y
    if not (a > 0 and b > 0):
        raise ValueError(f"incomplete beta: a and b must be positive, got a={a}, b={b}")
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError(f"incomplete beta: x must lie in [0, 1], got x={x}, 1-x={y}")
    if x == 0.0 or y == 0.0:
        return 0.0 if x == 0.0 else 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges slowly here: I_x(a,b) = 1 - I_y(b,a)
        return 1.0 - regularized_incomplete_beta(b, a, y, x)
    log_front = (
        a * math.log(x) + b * math.log(y) - math.log(a)
        - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    )  # fmt: skip
    return min(1.0, math.exp(log_front) * _beta_continued_fraction(a, b, x))


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if not df > 0:
        raise ValueError(f"Student t: degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        raise ValueError("Student t: the statistic is NaN")
    if math.isinf(t):
        return 0.0
    t2 = t * t
    # x = df / (df + t^2) and 1 - x = t^2 / (df + t^2), each computed without cancellation
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))


@dataclass(frozen=True)
class DMTest:
    """The outcome of `diebold_mariano`. `statistic` (DM*, HLN-corrected) is negative when
    the first forecast's loss is lower; `p_value` is two-sided. Both are None when the test
    cannot be computed, and `note` says why; `note` also explains a p-value of 1 for
    identical losses."""

    statistic: float | None
    p_value: float | None
    n: int
    horizon: int
    loss: str
    mean_difference: float  # mean of loss(first) - loss(second): < 0, the first is better
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diebold_mariano(
    errors_1: Any, errors_2: Any, horizon: int = 1, loss: Loss = "absolute"
) -> DMTest:
    """Diebold-Mariano test with the Harvey-Leybourne-Newbold correction (see the module
    docstring): do forecasts 1 and 2, with these errors (actual - forecast) on the same
    targets, have the same expected `loss` at `horizon` steps ahead?

    Degenerate inputs get an answer, never NaN: identical losses give statistic 0 and p 1;
    too few points, a loss difference that is the same at every point (zero variance) or a
    long-run variance estimate that is not positive give statistic and p-value None, with
    the reason in `note`. Errors that are not finite, or of different lengths, are the
    caller's mistake: ValueError.
    """
    e1 = np.asarray(errors_1, dtype=np.float64).reshape(-1)
    e2 = np.asarray(errors_2, dtype=np.float64).reshape(-1)
    if e1.shape != e2.shape:
        raise ValueError(f"diebold_mariano: {e1.size} errors against {e2.size}")
    if not (np.all(np.isfinite(e1)) and np.all(np.isfinite(e2))):
        raise ValueError("diebold_mariano: the errors contain NaN or infinite values")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"diebold_mariano: horizon must be a whole number >= 1, got {horizon!r}")
    if loss not in LOSSES:
        raise ValueError(f"diebold_mariano: unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    h, n = int(horizon), int(e1.size)
    d = np.abs(e1) - np.abs(e2) if loss == "absolute" else e1**2 - e2**2
    mean = float(d.mean()) if n else 0.0

    def no_test(note: str) -> DMTest:
        return DMTest(None, None, n, h, loss, mean, note)

    if n and not np.any(d):
        return DMTest(0.0, 1.0, n, h, loss, 0.0, "the two forecasts' losses are identical")
    correction = (n + 1 - 2 * h + h * (h - 1) / n) / n if n else 0.0
    if n < 2 or n <= h or correction <= 0:
        return no_test(f"too few points for a DM test at horizon {h} ({n})")
    dev = d - mean
    gamma = [float(dev[k:] @ dev[: n - k]) / n for k in range(h)]
    # A constant difference leaves only rounding in `dev`: no noise to test against.
    if gamma[0] <= (64 * np.finfo(np.float64).eps * float(np.max(np.abs(d)))) ** 2:
        return no_test("the loss difference is the same at every point (zero variance)")
    variance = (gamma[0] + 2.0 * sum(gamma[1:])) / n
    if variance <= 0:
        return no_test(
            "the long-run variance estimate is not positive (the loss differences are "
            "strongly negatively autocorrelated below the horizon)"
        )
    statistic = mean / math.sqrt(variance) * math.sqrt(correction)
    return DMTest(statistic, student_t_two_sided_p(statistic, n - 1), n, h, loss, mean)


__all__ = [
    "LOSSES",
    "DMTest",
    "diebold_mariano",
    "regularized_incomplete_beta",
    "student_t_two_sided_p",
]
