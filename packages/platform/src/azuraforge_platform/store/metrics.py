"""Metric history: upserts of (name, step) points and reading them back."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Integer, String, bindparam, select, text
from sqlalchemy.dialects import postgresql

from azuraforge_platform.store.base import StoreBase, utc_now
from azuraforge_platform.store.records import MetricRecord, MetricValue
from azuraforge_platform.store.tables import FiniteFloat, MetricPoint, UTCDateTime

__all__ = ["MetricsMixin"]

_PG_APPEND_METRICS = text(
    """
    INSERT INTO metrics (experiment_id, name, step, epoch, value, time)
    SELECT :experiment_id, * FROM unnest(:name, :step, :epoch, :value, :time)
    ON CONFLICT (experiment_id, name, step) DO UPDATE
    SET value = excluded.value, epoch = excluded.epoch, time = excluded.time
    """
).bindparams(
    bindparam("name", type_=postgresql.ARRAY(String())),
    bindparam("step", type_=postgresql.ARRAY(BigInteger())),
    bindparam("epoch", type_=postgresql.ARRAY(Integer())),
    bindparam("value", type_=postgresql.ARRAY(FiniteFloat())),
    bindparam("time", type_=postgresql.ARRAY(UTCDateTime())),
)


class MetricsMixin(StoreBase):
    """Metric points, unique per experiment/name/step, so a retry never duplicates one."""

    def append_metrics(self, experiment_id: str, points: Sequence[MetricValue]) -> int:
        """Upsert metric points; the same (name, step) again replaces, never duplicates."""
        now = utc_now()
        rows = [
            {
                "experiment_id": experiment_id,
                "name": p.name,
                "step": int(p.step),
                "epoch": p.epoch,
                "value": float(p.value),
                "time": p.time or now,
            }
            for p in points
        ]
        # Within one batch the last value for a (name, step) wins, as it would across batches.
        rows = list({(r["name"], r["step"]): r for r in rows}.values())
        if not rows:
            return 0
        if self.dialect == "postgresql":
            # One statement for the batch (arrays unnested server-side): the metric_blocks
            # triggers then run once per batch, not once per row as with executemany.
            params = {
                "experiment_id": experiment_id,
                **{
                    key: [r[key] for r in rows]
                    for key in ("name", "step", "epoch", "value", "time")
                },
            }
            with self._fk_guard(experiment_id), self._write() as session:
                session.execute(_PG_APPEND_METRICS, params)
            return len(rows)
        stmt = self._insert(MetricPoint)
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "name", "step"],
            set_={
                "value": stmt.excluded.value,
                "epoch": stmt.excluded.epoch,
                "time": stmt.excluded.time,
            },
        )
        with self._fk_guard(experiment_id), self._write() as session:
            # executemany of one cached statement: compiling a multi-row VALUES per batch
            # cost more than the database work
            session.connection().execute(stmt, rows)
        return len(rows)

    def metrics(self, experiment_id: str, names: Sequence[str] | None = None) -> list[MetricRecord]:
        query = select(MetricPoint).where(MetricPoint.experiment_id == experiment_id)
        if names is not None:
            query = query.where(MetricPoint.name.in_(list(names)))
        query = query.order_by(MetricPoint.name, MetricPoint.step)
        with self._read() as session:
            return [
                MetricRecord(name=m.name, step=m.step, epoch=m.epoch, value=m.value, time=m.time)
                for m in session.scalars(query)
            ]
