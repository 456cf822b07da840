"""Creating, deleting, listing and searching experiments, with keyset pagination cursors."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable, Select

from azuraforge_platform.store.base import EXPERIMENT_COLUMNS, StoreBase, tags_of, utc_now
from azuraforge_platform.store.records import (
    ExperimentNotFoundError,
    ExperimentRecord,
    Page,
    StoreError,
    experiment_record,
)
from azuraforge_platform.store.tables import (
    Experiment,
    ExperimentStatus,
    ExperimentTag,
    json_safe,
)

__all__ = ["SORT_FIELDS", "ExperimentsMixin"]

SORT_FIELDS = ("created_at", "name", "pipeline_id", "status")


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


def _encode_cursor(
    value: Any, last_id: str, sort: str, descending: bool, *, backward: bool = False
) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    fields = [sort, descending, str(value), last_id] + (["before"] if backward else [])
    raw = json.dumps(fields).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, descending: bool) -> tuple[Any, str, bool]:
    """(sort value, id, backward): a cursor from `prev_cursor` ends in "before"."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        c_sort, c_desc, value, last_id, *direction = json.loads(base64.urlsafe_b64decode(padded))
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


class _ExplainJson(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <select>` on PostgreSQL, binds and all: the planner's estimate
    of how many rows a query returns, without running it."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_ExplainJson, "postgresql")
def _compile_explain_json(element: _ExplainJson, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


class ExperimentsMixin(StoreBase):
    """The experiments themselves (`get` is in `StoreBase`: every part reads through it)."""

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
        coordinator: bool = False,
    ) -> ExperimentRecord:
        """A new experiment in state `queued`, owned by the username `owner`."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        exp_id = experiment_id or uuid.uuid4().hex
        now = created_at or utc_now()
        row = Experiment(
            id=exp_id,
            name=name or f"{pipeline_id}-{exp_id[:8]}",
            pipeline_id=pipeline_id,
            pipeline_version=pipeline_version,
            config=json_safe(dict(config)),
            status=ExperimentStatus.queued.value,
            created_at=now,
            updated_at=now,
            attempts=0,
            max_attempts=max_attempts,
            parent_id=parent_id,
            last_event_seq=0,
            owner=owner,
            coordinator=coordinator,
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
        coordinator: bool | None = None,
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
        if coordinator is not None:
            conditions.append(Experiment.coordinator.is_(coordinator))
        sort_col: Any = getattr(Experiment, sort)
        page_conditions = list(conditions)
        backward = False  # a page before the cursor (from `prev_cursor`)
        if cursor is not None:
            value, last_id, backward = _decode_cursor(cursor, sort, descending)
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
            tags_by_id = tags_of(conn, [r.id for r in page_rows])
            items = [experiment_record(r, tags_by_id.get(r.id, [])) for r in page_rows]
        more_before = len(rows) > limit if backward else bool(cursor or offset)
        more_after = True if backward else len(rows) > limit
        next_cursor = prev_cursor = None
        if items and more_after:
            last = items[-1]
            next_cursor = _encode_cursor(getattr(last, sort), last.id, sort, descending)
        if items and more_before:
            first = items[0]
            prev_cursor = _encode_cursor(
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
        query = select(*EXPERIMENT_COLUMNS).where(*conditions).order_by(*order)
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
            counted = conn.scalar(select(func.count()).select_from(matching.subquery()))
            return int(counted or 0), True
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
            select(*EXPERIMENT_COLUMNS)
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
            select(*EXPERIMENT_COLUMNS).where(*conditions, _matches(table, search)).cte("matches")
        )
        if self.dialect == "postgresql":
            matches = matches.prefix_with("MATERIALIZED")
        query = select(*matches.c).order_by(*_order(matches.c, *sorting))
        return conn.execute(query.limit(limit + 1).offset(offset)).all()

    def children(
        self, experiment_id: str, *, statuses: Iterable[ExperimentStatus] | None = None
    ) -> list[ExperimentRecord]:
        """The runs a coordinator started (its children that are not coordinators: a re-run
        of a study names the study as parent too), oldest first."""
        conditions = [Experiment.parent_id == experiment_id, Experiment.coordinator.is_(False)]
        if statuses is not None:
            conditions.append(Experiment.status.in_([s.value for s in statuses]))
        query = select(*EXPERIMENT_COLUMNS).where(*conditions)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(Experiment.created_at, Experiment.id)).all()
            tags_by_id = tags_of(conn, [r.id for r in rows])
        return [experiment_record(r, tags_by_id.get(r.id, [])) for r in rows]

    def add_tags(self, experiment_id: str, tags: Sequence[str]) -> None:
        """Tag an experiment (tags it has already are kept once)."""
        with self._write() as session:
            row = session.get(Experiment, experiment_id)
            if row is None:
                raise ExperimentNotFoundError(experiment_id)
            have = {t.tag for t in row.tags}
            row.tags.extend(ExperimentTag(tag=t) for t in sorted(set(tags) - have))
            row.updated_at = utc_now()

    def delete(self, experiment_id: str) -> None:
        """Remove the experiment, everything it recorded and its artifact folder (and with a
        bucket its keys: first, so a failed deletion can be tried again)."""
        if self.bucket is not None:
            if not self._exists(experiment_id):
                raise ExperimentNotFoundError(experiment_id)
            self.bucket.delete_experiment(experiment_id)
            self.bucket.drop_cache(experiment_id)
        with self._write() as session:
            result = session.execute(delete(Experiment).where(Experiment.id == experiment_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ExperimentNotFoundError(experiment_id)
        shutil.rmtree(self.artifact_dir(experiment_id), ignore_errors=True)
