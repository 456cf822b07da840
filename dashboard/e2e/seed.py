"""Seed the e2e server's SQLite store for the speed measurements: N finished experiments and one
with a long metric history. Standard library only; it writes rows the way the store does.

Usage: seed.py DB COUNT POINTS [OWNER] -- OWNER (a username) goes into the `owner` column where
the schema has one (stores from before authentication have none)."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import uuid
from datetime import UTC, datetime, timedelta


def main() -> None:
    db, count, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    owner = sys.argv[4] if len(sys.argv) > 4 else None
    conn = sqlite3.connect(db, timeout=30)
    has_owner = any(row[1] == "owner" for row in conn.execute("PRAGMA table_info(experiments)"))
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    pipelines = ["image_classifier", "weather_forecaster", "stock_predictor"]
    statuses = ["succeeded", "succeeded", "succeeded", "failed", "cancelled"]
    rows = []
    for i in range(count):
        t = (start + timedelta(seconds=60 * i)).strftime(fmt)
        config = {"epochs": 5 + i % 20, "learning_rate": round(0.001 * (1 + i % 7), 4)}
        summary = {"accuracy": round(0.8 + (i % 100) / 600, 4)}
        rows.append(
            (uuid.uuid4().hex, f"seeded run {i:05d}", pipelines[i % 3], "0.1.0",
             json.dumps(config), statuses[i % 5], t, t, t, t, None, None, 1, 1, None, None,
             json.dumps(summary), None, 0)
        )  # fmt: skip
    with conn:
        conn.executemany(
            "INSERT INTO experiments (id, name, pipeline_id, pipeline_version, config, status,"
            " created_at, updated_at, started_at, finished_at, heartbeat_at, worker, attempts,"
            " max_attempts, error, traceback, summary, parent_id, last_event_seq)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        if has_owner:
            conn.executemany(
                "UPDATE experiments SET owner = ? WHERE id = ?", [(owner, r[0]) for r in rows]
            )
        conn.executemany(
            "INSERT INTO experiment_tags (experiment_id, tag) VALUES (?, ?)",
            [(r[0], "seeded") for r in rows],
        )
    # one experiment with a long history: a noisy decaying loss, `points` steps
    long_id = uuid.uuid4().hex
    t = datetime.now(UTC).replace(tzinfo=None).strftime(fmt)
    with conn:
        conn.execute(
            "INSERT INTO experiments (id, name, pipeline_id, pipeline_version, config, status,"
            " created_at, updated_at, started_at, finished_at, attempts, max_attempts,"
            " last_event_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (long_id, "long history", "image_classifier", "0.1.0", "{}", "succeeded", t, t, t,
             t, 1, 1, 0),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO metrics (experiment_id, name, step, epoch, value, time)"
            " VALUES (?,?,?,?,?,?)",
            (
                (long_id, "loss", s, None, 2.0 * math.exp(-s / (points / 5)) + 0.1
                 * math.sin(s * 0.37) ** 2, t)
                for s in range(1, points + 1)
            ),
        )  # fmt: skip
        if has_owner:
            conn.execute("UPDATE experiments SET owner = ? WHERE id = ?", (owner, long_id))
    print(long_id)


if __name__ == "__main__":
    main()
