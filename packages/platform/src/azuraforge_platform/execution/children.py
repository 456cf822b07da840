"""`StoreLauncher`: the platform's side of `RunContext.submit`. A child run is an ordinary
experiment with the submitting run as parent and the same owner, queued through the
`Lifecycle` like any other, so it shows up, streams, is cancelled and compared like any run.

A child's config is validated by its pipeline, with data paths kept as written: every value
a coordinator passes on came from its own config, which was checked under its submitter's path
policy when it was submitted (a study checks its fixed settings and each choice of its search
space against the target's config that way), and plugin code runs with the worker's rights
anyway, so a second, stricter check here would only refuse a local user's own files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azuraforge_pipeline import (
    ChildLauncher,
    ChildRunError,
    ChildState,
    ConfigError,
    PathPolicy,
    UnknownPipelineError,
    discover,
)
from azuraforge_platform.lifecycle import Dispatcher, Lifecycle, QueueUnavailableError
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentRecord, InvalidTransitionError

__all__ = ["StoreLauncher", "child_dispatcher"]

PRUNED_TAG = "pruned"


def child_dispatcher(settings: Settings) -> Dispatcher | None:
    """How a run hands its children to the workers: Celery where Redis is configured; else
    none is needed, since the embedded executor finds queued runs in the store by itself."""
    if not settings.redis_url:
        return None
    from azuraforge_platform.jobqueue import CeleryDispatcher, make_celery

    return CeleryDispatcher(make_celery(settings))


def _state(record: ExperimentRecord) -> ChildState:
    return ChildState(
        id=record.id,
        pipeline_id=record.pipeline_id,
        status=record.status.value,
        config=record.config,
        summary=record.summary,
        error=record.error,
        tags=tuple(record.tags),
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


class StoreLauncher(ChildLauncher):
    def __init__(self, lifecycle: Lifecycle, settings: Settings, parent: ExperimentRecord) -> None:
        self._lifecycle = lifecycle
        self._store = lifecycle.store
        self._settings = settings
        self._parent = parent

    def submit(
        self,
        pipeline_id: str,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
    ) -> str:
        found = discover(only=[pipeline_id])
        try:
            cls = found.get(pipeline_id)
        except UnknownPipelineError as exc:
            raise ChildRunError(str(exc)) from None
        try:
            keep_as_written = PathPolicy(base=self._settings.data_dir.resolve(), roots=None)
            clean = cls.validate_config(config, path_policy=keep_as_written)
        except ConfigError as exc:
            raise ChildRunError(str(exc)) from None
        try:
            record = self._lifecycle.submit(
                pipeline_id=pipeline_id,
                config=clean.model_dump(mode="json"),
                pipeline_version=cls.version,
                owner=self._parent.owner,
                max_attempts=self._settings.max_attempts,
                name=name,
                tags=tags,
                parent_id=self._parent.id,
                coordinator=cls.coordinator,
            )
        except QueueUnavailableError as exc:
            raise ChildRunError(f"the job queue is unavailable: {exc}") from None
        return record.id

    def state(self, child_id: str) -> ChildState:
        return _state(self._store.get(child_id))

    def children(self) -> list[ChildState]:
        return [_state(r) for r in self._store.children(self._parent.id)]

    def metric_history(self, child_id: str, name: str) -> list[tuple[int, float]]:
        points = self._store.metrics(child_id, [name])
        return [(p.step, p.value) for p in points if p.value is not None]

    def cancel(self, child_id: str, *, reason: str | None = None) -> None:
        if reason == PRUNED_TAG:
            self._store.add_tags(child_id, [PRUNED_TAG])
        try:
            self._lifecycle.cancel(child_id)
        except InvalidTransitionError:
            return  # it finished meanwhile
        if reason:
            self._store.append_logs(child_id, [("info", f"cancelled by its parent: {reason}")])
