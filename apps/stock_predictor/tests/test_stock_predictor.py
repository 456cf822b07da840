"""stock_predictor end to end on small data, its data sources and its errors."""

import importlib.util
import io
import re
import subprocess
import sys
import tarfile
from datetime import date

import numpy as np
import pandas as pd
import pytest
from azuraforge_app_stock_predictor import StockPredictor, data

from azuraforge_forecasting import DataError
from azuraforge_pipeline import (
    Cancelled,
    RecordingReporter,
    RunContext,
    applies_when_problems,
    discover,
)


def synthetic_prices(n=600, phi=-0.7, seed=0):
    """Business-day OHLCV whose daily returns flip sign predictably (AR(1), phi < 0)."""
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + rng.normal(0, 0.01)
    close = 100 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    return pd.DataFrame({
        "Date": pd.bdate_range("2015-01-01", periods=n).strftime("%Y-%m-%d"),
        "Open": open_, "High": high, "Low": low, "Close": close,
        "Adj Close": close, "Volume": rng.integers(1_000_000, 2_000_000, n),
    })  # fmt: skip


def run(config, tmp_path, **ctx):
    reporter = RecordingReporter()
    context = RunContext(artifact_dir=tmp_path / "artifacts", reporter=reporter, seed=0, **ctx)
    cfg = StockPredictor.validate_config(config)
    return StockPredictor().run(cfg, context), reporter, context


def csv_config(tmp_path, frame, **extra):
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    return {"dataset": "csv", "csv_path": str(path), **extra}


def test_end_to_end_on_a_slice_of_the_sp500(tmp_path):
    summary, rep, ctx = run({"max_rows": 300, "epochs": 2, "window": 10}, tmp_path)
    assert summary["rows"] == 300 and summary["source"].startswith("S&P 500")
    assert [e for _, _, e in rep.metric_points][:2] == [1, 2]
    assert {"loss", "val_loss", "val_mae", "val_naive_mae"} <= set(rep.metric_points[0][0])
    events = [p for t, p in rep.events if t == "predictions"]
    assert len(events) == summary["epochs_trained"]
    assert 2000 < np.mean(events[-1]["predicted"]) < 3500  # index points, 2017-2018
    assert set(summary["test"]) == {"model", "naive"}
    for key in ("mae", "rmse", "mape"):
        assert summary["test"]["model"][key] > 0 and summary["test"]["naive"][key] > 0
    assert 0 <= summary["test"]["model"]["directional_accuracy"] <= 1
    assert {p for p, _, _ in rep.artifacts} == set(summary["artifacts"])
    # the verdict: a Diebold-Mariano test of the model against naive on the test days, its
    # p-value in the summary, the logged metrics and the report
    dm = summary["dm"]["naive"]
    assert (dm["n"], dm["horizon"], dm["loss"]) == (summary["samples"]["test"], 1, "absolute")
    assert 0 < dm["p_value"] <= 1 and summary["test"]["naive"]["dm_p"] == dm["p_value"]
    assert summary["test_naive_dm_p"] == dm["p_value"]
    assert rep.metric_points[-1][0]["test_naive_dm_p"] == dm["p_value"]
    significant_lead = dm["p_value"] < 0.05 and dm["mean_difference"] < 0
    assert summary["beats_naive"] is significant_lead
    assert summary["verdict"].startswith(
        "The model beats the naive forecast" if significant_lead else "The model is"
    )
    assert "DM p = " in summary["verdict"]
    report = (ctx.artifact_dir / "report.md").read_text()
    assert f"**{summary['verdict']}**" in report and "| DM p vs model |  |" in report

    # predict takes raw price rows as the dataset has them (capitalised headers, Adj Close)
    table = pd.read_csv(ctx.artifact_dir / "predictions.csv")
    test = table[table["split"] == "test"]
    raw = pd.read_csv(data.package_data_file("arch", "data/sp500/sp500.csv.gz", ""))
    raw_dates = pd.to_datetime(raw["Date"], format="%m/%d/%Y")
    day = pd.Timestamp(test["date"].iloc[0])
    rows = raw[raw_dates < day].tail(15).to_dict("records")
    model_path = ctx.artifact_dir / "model.safetensors"
    one = StockPredictor.predict(model_path, rows)
    assert one["target"] == "close"
    assert one["predictions"][0] == pytest.approx(test["predicted"].iloc[0], rel=1e-5)
    # five business days ahead, fed back step by step, skipping the weekend
    rows = raw[raw_dates <= pd.Timestamp("2018-12-28")].tail(15).to_dict("records")  # a Friday
    five = StockPredictor.predict(model_path, {"rows": rows, "horizon": 5})  # the API's form
    assert five["dates"] == ["2018-12-31", "2019-01-01", "2019-01-02", "2019-01-03", "2019-01-04"]
    assert all(abs(p / 2485.74 - 1) < 0.1 for p in five["predictions"])
    with pytest.raises(DataError, match="too few: this model needs the last 11 rows"):
        StockPredictor.predict(model_path, rows[:5])


def test_the_model_learns_predictable_returns(tmp_path):
    config = csv_config(tmp_path, synthetic_prices(), window=5, epochs=30, learning_rate=3e-3)
    summary, _, _ = run(config, tmp_path)
    # the naive forecast misses every flip; the model should catch most of it
    assert summary["mae_ratio"]["naive"] < 0.85
    assert summary["test"]["model"]["directional_accuracy"] > 0.65
    # ... and the lead is far beyond noise
    assert summary["beats_naive"] is True and summary["dm"]["naive"]["p_value"] < 0.01
    assert re.fullmatch(
        r"The model beats the naive forecast: MAE \S+ vs \S+, \d+\.\d% lower \(DM p = 0\.00\d+\)\.",
        summary["verdict"],
    )


def test_cancel_stops_training(tmp_path):
    with pytest.raises(Cancelled):
        run(csv_config(tmp_path, synthetic_prices(200), window=5), tmp_path,
            stop_requested=lambda: True)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="Volume"), r"missing the column\(s\) 'volume'"),
        (lambda f: f.drop(columns=["Open", "Low"]), r"'open', 'low'"),
        (lambda f: f.assign(Close=f["Close"].astype(object).where(f.index != 6, "12,5")),
         "column 'close' has non-numeric values: row 7"),
        (lambda f: f.assign(Close=f["Close"].astype(object).where(f.index != 6, "n/a")),
         r"column 'close' has empty or missing cells in row 7;"),
        (lambda f: f.assign(Low=f["Low"].where(f.index != 3, -1.0)), "column 'low' has 1 values <= 0"),
        (lambda f: f.head(20), "too few"),
    ],
)  # fmt: skip
def test_bad_price_files_get_clear_errors(tmp_path, change, message):
    with pytest.raises(DataError, match=message) as err:
        run(csv_config(tmp_path, change(synthetic_prices(80)), window=5, epochs=1), tmp_path)
    # a file is named, not located, and none of its cells is quoted
    shown = str(err.value)
    assert str(tmp_path) not in shown and "12,5" not in shown and "first on" not in shown


def test_offline_series_load_without_importing_arch():
    code = (
        "import sys; from azuraforge_app_stock_predictor import data as d; "
        "s, _ = d.load_builtin('sp500'); n, _ = d.load_builtin('nasdaq'); "
        "print(len(s), list(s.columns), len(n), s['date'].iloc[0].date(), "
        "[m for m in ('arch', 'statsmodels', 'scipy', 'pmdarima') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "5031 ['date', 'open', 'high', 'low', 'close', 'volume'] 5031 1999-01-04 []"
    )


def test_msft_series_is_read_from_its_tarball(tmp_path):
    csv = synthetic_prices(30).rename(columns={"Adj Close": "OpenInt"}).to_csv(index=False)
    tar_path = tmp_path / "msft.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        info = tarfile.TarInfo("msft.csv")
        info.size = len(csv.encode())
        tar.addfile(info, io.BytesIO(csv.encode()))
    frame = data.prices(data.read_tar_csv(tar_path, "msft"), "msft")
    assert len(frame) == 30 and list(frame.columns)[1:] == list(data.PRICE_COLUMNS)
    if importlib.util.find_spec("pmdarima") is None:  # the optional 'msft' extra
        with pytest.raises(DataError, match=r"azuraforge-app-stock-predictor\[msft\]"):
            data.load_builtin("msft")
    else:
        msft, _ = data.load_builtin("msft")
        assert len(msft) == 7983 and msft["date"].iloc[0] == pd.Timestamp("1986-03-13")


def fake_yfinance_download(n=5, multi=True):
    """What yfinance.download returns: a Date index (UTC-aware here) and, in recent versions,
    (field, ticker) column pairs."""
    idx = pd.DatetimeIndex(pd.bdate_range("2024-01-02", periods=n, tz="UTC"), name="Date")
    fields = {"Adj Close": 1.0, "Close": 1.0, "High": 1.1, "Low": 0.9, "Open": 1.0, "Volume": 1e6}
    values = {f: np.linspace(100, 104, n) * k if f != "Volume" else np.full(n, k)
              for f, k in fields.items()}  # fmt: skip
    df = pd.DataFrame(values, index=idx)
    if multi:
        df.columns = pd.MultiIndex.from_product([df.columns, ["MSFT"]], names=["Price", "Ticker"])
    return df


def test_yfinance_downloads_are_parsed(tmp_path, monkeypatch):
    for multi in (True, False):
        frame = data.frame_from_yfinance(fake_yfinance_download(multi=multi), "MSFT")
        assert list(frame.columns) == ["date", *data.PRICE_COLUMNS]
        assert (
            frame["date"].iloc[0] == pd.Timestamp("2024-01-02") and frame["close"].iloc[-1] == 104
        )
    with pytest.raises(DataError, match="no rows for 'NOPE'"):
        data.frame_from_yfinance(pd.DataFrame(), "NOPE")
    # without the 'online' extra, asking for Yahoo Finance says what to install
    monkeypatch.setitem(sys.modules, "yfinance", None)
    with pytest.raises(DataError, match=r"\[online\]"):
        data.fetch_yfinance("MSFT", date(2024, 1, 1), date(2024, 2, 1), tmp_path)


def test_yfinance_source_runs_from_its_download_cache(tmp_path):
    prices = synthetic_prices(120)
    cache = tmp_path / "cache"
    cache.mkdir()
    prices.to_csv(cache / "yfinance-AAPL-2015-01-01-2015-07-01.csv", index=False)
    config = {"dataset": "yfinance", "ticker": "aapl", "start_date": "2015-01-01",
              "end_date": "2015-07-01", "cache_dir": str(cache), "window": 5, "epochs": 1}  # fmt: skip
    summary, _, _ = run(config, tmp_path)
    assert summary["source"] == "AAPL daily prices (Yahoo Finance)" and summary["rows"] == 120


def test_discovered_with_a_form_ready_schema():
    assert discover().get("stock_predictor") is StockPredictor
    props = StockPredictor.config_schema()["properties"]
    assert props["dataset"]["enum"] == ["sp500", "nasdaq", "msft", "yfinance", "csv"]
    assert props["model"]["enum"] == ["lstm", "gru", "mlp"]
    assert props["window"]["maximum"] == 365 and props["learning_rate"]["title"]
    assert StockPredictor.default_config()["dataset"] == "sp500"


def test_the_form_shows_each_data_field_only_for_the_dataset_that_reads_it():
    # x-applies-when: no MSFT ticker next to the S&P 500, no CSV path next to a download
    props = StockPredictor.config_schema()["properties"]
    conditional = {k: v["x-applies-when"] for k, v in props.items() if "x-applies-when" in v}
    online = {"dataset": ["yfinance"]}
    assert conditional == {
        "csv_path": {"dataset": ["csv"]},
        "ticker": online,
        "start_date": online,
        "end_date": online,
        "cache_dir": online,
    }
    assert applies_when_problems(StockPredictor.Config) == []


@pytest.mark.slow
def test_default_config_stays_within_ten_percent_of_naive(tmp_path):
    summary, _, _ = run({}, tmp_path)
    print("stock default:", summary["test"], summary["mae_ratio"])
    assert summary["test_mae"] <= 1.10 * summary["test_naive_mae"]


def test_forecast_counts_are_bounded(tmp_path):
    """A horizon is a loop count: 1e20 or Infinity (JSON lets a client send both) must be
    refused, not run until the process is killed; and a path inside the API's mapping form
    would bypass the checks a server applies to a path given as the inputs themselves."""
    prices = synthetic_prices(120)
    _, _, ctx = run(csv_config(tmp_path, prices, window=5, epochs=1, hidden_size=4), tmp_path)
    model_path = ctx.artifact_dir / "model.safetensors"
    rows = prices.tail(10).to_dict("records")
    two = StockPredictor.predict(model_path, {"rows": rows, "horizon": 2.0})
    assert len(two["predictions"]) == 2
    for horizon, message in [
        (1e20, "between 1 and 1000 steps, got 1e\\+20"),
        (10**20, "between 1 and 1000 steps"),
        (1001, "between 1 and 1000 steps, got 1001"),
        (0, "between 1 and 1000 steps, got 0"),
        (float("inf"), "whole number of steps, got inf"),
        (float("nan"), "whole number of steps, got nan"),
        (2.5, "whole number of steps, got 2.5"),
        (True, "whole number of steps, got bool"),
        ("5", "whole number of steps, got str"),
    ]:
        with pytest.raises(DataError, match=message):
            StockPredictor.predict(model_path, {"rows": rows, "horizon": horizon})
    with pytest.raises(DataError, match="whole number of steps"):
        StockPredictor.predict(model_path, rows, horizon=float("inf"))
    with pytest.raises(DataError, match="rows must be a list of row objects"):
        StockPredictor.predict(model_path, {"rows": str(tmp_path / "prices.csv")})
