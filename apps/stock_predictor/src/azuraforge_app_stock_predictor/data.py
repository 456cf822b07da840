"""Daily price data: the offline series inside `arch` (S&P 500, NASDAQ) and `pmdarima`
(Microsoft), Yahoo Finance through yfinance (online, cached on disk) and the user's CSV."""

from __future__ import annotations

import io
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from azuraforge_forecasting import (
    DataError,
    package_data_file,
    prepare_frame,
    read_csv,
)

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
MSFT_HINT = "install it with: pip install 'azuraforge-app-stock-predictor[msft]'"
BUILTIN = {
    "sp500": ("arch", "data/sp500/sp500.csv.gz", "S&P 500 daily prices 1999-2018 (arch)"),
    "nasdaq": ("arch", "data/nasdaq/nasdaq.csv.gz", "NASDAQ daily prices 1999-2018 (arch)"),
    "msft": (
        "pmdarima",
        "datasets/data/msft.tar.gz",
        "Microsoft daily prices 1986-2017 (pmdarima)",
    ),
}


def prices(df: pd.DataFrame, what: str, *, quote_values: bool = True) -> pd.DataFrame:
    """Validated price rows: date, open, high, low, close, volume (other columns dropped).
    Without `quote_values` (a user's file) messages name no cell of it."""
    frame = prepare_frame(df, required=PRICE_COLUMNS, what=what, quote_values=quote_values)
    for col in PRICE_COLUMNS:
        bad = frame[col] < 0 if col == "volume" else frame[col] <= 0
        if bad.any():
            first = f" (first on {frame['date'][bad].iloc[0].date()})" if quote_values else ""
            raise DataError(f"{what}: column {col!r} has {int(bad.sum())} values <= 0{first}")
    return frame[["date", *PRICE_COLUMNS]]


def read_tar_csv(path: Path, what: str) -> pd.DataFrame:
    """The first CSV inside a .tar.gz (pmdarima ships msft.csv that way)."""
    with tarfile.open(path, "r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(".csv")), None)
        handle = tar.extractfile(member) if member is not None else None
        if handle is None:
            raise DataError(f"{what}: {path.name} holds no CSV file")
        return read_csv(io.BytesIO(handle.read()).getvalue(), what)


def load_builtin(name: str) -> tuple[pd.DataFrame, str]:
    package, relative, description = BUILTIN[name]
    hint = MSFT_HINT if package == "pmdarima" else f"install it with: pip install {package}"
    path = package_data_file(package, relative, hint)
    raw = (
        read_tar_csv(path, description)
        if path.name.endswith(".tar.gz")
        else read_csv(path, description)
    )
    return prices(raw, description), description


def load_csv(path: str) -> tuple[pd.DataFrame, str]:
    # named by its file name: at run time `path` is the resolved server path
    name = f"CSV file {Path(path).name}"
    return prices(read_csv(path, f"the {name}"), f"the {name}", quote_values=False), name


def frame_from_yfinance(df: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """yfinance's download (Date index; flat or (field, ticker) columns) as price rows."""
    if df is None or len(df) == 0:
        raise DataError(f"Yahoo Finance returned no rows for {ticker!r} (unknown ticker or dates?)")
    df = df.copy()
    if isinstance(df.columns, pd.MultiIndex):
        level = next((i for i, names in enumerate(df.columns.levels) if "Close" in names), 0)
        df.columns = df.columns.get_level_values(level)
    return prices(df.reset_index(), f"the Yahoo Finance data for {ticker}")


def fetch_yfinance(ticker: str, start: date, end: date | None, cache_dir: Path) -> pd.DataFrame:
    """Daily prices from Yahoo Finance, downloaded once per (ticker, dates) and cached as CSV."""
    stop = end or date.today()
    cached = cache_dir / f"yfinance-{ticker.upper()}-{start}-{stop}.csv"
    if cached.is_file():
        what = f"the cached file {cached.name}"
        return prices(read_csv(cached, what), what, quote_values=False)
    try:
        import yfinance  # optional: only this source needs it
    except ImportError:
        raise DataError(
            "the yfinance source needs the 'online' extra: "
            "pip install 'azuraforge-app-stock-predictor[online]'"
        ) from None
    try:
        raw: Any = yfinance.download(ticker, start=start.isoformat(), end=stop.isoformat(),
                                     auto_adjust=False, progress=False)  # fmt: skip
    except Exception as exc:  # network and API errors come in many types
        raise DataError(f"could not download {ticker!r} from Yahoo Finance: {exc}") from None
    frame = frame_from_yfinance(raw, ticker)
    cache_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(cached, index=False)
    return frame
