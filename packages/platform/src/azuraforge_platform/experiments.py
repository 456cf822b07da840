"""One interface to read and steer experiments, wherever they are.

`Experiments` is what a caller (the `azuraforge experiments` commands, a script) needs: list
with filters, get or resolve an id prefix, cancel, metrics, logs, artifacts and the event
stream. Two implementations answer it with the same record types, the API's public shapes:
`LocalExperiments` over this machine's store, and `AzuraForgeClient` over HTTP.

Errors differ by where the experiments are, as their causes do: locally the store's
(`ExperimentNotFoundError`, `InvalidTransitionError`) and `AmbiguousExperimentError`;
remotely the client's `ApiError` (404, 409, 400 `ambiguous_id`, ...).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from azuraforge_platform.api.downsample import Point, minmax_downsample
from azuraforge_platform.api.schemas import (
    ArtifactPublic,
    ExperimentList,
    ExperimentPublic,
    LogLinePublic,
    LogList,
    MetricSeries,
    MetricsPublic,
)
from azuraforge_platform.events import EventService, InProcessEventBus, make_bus
from azuraforge_platform.lifecycle import Lifecycle
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    ExperimentNotFoundError,
    ExperimentRecord,
    ExperimentStatus,
    ExperimentStore,
)

__all__ = [
    "AmbiguousExperimentError",
    "Experiments",
    "LocalExperiments",
    "find_experiment",
]

_FINAL = frozenset(
    s.value
    for s in (ExperimentStatus.succeeded, ExperimentStatus.failed, ExperimentStatus.cancelled)
)
MIN_PREFIX = 4  # shortest id prefix that is looked up (listings show 12 characters)


class Experiments(Protocol):
    """Experiments of one AzuraForge: the local store (`LocalExperiments`) or a server
    (`AzuraForgeClient`). Every method takes the full experiment id, except
    `resolve_experiment`, which turns a listing's shortened id into the experiment."""

    def list_experiments(
        self,
        *,
        pipeline_id: str | None = None,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] = (),
        search: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: str = "created_at",
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        with_total: bool = False,
    ) -> ExperimentList:
        """Filtered (`tags`: all of them; `search`: name contains or id starts with),
        sorted, one page; pass `next_cursor` back as `cursor` for the next."""
        ...

    def get_experiment(self, experiment_id: str) -> ExperimentPublic: ...

    def resolve_experiment(self, ref: str) -> ExperimentPublic:
        """By id, or by an id prefix of at least 4 characters that only one id starts with."""
        ...

    def cancel(self, experiment_id: str) -> ExperimentPublic:
        """A queued run is cancelled at once, a running one is asked to stop (`cancelling`)."""
        ...

    def metrics(
        self, experiment_id: str, names: Sequence[str] = (), *, max_points: int = 1000
    ) -> MetricsPublic:
        """Each metric's series (all, or only `names`), downsampled to at most `max_points`
        points keeping the extremes; `total_points` counts them all."""
        ...

    def logs(self, experiment_id: str, *, after_id: int = 0, limit: int = 1000) -> LogList:
        """Log lines with an id above `after_id`, oldest first."""
        ...

    def artifacts(self, experiment_id: str) -> list[ArtifactPublic]: ...

    def artifact_location(self, experiment_id: str) -> str:
        """Where the experiment's artifacts are, for a person: a folder or a URL."""
        ...

    def stream_events(
        self, experiment_id: str, *, after: int = 0
    ) -> Generator[dict[str, Any], None, None]:
        """Events with seq above `after` (stored ones, then live ones) as `EventRecord.to_dict`
        shapes, until the experiment has ended."""
        ...

    def close(self) -> None: ...


class AmbiguousExperimentError(ValueError):
    """An id prefix that more than one experiment's id starts with."""

    def __init__(self, ref: str, count: int) -> None:
        self.ref = ref
        self.count = count
        super().__init__(f"{ref!r} matches {count} experiments; give more of the id")


def find_experiment(store: ExperimentStore, ref: str) -> ExperimentRecord:
    """An experiment by id or by a unique id prefix (listings show shortened ids)."""
    try:
        return store.get(ref)
    except ExperimentNotFoundError:
        pass
    if len(ref) >= MIN_PREFIX:
        page = store.list_experiments(search=ref, limit=50)  # id starts with, or name contains
        matches = [e for e in page.items if e.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousExperimentError(ref, len(matches))
    raise ExperimentNotFoundError(ref)


class LocalExperiments:
    """`Experiments` over this machine's store (it closes the store on `close`). Status
    changes are stored and published on the configured event bus, as the API does."""

    def __init__(self, store: ExperimentStore, settings: Settings) -> None:
        self.store = store
        self._settings = settings
        self._looked = False

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> LocalExperiments:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _notice_lost_runs(self) -> None:
        """Whoever looks first notices runs whose process vanished (a closed terminal's
        foreground run, with no worker or executor around to reap it)."""
        if self._looked:
            return
        self._looked = True
        events = EventService(self.store, InProcessEventBus())  # stored; other processes poll
        Lifecycle(events).reap_lost(timedelta(seconds=self._settings.lost_after_seconds))

    def list_experiments(
        self,
        *,
        pipeline_id: str | None = None,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] = (),
        search: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: str = "created_at",
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        with_total: bool = False,
    ) -> ExperimentList:
        self._notice_lost_runs()
        page = self.store.list_experiments(
            pipeline_id=pipeline_id,
            status=status,
            tags=list(tags) or None,
            search=search,
            created_after=created_after,
            created_before=created_before,
            sort=sort,
            descending=descending,
            limit=limit,
            cursor=cursor,
            with_total=with_total,
        )
        # Full records as items (an ExperimentSummary each): locally the heartbeat is known
        return ExperimentList(
            items=[_public(r) for r in page.items],
            next_cursor=page.next_cursor,
            total=page.total,
            limit=limit,
        )

    def get_experiment(self, experiment_id: str) -> ExperimentPublic:
        self._notice_lost_runs()
        return _public(self.store.get(experiment_id))

    def resolve_experiment(self, ref: str) -> ExperimentPublic:
        self._notice_lost_runs()
        return _public(find_experiment(self.store, ref))

    def cancel(self, experiment_id: str) -> ExperimentPublic:
        bus = make_bus(self._settings.redis_url, prefix=self._settings.event_channel_prefix)
        try:
            updated = Lifecycle(EventService(self.store, bus)).cancel(experiment_id)
        finally:
            bus.close()
        return _public(updated)

    def metrics(
        self, experiment_id: str, names: Sequence[str] = (), *, max_points: int = 1000
    ) -> MetricsPublic:
        self.store.get(experiment_id)  # a missing experiment is an error, not "no metrics"
        grouped: dict[str, list[Point]] = {}
        for point in self.store.metrics(experiment_id, names=list(names) or None):
            grouped.setdefault(point.name, []).append((point.step, point.value, point.epoch))
        series = []
        for name, points in grouped.items():
            kept = minmax_downsample(points, max_points)
            series.append(
                MetricSeries(
                    name=name,
                    steps=[p[0] for p in kept],
                    values=[p[1] for p in kept],
                    epochs=[p[2] for p in kept],
                    total_points=len(points),
                    downsampled=len(kept) < len(points),
                )
            )
        return MetricsPublic(experiment_id=experiment_id, max_points=max_points, series=series)

    def logs(self, experiment_id: str, *, after_id: int = 0, limit: int = 1000) -> LogList:
        self.store.get(experiment_id)
        lines = self.store.logs(experiment_id, after_id=after_id, limit=limit)
        return LogList(
            items=[LogLinePublic.model_validate(line) for line in lines],
            next_after_id=lines[-1].id if lines else after_id,
        )

    def artifacts(self, experiment_id: str) -> list[ArtifactPublic]:
        folder, bucket = self.store.artifact_dir(experiment_id), self.store.bucket
        return [
            ArtifactPublic(
                path=a.path,
                size=a.size,
                kind=a.kind,
                created_at=a.created_at,
                url=(
                    bucket.url(experiment_id, a.path)
                    if bucket is not None
                    else (folder / a.path).as_uri()
                ),
            )
            for a in self.store.artifacts(experiment_id)
        ]

    def artifact_location(self, experiment_id: str) -> str:
        return self.store.artifact_location(experiment_id)

    def stream_events(
        self, experiment_id: str, *, after: int = 0
    ) -> Generator[dict[str, Any], None, None]:
        # The configured bus brings live events from workers in other processes; the store
        # is polled too, so events of an in-process (embedded) bus are not missed either.
        bus = make_bus(self._settings.redis_url, prefix=self._settings.event_channel_prefix)
        try:
            status = self.store.get(experiment_id).status.value
            events = EventService(self.store, bus)
            with events.stream(experiment_id, after, poll_interval=0.5) as stream:
                while True:
                    event = stream.get(timeout=1.0)
                    if event is None:
                        if (
                            status in _FINAL
                            and stream.last_seq >= self.store.get(experiment_id).last_event_seq
                        ):
                            return
                        continue
                    yield event.to_dict()
                    if event.type == "status":
                        status = str(event.payload.get("status"))
                        if status in _FINAL:
                            return
        finally:
            bus.close()


def _public(record: ExperimentRecord) -> ExperimentPublic:
    return ExperimentPublic.model_validate(record)
