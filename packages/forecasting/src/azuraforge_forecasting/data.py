"""Reading and validating the data a forecaster trains on or predicts from.

Every problem is a `DataError` whose message names it (a missing column, a non-numeric
cell, too few rows) and is meant to be shown to the user as it is; messages about a file
name it by its name only and never quote its contents.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class DataError(ValueError):
    """Data that cannot be used, with a message that names the problem (missing column,
    too few rows, non-numeric cells, ...). Meant to be shown to the user as it is."""


def package_data_file(package: str, relative: str, install_hint: str) -> Path:
    """A data file shipped inside an installed package, found WITHOUT importing the package
    (importing `arch` or `pmdarima` would pull in scipy and statsmodels for nothing)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the package {package!r} is not installed; {install_hint}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(f"the installed {package!r} has no data file {relative!r}; {install_hint}")
    return path


def column_name(name: Any) -> str:
    """'Adj Close' -> 'adj_close': CSV headers are matched case- and space-insensitively."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def read_csv(source: str | Path | bytes | io.IOBase, what: str = "the CSV file") -> pd.DataFrame:
    """A CSV (path, bytes or open file; .gz read transparently) as a DataFrame of strings and
    numbers, or a DataError saying why not. The messages name the file by its name only and
    never quote its contents (a server shows them to the client that named the file)."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{what}: no such file ({path.name})")
        source = path
    elif isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        return pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"{what} is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} is not UTF-8 text (a bad byte at offset {exc.start})") from None
    except pd.errors.ParserError as exc:
        # the C parser's messages give line and field counts, never cell contents
        raise DataError(f"{what} is not a readable CSV file: {exc}") from None
    except (ValueError, OSError):
        raise DataError(f"{what} is not a readable CSV file") from None


def _rows(mask: pd.Series, values: pd.Series | None, limit: int = 5) -> str:
    where = np.flatnonzero(mask.to_numpy())
    value = (lambda i: f" ({values.iloc[i]!r})") if values is not None else (lambda i: "")
    shown = ", ".join(f"row {i + 1}{value(i)}" for i in where[:limit])
    more = f" and {len(where) - limit} more" if len(where) > limit else ""
    return f"{shown}{more}"


def prepare_frame(
    df: pd.DataFrame,
    required: Sequence[str] = (),
    date_column: str = "date",
    what: str = "the data",
    *,
    quote_values: bool = True,
) -> pd.DataFrame:
    """Validate a table of dated rows: a 'date' column of dates, the `required` columns
    present and numeric, rows sorted by date without duplicates. Returns 'date' plus every
    numeric column (float64); columns of text (e.g. a 'weather' label) are left out.
    Row numbers in messages count data rows from 1; offending cells are quoted only with
    `quote_values` (rows the caller sent itself, not a file's contents)."""
    df = df.copy()
    df.columns = [column_name(c) for c in df.columns]
    date_column = column_name(date_column)
    columns = ", ".join(df.columns) or "none"
    if date_column not in df.columns:
        raise DataError(f"{what} has no '{date_column}' column (its columns: {columns})")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} is missing the column(s) {', '.join(repr(c) for c in missing)} "
            f"(its columns: {columns})"
        )
    if len(df) == 0:
        raise DataError(f"{what} has no rows")
    raw_dates = df[date_column]
    dates = pd.to_datetime(raw_dates, errors="coerce", format="mixed", utc=True)
    if dates.isna().any():
        raise DataError(
            f"{what}: column '{date_column}' has values that are not dates: "
            f"{_rows(dates.isna(), raw_dates if quote_values else None)}"
        )
    out = pd.DataFrame({"date": dates.dt.tz_localize(None)})
    for col in df.columns:
        if col == date_column:
            continue
        raw = df[col]
        values = pd.to_numeric(raw, errors="coerce")
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        bad = values.isna() & ~blank | np.isinf(values)
        if col not in required and bad.sum() > 0.5 * max(int((~blank).sum()), 1):
            continue  # a text column (labels, tickers): not a feature
        if bad.any():
            shown = _rows(bad, raw if quote_values else None)
            raise DataError(f"{what}: column {col!r} has non-numeric values: {shown}")
        if blank.any():
            raise DataError(
                f"{what}: column {col!r} has empty or missing cells in {_rows(blank, None)}; "
                "fill or drop those rows"
            )
        out[col] = values.astype(np.float64)
    duplicated = out["date"].duplicated()
    if duplicated.any():
        shown = _rows(duplicated, out["date"].astype(str) if quote_values else None)
        raise DataError(f"{what}: some dates appear twice: {shown}")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def frame_from_rows(rows: Any, required: Sequence[str], what: str = "the rows") -> pd.DataFrame:
    """Raw rows for `predict`: a list of dicts, a DataFrame, or a CSV file as a `Path` (an
    upload). A plain string is never taken for a file: JSON from a client cannot name one."""
    if isinstance(rows, os.PathLike):
        df = read_csv(Path(rows), what)
        return prepare_frame(df, required=required, what=what, quote_values=False)
    if isinstance(rows, str):
        raise DataError(f"{what} must be a list of dicts (one per row); upload a CSV file instead")
    if isinstance(rows, pd.DataFrame):
        df = rows.reset_index() if "date" not in map(column_name, rows.columns) else rows
    else:
        try:
            df = pd.DataFrame(list(rows))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what} must be a list of dicts (one per row): {exc}") from None
    return prepare_frame(df, required=required, what=what)


__all__ = [
    "DataError",
    "column_name",
    "frame_from_rows",
    "package_data_file",
    "prepare_frame",
    "read_csv",
]
