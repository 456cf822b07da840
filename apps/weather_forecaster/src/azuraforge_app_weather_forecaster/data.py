"""Weather data: the offline datasets inside `vega_datasets`, Open-Meteo's archive API
(downloaded once, then cached on disk) and the user's own CSV."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from azuraforge_forecasting import DataError, package_data_file, prepare_frame, read_csv

BUILTIN = {
    "seattle": ("_data/seattle-weather.csv", "Seattle daily weather 2012-2015 (vega_datasets)"),
    "sf_hourly": (
        "_data/sf-temps.csv",
        "San Francisco hourly temperature 2010, deg F (vega_datasets)",
    ),
}

ARCHIVE_URL = "https://archive-api.open-meteo.com/v1/archive"
# Open-Meteo variable -> our column name (the Seattle dataset's names, same units).
DAILY_VARIABLES = {
    "temperature_2m_max": "temp_max",
    "temperature_2m_min": "temp_min",
    "precipitation_sum": "precipitation",
    "wind_speed_10m_max": "wind",
}
HOURLY_VARIABLES = {
    "temperature_2m": "temp",
    "precipitation": "precipitation",
    "wind_speed_10m": "wind",
}


def load_builtin(name: str) -> tuple[pd.DataFrame, str]:
    relative, description = BUILTIN[name]
    path = package_data_file(
        "vega_datasets", relative, "install it with: pip install vega_datasets"
    )
    return prepare_frame(read_csv(path, description), what=description), description


def open_meteo_url(
    latitude: float, longitude: float, start: date, end: date, frequency: str
) -> str:
    variables = DAILY_VARIABLES if frequency == "daily" else HOURLY_VARIABLES
    query = {
        "latitude": f"{latitude:.4f}",
        "longitude": f"{longitude:.4f}",
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        frequency: ",".join(variables),
        "timezone": "auto",
        "wind_speed_unit": "ms",
    }
    return f"{ARCHIVE_URL}?{urllib.parse.urlencode(query)}"


def parse_open_meteo(payload: Mapping[str, Any]) -> pd.DataFrame:
    """An Open-Meteo archive response (parsed JSON) as validated rows. Rows with a missing
    reading (the archive trails the present by a few days) are dropped."""
    if payload.get("error"):
        raise DataError(
            f"Open-Meteo refused the request: {payload.get('reason', 'no reason given')}"
        )
    for block, names in (("daily", DAILY_VARIABLES), ("hourly", HOURLY_VARIABLES)):
        data = payload.get(block)
        if isinstance(data, Mapping) and "time" in data:
            columns = {"date": data["time"]}
            columns.update({ours: data[theirs] for theirs, ours in names.items() if theirs in data})
            if len(columns) == 1:
                raise DataError(f"the Open-Meteo response has no known {block} variables")
            try:
                df = pd.DataFrame(columns).dropna()
            except ValueError as exc:
                raise DataError(f"the Open-Meteo response is malformed: {exc}") from None
            return prepare_frame(df, what="the Open-Meteo data")
    raise DataError("the Open-Meteo response has neither 'daily' nor 'hourly' data")


def fetch_open_meteo(url: str, cache_dir: Path, timeout: float = 60.0) -> dict[str, Any]:
    """The JSON behind `url`, downloaded once and then read from `cache_dir`."""
    cached = cache_dir / f"open-meteo-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise DataError(f"Open-Meteo answered {exc.code}: {exc.read()[:300]!r}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DataError(f"could not reach Open-Meteo ({exc}); pick an offline dataset") from None
    payload = json.loads(body)
    if not payload.get("error"):
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(body)
    return payload


def load_csv(path: str) -> tuple[pd.DataFrame, str]:
    # named by its file name: at run time `path` is the resolved server path
    name = f"CSV file {Path(path).name}"
    frame = prepare_frame(read_csv(path, f"the {name}"), what=f"the {name}", quote_values=False)
    return frame, name
