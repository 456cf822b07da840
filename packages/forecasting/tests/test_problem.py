"""The training problem: a chronological split, scalers fitted on the training rows only,
and windows of past rows whose target is the row right after them."""

import numpy as np
import pytest
from toy_forecaster import ToyForecaster, toy_recipe, toy_series

from azuraforge_forecasting import DataError, prepare_frame
from azuraforge_forecasting.problem import MIN_SAMPLES, Problem, decode_target, encode_target


def problem(n=200, window=5, trend=0.5, target_mode="anomaly", val=0.15, test=0.15):
    frame = prepare_frame(toy_series(n, trend=trend), required=["value"])
    recipe = toy_recipe(window, target_mode)
    return frame, recipe, Problem(ToyForecaster, frame, recipe, val, test)


def test_the_split_is_chronological_and_covers_every_window_once():
    *_, p = problem(n=200, window=5)
    ends = np.concatenate([p.idx_train, p.idx_val, p.idx_test])
    # every window's last row, in time order: first training, then validation, then test
    assert ends.tolist() == list(range(4, 199))
    assert p.idx_train.max() < p.idx_val.min() and p.idx_val.max() < p.idx_test.min()
    assert (len(p.idx_val), len(p.idx_test)) == (round(195 * 0.15), round(195 * 0.15))


def test_the_scalers_are_fitted_on_the_training_rows_only():
    # a rising series: statistics over all rows would differ clearly from the training ones
    frame, recipe, p = problem(n=200, window=5, trend=0.5)
    train_rows = frame.iloc[: p.idx_train[-1] + 1]  # through the last training window
    features = train_rows[["value", "other"]].to_numpy()
    state = recipe["feature_scaler"]
    np.testing.assert_allclose(state["mean"], features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(state["scale"], features.std(axis=0), rtol=1e-12)
    assert abs(state["mean"][0] - frame["value"].mean()) > 5
    # the target (the next value; no season here) over the training windows' targets only
    targets = frame["value"].to_numpy()[p.idx_train + 1]
    tstate = recipe["target_scaler"]
    np.testing.assert_allclose(tstate["mean"], [targets.mean()], rtol=1e-12)
    np.testing.assert_allclose(tstate["scale"], [targets.std()], rtol=1e-12)
    # so the training targets are standardised and the later ones are not
    assert abs(float(p.z["train"].mean())) < 1e-5
    assert float(p.z["test"].mean()) > 1


def test_windows_have_the_shape_the_model_reads_and_end_where_their_target_begins():
    frame, _, p = problem(n=120, window=7)
    for name, idx in (("train", p.idx_train), ("val", p.idx_val), ("test", p.idx_test)):
        assert p.X[name].shape == (len(idx), 7, 2) and p.X[name].dtype == np.float32
        assert p.z[name].shape == (len(idx), 1) and p.z[name].dtype == np.float32
        values = frame["value"].to_numpy()
        np.testing.assert_array_equal(p.actual[name], values[idx + 1])
        np.testing.assert_array_equal(p.naive[name], values[idx])
        np.testing.assert_array_equal(
            p.dates_next[name], frame["date"].to_numpy("datetime64[s]")[idx + 1]
        )
    # the first test window: the 7 scaled feature rows ending at its last row
    end = int(p.idx_test[0])
    np.testing.assert_array_equal(p.X["test"][0], p.features[end - 6 : end + 1])


def test_too_few_rows_for_the_window_are_refused_with_how_many_are_needed():
    window = 10
    with pytest.raises(DataError) as err:
        problem(n=window + MIN_SAMPLES - 1, window=window)
    assert str(err.value) == (
        f"{window + MIN_SAMPLES - 1} rows are too few for a window of {window}: need at least "
        f"{window + MIN_SAMPLES} rows (far more for a useful model)"
    )
    problem(n=window + MIN_SAMPLES, window=window)  # exactly enough


def test_returns_need_positive_values():
    frame = prepare_frame(toy_series(100), required=["value"])
    frame.loc[50, "value"] = 0.0
    with pytest.raises(DataError, match="column 'value' must be positive to forecast returns"):
        Problem(ToyForecaster, frame, toy_recipe(5, "log_return"), 0.15, 0.15)


@pytest.mark.parametrize("mode", ["anomaly", "log_return"])
def test_a_target_decodes_back_to_the_value(mode):
    y_next, y_last, season = np.array([3.0, 5.5]), np.array([2.0, 6.0]), np.array([1.0, 4.0])
    z = encode_target(y_next, y_last, season, mode)
    np.testing.assert_allclose(decode_target(z, y_last, season, mode), y_next, rtol=1e-12)
