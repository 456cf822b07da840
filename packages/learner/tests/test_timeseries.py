"""Time-series helpers: calendar features, the seasonal profile, forecasts vs baselines."""

import json

import numpy as np
import pytest

from azuraforge_learner import timeseries as ts


def days(n, start="2020-01-01", unit="D"):
    return np.datetime64(start, unit) + np.arange(n).astype(f"timedelta64[{unit}]")


def test_calendar_features_are_periodic_and_named():
    d = np.array(["2021-12-31", "2022-01-01", "2022-07-02"], dtype="datetime64[D]")
    f = ts.calendar_features(d, ("year", "week"), harmonics=2)
    assert f.shape == (3, 8)
    assert ts.calendar_feature_names(("year", "week"), 2)[:4] == [
        "year_sin1",
        "year_cos1",
        "year_sin2",
        "year_cos2",
    ]
    assert np.all(np.abs(f) <= 1.0)
    # New Year's Eve sits next to New Year's Day; midsummer is on the other side of the circle.
    assert np.abs(f[0, :2] - f[1, :2]).max() < 0.03
    assert np.abs(f[2, :2] - f[1, :2]).max() > 1.5
    # the same weekday a week later has the same week features
    week = ts.calendar_features(days(8), ("week",))
    np.testing.assert_allclose(week[0], week[7], atol=1e-9)
    hours = ts.calendar_features(days(25, "2020-01-01T00", "h"), ("day",))
    np.testing.assert_allclose(hours[0], hours[24], atol=1e-9)
    assert not np.allclose(hours[0], hours[12])


def test_calendar_features_reject_unknown_cycles_and_missing_dates():
    with pytest.raises(ValueError, match="unknown calendar cycle"):
        ts.calendar_features(days(3), ("month",))
    with pytest.raises(ValueError, match="NaT"):
        ts.to_days(np.array(["2020-01-01", "NaT"], dtype="datetime64[D]"))


def test_seasonal_profile_recovers_a_yearly_cycle_from_training_data():
    rng = np.random.default_rng(0)
    d = days(3 * 365)
    phase = 2 * np.pi * ts.to_days(d) / 365.2425
    truth = 12.0 + 7.0 * np.sin(phase) - 3.0 * np.cos(phase)
    y = truth + rng.normal(0, 2.0, len(d))
    profile = ts.SeasonalProfile(("year",)).fit(d[:730], y[:730])  # two years only
    pred = profile.predict(d)
    # close to the true season, also on the third year it never saw
    assert np.abs(pred[730:] - truth[730:]).max() < 0.6
    assert pred.shape == (len(d),)
    # JSON round trip gives the same profile
    again = ts.SeasonalProfile.from_state(json.loads(json.dumps(profile.get_state())))
    np.testing.assert_allclose(again.predict(d), pred)


def test_seasonal_profile_handles_several_columns_and_checks_input():
    d = days(400)
    cols = np.column_stack([np.arange(400.0), -np.arange(400.0)])
    out = ts.SeasonalProfile(("year",)).fit(d, cols).predict(d[:5])
    assert out.shape == (5, 2)
    with pytest.raises(RuntimeError, match="fit"):
        ts.SeasonalProfile().predict(d)
    with pytest.raises(ValueError, match="NaN"):
        ts.SeasonalProfile().fit(d[:2], [1.0, np.nan])
    with pytest.raises(ValueError, match="3 dates but 2 values"):
        ts.SeasonalProfile().fit(d[:3], [1.0, 2.0])


def test_forecast_metrics_by_hand():
    y = np.array([10.0, 12.0, 9.0, 9.0])
    prev = np.array([11.0, 10.0, 12.0, 10.0])
    pred = np.array([10.5, 11.0, 13.0, 9.5])
    m = ts.forecast_metrics(y, pred, previous=prev)
    assert m["mae"] == pytest.approx((0.5 + 1 + 4 + 0.5) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((0.25 + 1 + 16 + 0.25) / 4))
    assert m["mape"] == pytest.approx(100 * np.mean([0.05, 1 / 12, 4 / 9, 0.5 / 9]))
    # moves: truth down, up, down, down; forecast down, up, up, down -> 3 of 4 right
    assert m["directional_accuracy"] == pytest.approx(0.75)
    # the naive forecast never moves: it calls no direction
    assert ts.forecast_metrics(y, prev, previous=prev)["directional_accuracy"] is None
    assert "directional_accuracy" not in ts.forecast_metrics(y, pred)


def test_compare_forecasts_puts_the_model_next_to_its_baselines():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    cmp = ts.compare_forecasts(
        y, {"model": y + 0.5, "naive": y - 1.0, "seasonal": y + 0.25}, previous=y - 1.0
    )
    assert cmp["mae_ratio"] == {"naive": pytest.approx(0.5), "seasonal": pytest.approx(2.0)}
    assert cmp["beats"] == {"naive": True, "seasonal": False}
    text = ts.describe_comparison(cmp)
    assert "beat the naive forecast" in text and "50.0% lower" in text
    assert "did NOT beat the seasonal forecast" in text and "100.0% higher" in text
    with pytest.raises(ValueError, match="no forecast named 'model'"):
        ts.compare_forecasts(y, {"naive": y})


def test_downsample_indices_keeps_the_ends():
    idx = ts.downsample_indices(1000, 300)
    assert len(idx) <= 300 and idx[0] == 0 and idx[-1] == 999
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(ts.downsample_indices(5, 300), np.arange(5))
    with pytest.raises(ValueError):
        ts.downsample_indices(5, 0)
