"""`ExperimentStore`: the one API the HTTP server, the CLI and the workers use to read and
write experiments. It hands out plain frozen records, never live ORM objects."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Row,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable, Select

from azuraforge_platform.settings import Settings
from azuraforge_platform.store.engine import WRITE_OPTION, make_engine
from azuraforge_platform.store.migrate import ensure_schema
from azuraforge_platform.store.models import (
    Artifact,
    Event,
    Experiment,
    ExperimentStatus,
    ExperimentTag,
    FiniteFloat,
    LogLine,
    MetricPoint,
    UTCDateTime,
    json_safe,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "ArtifactRecord",
    "EventRecord",
    "ExperimentNotFoundError",
    "ExperimentRecord",
    "ExperimentStore",
    "InvalidTransitionError",
    "LogRecord",
    "MetricRecord",
    "MetricValue",
    "SORT_FIELDS",
    "Page",
    "StoreError",
]

S = ExperimentStatus
TERMINAL = frozenset({S.succeeded, S.failed, S.cancelled})
ACTIVE = frozenset({S.running, S.cancelling})

# Every legal move; anything else is refused (e.g. succeeded -> running).
ALLOWED_TRANSITIONS: Mapping[ExperimentStatus, frozenset[ExperimentStatus]] = {
    S.queued: frozenset({S.running, S.cancelled, S.failed}),
    S.running: frozenset({S.succeeded, S.failed, S.cancelling, S.cancelled, S.lost}),
    S.cancelling: frozenset({S.cancelled, S.succeeded, S.failed, S.lost}),
    S.lost: frozenset({S.queued, S.failed, S.cancelled}),
    S.succeeded: frozenset(),
    S.failed: frozenset(),
    S.cancelled: frozenset(),
}

SORT_FIELDS = ("created_at", "name", "pipeline_id", "status")


class StoreError(Exception):
    """Base of the store's errors."""


class ExperimentNotFoundError(StoreError, LookupError):
    def __init__(self, experiment_id: str) -> None:
        self.experiment_id = experiment_id
        super().__init__(f"no experiment with id {experiment_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidTransitionError(StoreError):
    def __init__(self, experiment_id: str, current: str, target: str, reason: str = "") -> None:
        self.experiment_id = experiment_id
        self.current = current
        self.target = target
        allowed = sorted(ALLOWED_TRANSITIONS[ExperimentStatus(current)])
        detail = reason or f"allowed from {current}: {', '.join(allowed) or 'none (final state)'}"
        super().__init__(
            f"experiment {experiment_id} cannot go from {current} to {target} ({detail})"
        )


@dataclass(frozen=True)
class ExperimentRecord:
    id: str
    name: str
    pipeline_id: str
    pipeline_version: str | None
    config: dict[str, Any]
    status: ExperimentStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    max_attempts: int
    error: str | None
    traceback: str | None
    summary: dict[str, Any] | None
    parent_id: str | None
    tags: list[str]
    last_event_seq: int
    owner: str | None = None

    @classmethod
    def from_row(cls, row: Experiment) -> ExperimentRecord:
        return _record(row, sorted(t.tag for t in row.tags))


@dataclass(frozen=True)
class MetricValue:
    """One metric point to append. `step` is the x-axis (use the epoch for per-epoch metrics)."""

    name: str
    step: int
    value: float
    epoch: int | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class MetricRecord:
    name: str
    step: int
    epoch: int | None
    value: float | None  # None where the reported value was NaN or infinite
    time: datetime


@dataclass(frozen=True)
class LogRecord:
    id: int
    time: datetime
    level: str
    message: str


@dataclass(frozen=True)
class EventRecord:
    experiment_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    time: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "seq": self.seq,
            "type": self.type,
            "payload": self.payload,
            "time": self.time.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventRecord:
        return cls(
            experiment_id=str(data["experiment_id"]),
            seq=int(data["seq"]),
            type=str(data["type"]),
            payload=dict(data["payload"]),
            time=datetime.fromisoformat(data["time"]),
        )


@dataclass(frozen=True)
class ArtifactRecord:
    path: str
    size: int
    kind: str
    created_at: datetime


@dataclass(frozen=True)
class Page:
    items: list[ExperimentRecord]
    next_cursor: str | None
    total: int | None = None
    offset: int | None = None
    limit: int = 50
    sort: str = "created_at"
    descending: bool = True
    prev_cursor: str | None = None
    estimated_total: int | None = None
    estimate_exact: bool | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(columns: Any, search: str) -> ColumnElement[bool]:
    """Free-text search over `columns` (the table's, or a subquery's): name contains the
    term (any case) or the id starts with it."""
    return or_(
        columns.name.ilike(f"%{_escape_like(search)}%", escape="\\"),
        columns.id.startswith(search, autoescape=True),
    )


def _order(columns: Any, sort: str, descending: bool) -> tuple[Any, Any]:
    """The page order over `columns`: the sort field, then the id (a total order for keyset
    cursors)."""
    key, tie = columns[sort], columns.id
    return (key.desc(), tie.desc()) if descending else (key, tie)


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
_EXPERIMENT_COLUMNS = tuple(c for c in Experiment.__table__.columns)


class _ExplainJson(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <select>` on PostgreSQL, binds and all: the planner's estimate
    of how many rows a query returns, without running it."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_ExplainJson, "postgresql")
def _compile_explain_json(element: _ExplainJson, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _record(row: Row[Any] | Experiment, tags: list[str]) -> ExperimentRecord:
    """An `ExperimentRecord` from an ORM row or a Core row of `_EXPERIMENT_COLUMNS`."""
    return ExperimentRecord(
        id=row.id,
        name=row.name,
        pipeline_id=row.pipeline_id,
        pipeline_version=row.pipeline_version,
        config=dict(row.config or {}),
        status=ExperimentStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        worker=row.worker,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        error=row.error,
        traceback=row.traceback,
        summary=dict(row.summary) if row.summary is not None else None,
        parent_id=row.parent_id,
        tags=tags,
        last_event_seq=row.last_event_seq,
        owner=row.owner,
    )


class ExperimentStore:
    """Experiments and everything they produce, on SQLite or PostgreSQL.

    Creating a store migrates its database to the latest schema on first use. Writes on
    SQLite take the write lock up front; state changes are conditional UPDATEs, so two
    workers can never both claim or finish the same experiment.
    """

    def __init__(
        self,
        url: str,
        artifact_root: str | Path,
        *,
        engine: Engine | None = None,
        migrate: bool = True,
    ) -> None:
        self.engine = engine if engine is not None else make_engine(url)
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self.artifact_root = Path(artifact_root).resolve()
        self.dialect = self.engine.dialect.name
        if migrate:
            ensure_schema(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> ExperimentStore:
        """The store the settings describe (SQLite under data_dir unless a URL is set)."""
        return cls(settings.resolved_database_url, settings.resolved_artifact_root)

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    # -- experiments ----------------------------------------------------------------------
    def create(
        self,
        *,
        pipeline_id: str,
        config: Mapping[str, Any],
        name: str | None = None,
        pipeline_version: str | None = None,
        tags: Sequence[str] = (),
        parent_id: str | None = None,
        max_attempts: int = 1,
        experiment_id: str | None = None,
        created_at: datetime | None = None,
        owner: str | None = None,
    ) -> ExperimentRecord:
        """A new experiment in state `queued`, owned by the username `owner`."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        exp_id = experiment_id or uuid.uuid4().hex
        now = created_at or _now()
        row = Experiment(
            id=exp_id,
            name=name or f"{pipeline_id}-{exp_id[:8]}",
            pipeline_id=pipeline_id,
            pipeline_version=pipeline_version,
            config=json_safe(dict(config)),
            status=S.queued.value,
            created_at=now,
            updated_at=now,
            attempts=0,
            max_attempts=max_attempts,
            parent_id=parent_id,
            last_event_seq=0,
            owner=owner,
            tags=[ExperimentTag(tag=t) for t in sorted(set(tags))],
        )
        try:
            with self._write() as session:
                session.add(row)
        except IntegrityError as exc:
            if parent_id is not None and self._exists(parent_id) is False:
                raise ExperimentNotFoundError(parent_id) from None
            raise StoreError(f"could not create experiment: {exc.orig}") from exc
        return ExperimentRecord.from_row(row)

    def _exists(self, experiment_id: str) -> bool:
        with self._read() as session:
            return session.get(Experiment, experiment_id) is not None

    def get(self, experiment_id: str) -> ExperimentRecord:
        # Core rows, as in list_experiments: the hottest read of the API (every route on
        # one experiment starts here) skips the ORM session and its identity map
        query = select(*_EXPERIMENT_COLUMNS).where(Experiment.id == experiment_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise ExperimentNotFoundError(experiment_id)
            return _record(row, self._tags_of(conn, [experiment_id]).get(experiment_id, []))

    def list_experiments(
        self,
        *,
        pipeline_id: str | None = None,
        status: str | Sequence[str] | None = None,
        tags: str | Sequence[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        parent_id: str | None = None,
        owner: str | None = None,
        sort: str = "created_at",
        descending: bool = True,
        limit: int = 50,
        offset: int | None = None,
        cursor: str | None = None,
        with_total: bool = False,
        estimate_total: bool = False,
    ) -> Page:
        """Filter, search, sort and paginate. Pass the returned `next_cursor` (or
        `prev_cursor`) back as `cursor` for keyset pagination (fast at any depth), or use
        `offset` for page numbers. `with_total` counts the matches; `estimate_total` counts
        them up to `EXACT_COUNT_UP_TO` and asks the planner beyond (PostgreSQL)."""
        if sort not in SORT_FIELDS:
            raise ValueError(f"cannot sort by {sort!r}; choose one of {', '.join(SORT_FIELDS)}")
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        if cursor is not None and offset is not None:
            raise ValueError("use either cursor or offset, not both")
        conditions: list[ColumnElement[bool]] = []
        if pipeline_id is not None:
            conditions.append(Experiment.pipeline_id == pipeline_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for s in statuses:
                ExperimentStatus(s)  # a typo is an error, not an empty page
            conditions.append(Experiment.status.in_(statuses))
        if tags is not None:
            for tag in [tags] if isinstance(tags, str) else tags:
                conditions.append(
                    exists().where(
                        ExperimentTag.experiment_id == Experiment.id, ExperimentTag.tag == tag
                    )
                )
        if created_after is not None:
            conditions.append(Experiment.created_at >= created_after)
        if created_before is not None:
            conditions.append(Experiment.created_at < created_before)
        if parent_id is not None:
            conditions.append(Experiment.parent_id == parent_id)
        if owner is not None:
            conditions.append(Experiment.owner == owner)
        sort_col: Any = getattr(Experiment, sort)
        page_conditions = list(conditions)
        backward = False  # a page before the cursor (from `prev_cursor`)
        if cursor is not None:
            value, last_id, backward = self._decode_cursor(cursor, sort, descending)
            key, bound = tuple_(sort_col, Experiment.id), tuple_(value, last_id)
            # backward reads the rows before the cursor in the opposite order (the same index,
            # scanned the other way), then turns them around
            page_conditions.append(key < bound if descending != backward else key > bound)
        with self.engine.connect() as conn:
            # Core rows (no ORM identity map or lazy loads), tags in one more indexed query
            rows = self._page_rows(
                conn, page_conditions, search, (sort, descending != backward), limit, offset
            )
            if backward and len(rows) < limit:
                # reached the start: the first page, full, rather than a short one
                backward, cursor = False, None
                rows = self._page_rows(conn, conditions, search, (sort, descending), limit, None)
            if search:
                conditions.append(_matches(Experiment.__table__.c, search))
            total = (
                conn.scalar(select(func.count()).select_from(Experiment).where(*conditions))
                if with_total
                else None
            )
            estimate = self._estimate_total(conn, conditions) if estimate_total else None
            page_rows = rows[:limit][::-1] if backward else rows[:limit]
            tags_by_id = self._tags_of(conn, [r.id for r in page_rows])
            items = [_record(r, tags_by_id.get(r.id, [])) for r in page_rows]
        more_before = len(rows) > limit if backward else bool(cursor or offset)
        more_after = True if backward else len(rows) > limit
        next_cursor = prev_cursor = None
        if items and more_after:
            last = items[-1]
            next_cursor = self._encode_cursor(getattr(last, sort), last.id, sort, descending)
        if items and more_before:
            first = items[0]
            prev_cursor = self._encode_cursor(
                getattr(first, sort), first.id, sort, descending, backward=True
            )
        return Page(
            items=items,
            next_cursor=next_cursor,
            total=total,
            offset=offset,
            limit=limit,
            sort=sort,
            descending=descending,
            prev_cursor=prev_cursor,
            estimated_total=estimate[0] if estimate else None,
            estimate_exact=estimate[1] if estimate else None,
        )

    def _page_rows(
        self,
        conn: Connection,
        conditions: list[ColumnElement[bool]],
        search: str | None,
        sorting: tuple[str, bool],
        limit: int,
        offset: int | None,
    ) -> Sequence[Row[Any]]:
        """Up to `limit + 1` rows in `sorting` order (the extra one says there are more)."""
        if search:
            return self._search_page(conn, conditions, search, sorting, limit, offset)
        order = _order(Experiment.__table__.c, *sorting)
        query = select(*_EXPERIMENT_COLUMNS).where(*conditions).order_by(*order)
        return conn.execute(query.limit(limit + 1).offset(offset)).all()

    # Counting every match costs a scan of them all (tens of ms at 100,000 rows, growing with
    # the table): an estimate counts up to this many and asks the planner beyond.
    EXACT_COUNT_UP_TO = 10_000

    def _estimate_total(
        self, conn: Connection, conditions: list[ColumnElement[bool]]
    ) -> tuple[int, bool]:
        """(about how many rows match, whether that is exact)."""
        matching = select(Experiment.id).where(*conditions)
        if self.dialect != "postgresql":  # SQLite: a plain count
            return int(
                conn.scalar(select(func.count()).select_from(matching.subquery())) or 0
            ), True
        cap = self.EXACT_COUNT_UP_TO
        capped = select(func.count()).select_from(matching.limit(cap + 1).subquery())
        counted = int(conn.scalar(capped) or 0)
        if counted <= cap:
            return counted, True
        plan = conn.execute(_ExplainJson(matching)).scalar_one()
        planned = int(plan[0]["Plan"]["Plan Rows"])
        return max(planned, cap + 1), False

    # A search first reads this many of the newest rows in the page's order (cheap, and
    # enough when the term is common); only when they hold too few matches are the matches
    # themselves collected: through the trigram index on PostgreSQL (migration 0004), since
    # scanning in order for rare, old matches read the whole table (50-90 ms at 100,000).
    SEARCH_WINDOW = 1000

    def _search_page(
        self,
        conn: Connection,
        conditions: list[ColumnElement[bool]],
        search: str,
        sorting: tuple[str, bool],
        limit: int,
        offset: int | None,
    ) -> Sequence[Row[Any]]:
        table = Experiment.__table__.c
        recent = (
            select(*_EXPERIMENT_COLUMNS)
            .where(*conditions)
            .order_by(*_order(table, *sorting))
            .limit(self.SEARCH_WINDOW)
            .subquery("recent")
        )
        window = (
            select(*recent.c)
            .where(_matches(recent.c, search))
            .order_by(*_order(recent.c, *sorting))
        )
        rows = conn.execute(window.limit(limit + 1).offset(offset)).all()
        if len(rows) == limit + 1:
            return rows  # the first matches in this order all lie within the window
        # Too few matches among the newest rows: collect every match, then order them.
        # MATERIALIZED keeps PostgreSQL from planning this as the ordered scan again.
        matches = (
            select(*_EXPERIMENT_COLUMNS).where(*conditions, _matches(table, search)).cte("matches")
        )
        if self.dialect == "postgresql":
            matches = matches.prefix_with("MATERIALIZED")
        query = select(*matches.c).order_by(*_order(matches.c, *sorting))
        return conn.execute(query.limit(limit + 1).offset(offset)).all()

    @staticmethod
    def _tags_of(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
        if not ids:
            return {}
        tags: dict[str, list[str]] = {}
        query = (
            select(ExperimentTag.experiment_id, ExperimentTag.tag)
            .where(ExperimentTag.experiment_id.in_(ids))
            .order_by(ExperimentTag.experiment_id, ExperimentTag.tag)
        )
        for exp_id, tag in conn.execute(query):
            tags.setdefault(exp_id, []).append(tag)
        return tags

    @staticmethod
    def _encode_cursor(
        value: Any, last_id: str, sort: str, descending: bool, *, backward: bool = False
    ) -> str:
        if isinstance(value, datetime):
            value = value.isoformat()
        fields = [sort, descending, str(value), last_id] + (["before"] if backward else [])
        raw = json.dumps(fields).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str, sort: str, descending: bool) -> tuple[Any, str, bool]:
        """(sort value, id, backward): a cursor from `prev_cursor` ends in "before"."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            c_sort, c_desc, value, last_id, *direction = json.loads(
                base64.urlsafe_b64decode(padded)
            )
        except (ValueError, TypeError) as exc:
            raise ValueError("malformed pagination cursor") from exc
        if direction not in ([], ["before"]):
            raise ValueError("malformed pagination cursor")
        backward = bool(direction)
        # Both are bound into SQL: anything but the strings _encode_cursor wrote (a dict, an
        # integer past 64 bits) would fail there, as a server error instead of a bad cursor.
        if not isinstance(value, str) or not isinstance(last_id, str):
            raise ValueError("malformed pagination cursor")
        if c_sort != sort or c_desc != descending:
            raise ValueError("the cursor belongs to a different sort order")
        if sort == "created_at":
            try:
                return datetime.fromisoformat(value), last_id, backward
            except ValueError:
                raise ValueError("malformed pagination cursor") from None
        return value, last_id, backward

    def delete(self, experiment_id: str) -> None:
        """Remove the experiment, everything it recorded and its artifact folder."""
        with self._write() as session:
            result = session.execute(delete(Experiment).where(Experiment.id == experiment_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ExperimentNotFoundError(experiment_id)
        shutil.rmtree(self.artifact_dir(experiment_id), ignore_errors=True)

    def artifact_dir(self, experiment_id: str) -> Path:
        if not experiment_id or "/" in experiment_id or experiment_id in (".", ".."):
            raise ValueError(f"bad experiment id {experiment_id!r}")
        return self.artifact_root / experiment_id

    # -- state changes --------------------------------------------------------------------
    def transition(
        self,
        experiment_id: str,
        target: str | ExperimentStatus,
        *,
        expected: str | ExperimentStatus | None = None,
        worker: str | None = None,
        error: str | None = None,
        traceback: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> ExperimentRecord:
        """Move to `target` if that is legal from the current state (and, when given, only
        from `expected` / only if `worker` holds it). Raises `InvalidTransitionError`."""
        target = ExperimentStatus(target)
        for _ in range(5):  # re-read on a lost race; a real conflict raises below
            current = self.get(experiment_id)
            if expected is not None and current.status != ExperimentStatus(expected):
                raise InvalidTransitionError(
                    experiment_id, current.status, target, f"expected it to be {expected}"
                )
            if target not in ALLOWED_TRANSITIONS[current.status]:
                raise InvalidTransitionError(experiment_id, current.status, target)
            if worker is not None and current.worker not in (None, worker):
                raise InvalidTransitionError(
                    experiment_id, current.status, target, f"held by worker {current.worker}"
                )
            values = self._values_for(target, current, worker, error, traceback, summary)
            conditions = [Experiment.id == experiment_id, Experiment.status == current.status]
            if worker is not None and current.worker is not None:
                conditions.append(Experiment.worker == worker)
            with self._write() as session:
                result = session.execute(update(Experiment).where(*conditions).values(**values))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return self.get(experiment_id)
        raise StoreError(
            f"experiment {experiment_id} keeps changing; transition to {target} gave up"
        )

    @staticmethod
    def _values_for(
        target: ExperimentStatus,
        current: ExperimentRecord,
        worker: str | None,
        error: str | None,
        traceback: str | None,
        summary: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        now = _now()
        values: dict[str, Any] = {"status": target.value, "updated_at": now}
        if target is S.running:
            values.update(
                started_at=now,
                heartbeat_at=now,
                worker=worker,
                attempts=Experiment.attempts + 1,
                error=None,
                traceback=None,
            )
        elif target is S.queued:
            values.update(worker=None, heartbeat_at=None)
        if target in TERMINAL:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error
        if traceback is not None:
            values["traceback"] = traceback
        if summary is not None:
            values["summary"] = dict(summary)
        return values

    def claim(self, experiment_id: str, worker: str) -> ExperimentRecord | None:
        """queued -> running for `worker`; None when someone else got it first (or it is
        not queued). One conditional UPDATE, so exactly one concurrent claimer wins."""
        now = _now()
        with self._write() as session:
            result = session.execute(
                update(Experiment)
                .where(Experiment.id == experiment_id, Experiment.status == S.queued.value)
                .values(
                    status=S.running.value,
                    worker=worker,
                    started_at=now,
                    heartbeat_at=now,
                    updated_at=now,
                    attempts=Experiment.attempts + 1,
                    error=None,
                    traceback=None,
                )
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return self.get(experiment_id)

    def request_cancel(self, experiment_id: str) -> ExperimentRecord:
        """queued/lost -> cancelled at once; running -> cancelling (the worker stops it)."""
        for _ in range(5):
            current = self.get(experiment_id)
            if current.status is S.cancelling:
                return current
            if current.status in TERMINAL:
                raise InvalidTransitionError(
                    experiment_id, current.status, S.cancelled, "it already finished"
                )
            target = S.cancelling if current.status is S.running else S.cancelled
            try:
                return self.transition(experiment_id, target, expected=current.status)
            except InvalidTransitionError:
                continue  # it moved underneath us; look again
        raise StoreError(f"experiment {experiment_id} keeps changing; cancel gave up")

    def heartbeat(self, experiment_id: str, worker: str) -> ExperimentStatus:
        """Record that `worker` is alive on this run; returns the current status, so the
        worker learns about a cancel (`cancelling`) or that it lost the job."""
        now = _now()
        with self._write() as session:
            session.execute(
                update(Experiment)
                .where(
                    Experiment.id == experiment_id,
                    Experiment.worker == worker,
                    Experiment.status.in_([s.value for s in ACTIVE]),
                )
                .values(heartbeat_at=now)
            )
            status = session.scalar(select(Experiment.status).where(Experiment.id == experiment_id))
        if status is None:
            raise ExperimentNotFoundError(experiment_id)
        return ExperimentStatus(status)

    def reap_lost(self, silent_for: timedelta) -> list[str]:
        """Runs whose worker stopped heart-beating for `silent_for`: see `recover`."""
        cutoff = _now() - silent_for
        with self._read() as session:
            stale = list(
                session.scalars(
                    select(Experiment.id).where(
                        Experiment.status.in_([s.value for s in ACTIVE]),
                        Experiment.heartbeat_at < cutoff,
                    )
                )
            )
        return [
            exp_id for exp_id in stale if self.recover(exp_id, heartbeat_before=cutoff) is not None
        ]

    def recover(
        self,
        experiment_id: str,
        *,
        worker: str | None = None,
        heartbeat_before: datetime | None = None,
        reason: str | None = None,
    ) -> ExperimentRecord | None:
        """A run whose worker is gone: mark it `lost`, then re-queue it while attempts remain
        (else `failed`; `cancelled` if a cancel was in flight). Only acts while the run is
        still active (and still held by `worker` / still silent since `heartbeat_before`),
        so a concurrent finish wins. Returns the new record, or None if it did not apply."""
        before = self.get(experiment_id)
        if before.status not in ACTIVE:
            return None
        # Conditional on the status we read, so running -> cancelling meanwhile is not missed.
        conditions = [Experiment.id == experiment_id, Experiment.status == before.status.value]
        if worker is not None:
            conditions.append(Experiment.worker == worker)
        if heartbeat_before is not None:
            conditions.append(Experiment.heartbeat_at < heartbeat_before)
        with self._write() as session:
            result = session.execute(
                update(Experiment).where(*conditions).values(status=S.lost.value, updated_at=_now())
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        record = self.get(experiment_id)
        message = reason or f"worker {record.worker} stopped heart-beating"
        if before.status is S.cancelling:
            return self.transition(experiment_id, S.cancelled, expected=S.lost, error=message)
        if record.attempts < record.max_attempts:
            return self.transition(experiment_id, S.queued, expected=S.lost, error=message)
        return self.transition(experiment_id, S.failed, expected=S.lost, error=message)

    # -- metrics, logs, events, artifacts -------------------------------------------------
    def append_metrics(self, experiment_id: str, points: Sequence[MetricValue]) -> int:
        """Upsert metric points; the same (name, step) again replaces, never duplicates."""
        now = _now()
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

    def append_logs(
        self, experiment_id: str, lines: Sequence[tuple[str, str] | tuple[str, str, datetime]]
    ) -> None:
        """Append `(level, message)` or `(level, message, time)` lines in order."""
        now = _now()
        rows = [
            {
                "experiment_id": experiment_id,
                "level": line[0],
                "message": line[1],
                "time": line[2] if len(line) > 2 else now,
            }
            for line in lines
        ]
        if not rows:
            return
        with self._fk_guard(experiment_id), self._write() as session:
            session.connection().execute(insert(LogLine), rows)

    def logs(self, experiment_id: str, *, after_id: int = 0, limit: int = 1000) -> list[LogRecord]:
        query = (
            select(LogLine)
            .where(LogLine.experiment_id == experiment_id, LogLine.id > after_id)
            .order_by(LogLine.id)
            .limit(limit)
        )
        with self._read() as session:
            return [
                LogRecord(id=r.id, time=r.time, level=r.level, message=r.message)
                for r in session.scalars(query)
            ]

    def append_event(
        self, experiment_id: str, type: str, payload: Mapping[str, Any]
    ) -> EventRecord:
        return self.append_events(experiment_id, [(type, payload)])[0]

    def append_events(
        self, experiment_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[EventRecord]:
        """Persist events with the next seqs of this experiment, atomically: the counter bump
        locks the experiment's row, so seqs are gap-free and commit in seq order."""
        if not items:
            return []
        now = _now()
        with self._write() as session:
            last = session.scalar(
                update(Experiment)
                .where(Experiment.id == experiment_id)
                .values(last_event_seq=Experiment.last_event_seq + len(items))
                .returning(Experiment.last_event_seq)
            )
            if last is None:
                raise ExperimentNotFoundError(experiment_id)
            first = last - len(items) + 1
            records = [
                EventRecord(experiment_id, first + i, type_, json_safe(dict(payload)), now)
                for i, (type_, payload) in enumerate(items)
            ]
            session.connection().execute(
                insert(Event),
                [
                    {
                        "experiment_id": r.experiment_id,
                        "seq": r.seq,
                        "type": r.type,
                        "payload": r.payload,
                        "time": r.time,
                    }
                    for r in records
                ],
            )
        return records

    def events_after(
        self, experiment_id: str, after_seq: int = 0, *, limit: int = 1000
    ) -> list[EventRecord]:
        query = (
            select(Event)
            .where(Event.experiment_id == experiment_id, Event.seq > after_seq)
            .order_by(Event.seq)
            .limit(limit)
        )
        with self._read() as session:
            return [
                EventRecord(e.experiment_id, e.seq, e.type, dict(e.payload), e.time)
                for e in session.scalars(query)
            ]

    def add_artifact(self, experiment_id: str, path: str, size: int, kind: str) -> None:
        """Index a file under `artifact_dir(experiment_id)` (path relative to it)."""
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"artifact path {path!r} must be relative to the experiment folder")
        row = {
            "experiment_id": experiment_id,
            "path": path,
            "size": int(size),
            "kind": kind,
            "created_at": _now(),
        }
        with self._fk_guard(experiment_id), self._write() as session:
            stmt = self._insert(Artifact).values(row)
            stmt = stmt.on_conflict_do_update(
                index_elements=["experiment_id", "path"],
                set_={"size": stmt.excluded.size, "kind": stmt.excluded.kind},
            )
            session.execute(stmt)

    def artifacts(self, experiment_id: str) -> list[ArtifactRecord]:
        query = (
            select(Artifact).where(Artifact.experiment_id == experiment_id).order_by(Artifact.path)
        )
        with self._read() as session:
            return [
                ArtifactRecord(path=a.path, size=a.size, kind=a.kind, created_at=a.created_at)
                for a in session.scalars(query)
            ]

    @contextmanager
    def _fk_guard(self, experiment_id: str) -> Iterator[None]:
        # Turn "foreign key failed" into the error a caller can act on.
        try:
            yield
        except IntegrityError:
            if not self._exists(experiment_id):
                raise ExperimentNotFoundError(experiment_id) from None
            raise
