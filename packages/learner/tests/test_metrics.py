"""Metrics against scikit-learn's implementations and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from azuraforge_learner import metrics as M

RNG = np.random.default_rng(3)


def test_classification_metrics_match_sklearn() -> None:
    y = RNG.integers(0, 4, size=200)
    scores = RNG.normal(size=(200, 4))
    scores[np.arange(200), y] += 1.0  # mostly right
    pred = scores.argmax(1)
    assert M.accuracy(y, scores) == pytest.approx(skm.accuracy_score(y, pred))
    assert M.precision(y, scores) == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert M.recall(y, scores) == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert M.f1_score(y, scores) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    np.testing.assert_array_equal(M.confusion_matrix(y, pred), skm.confusion_matrix(y, pred))


def test_label_forms() -> None:
    y = np.array([1, 0, 1, 1])
    assert M.accuracy(y, np.array([[0.9], [0.2], [0.4], [0.7]])) == 0.75  # probabilities
    assert M.accuracy(y.astype(float).reshape(-1, 1), np.array([1, 0, 0, 1])) == 0.75
    cm = M.confusion_matrix([0, 1], [1, 1], num_classes=3)
    assert cm.tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="predictions"):
        M.accuracy([0, 1, 1], [0, 1])


def test_regression_metrics() -> None:
    t = RNG.normal(size=(50, 1)) + 5
    p = t + RNG.normal(size=(50, 1)) * 0.3
    assert M.mae(t, p) == pytest.approx(skm.mean_absolute_error(t, p))
    assert M.mse(t, p) == pytest.approx(skm.mean_squared_error(t, p))
    assert M.rmse(t, p) == pytest.approx(np.sqrt(skm.mean_squared_error(t, p)))
    assert M.r2_score(t, p) == pytest.approx(skm.r2_score(t, p))
    assert M.mape(t, p) == pytest.approx(100 * skm.mean_absolute_percentage_error(t, p))
    assert M.mape([0.0, 2.0], [1.0, 1.0]) == pytest.approx(50.0)  # zero targets skipped
    assert M.r2_score([1.0, 1.0], [1.0, 1.0]) == 1.0


def test_directional_accuracy() -> None:
    truth = np.array([10.0, 11.0, 10.5, 12.0, 12.5])
    # forecasts of each step: up (right), up (wrong, truth went down), up (right), down (wrong)
    pred = np.array([0.0, 10.5, 11.5, 13.0, 11.0])
    assert M.directional_accuracy(truth, pred) == pytest.approx(0.5)
    prev = np.array([1.0, 1.0, 1.0])
    assert M.directional_accuracy([2.0, 0.0, 2.0], [3.0, 0.5, 0.0], previous=prev) == pytest.approx(
        2 / 3
    )


def test_registry() -> None:
    assert M.get_metric("ACCURACY") == ("accuracy", M.accuracy)

    def my_metric(t, p):
        return 1.0

    assert M.get_metric(my_metric) == ("my_metric", my_metric)
    with pytest.raises(ValueError, match="known"):
        M.get_metric("auc")
    assert M.higher_is_better("val_accuracy") and not M.higher_is_better("val_mae")
    assert M.metric_value(np.float32(0.5)) == 0.5
    assert M.metric_value(np.eye(2, dtype=int)) == [[1, 0], [0, 1]]
