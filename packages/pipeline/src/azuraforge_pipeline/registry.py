"""Discovery of installed pipelines through the `azuraforge.pipelines` entry-point group.

Built-in apps register exactly like third-party plugins: an entry point in their package's
metadata, e.g. `[project.entry-points."azuraforge.pipelines"] stock_predictor = "pkg.mod:Cls"`.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from azuraforge_pipeline.base import Pipeline

__all__ = [
    "ENTRY_POINT_GROUP",
    "PipelineRegistry",
    "PluginLoadError",
    "UnknownPipelineError",
    "discover",
]

ENTRY_POINT_GROUP = "azuraforge.pipelines"


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that could not be loaded: reported to the user, never fatal."""

    name: str
    target: str
    distribution: str | None
    error: str
    traceback: str


class UnknownPipelineError(LookupError):
    """No installed pipeline has this id; the message lists the known ones."""

    def __init__(self, pipeline_id: str, known: Iterable[str]) -> None:
        self.pipeline_id = pipeline_id
        self.known = sorted(known)
        listed = ", ".join(self.known) if self.known else "none installed"
        super().__init__(f"unknown pipeline {pipeline_id!r}; known pipelines: {listed}")

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class PipelineRegistry:
    """The installed pipelines by id, plus the plugins that failed to load."""

    def __init__(self) -> None:
        self._pipelines: dict[str, type[Pipeline]] = {}
        self._distributions: dict[str, str | None] = {}
        self.errors: list[PluginLoadError] = []

    @classmethod
    def from_entry_points(
        cls, group: str = ENTRY_POINT_GROUP, *, only: Iterable[str] | None = None
    ) -> PipelineRegistry:
        """Load every entry point of `group` (or just those named in `only`: a worker that
        runs one pipeline need not import them all); a broken one lands in `errors` and is
        skipped."""
        registry = cls()
        wanted = None if only is None else set(only)
        importlib.invalidate_caches()  # a plugin installed since start-up must be importable
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            if wanted is None or ep.name in wanted:
                registry._load(ep)
        return registry

    def _load(self, ep: EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        try:
            obj = ep.load()
            if not (isinstance(obj, type) and issubclass(obj, Pipeline)):
                raise TypeError(f"{ep.value} is not a subclass of azuraforge_pipeline.Pipeline")
            declared = getattr(obj, "id", None)
            if declared != ep.name:
                raise ValueError(
                    f"entry point {ep.name!r} points at a pipeline whose id is {declared!r}; "
                    "they must match"
                )
            if ep.name in self._pipelines:
                raise ValueError(
                    f"pipeline id {ep.name!r} is registered twice "
                    f"(also by {self._distributions[ep.name] or 'an unknown distribution'})"
                )
        except Exception as exc:  # any plugin bug must stay the plugin's problem
            self.errors.append(
                PluginLoadError(
                    name=ep.name,
                    target=ep.value,
                    distribution=dist,
                    error=f"{type(exc).__name__}: {exc}",
                    traceback=traceback.format_exc(),
                )
            )
            return
        self._pipelines[ep.name] = obj
        self._distributions[ep.name] = dist

    def register(self, pipeline: type[Pipeline]) -> type[Pipeline]:
        """Add a pipeline class by hand (tests, notebooks); usable as a decorator."""
        if not (isinstance(pipeline, type) and issubclass(pipeline, Pipeline)):
            raise TypeError(f"{pipeline!r} is not a subclass of azuraforge_pipeline.Pipeline")
        self._pipelines[pipeline.id] = pipeline
        self._distributions.setdefault(pipeline.id, None)
        return pipeline

    def get(self, pipeline_id: str) -> type[Pipeline]:
        try:
            return self._pipelines[pipeline_id]
        except KeyError:
            raise UnknownPipelineError(pipeline_id, self._pipelines) from None

    def distribution(self, pipeline_id: str) -> str | None:
        """The installed distribution that provides `pipeline_id` (None when unknown)."""
        self.get(pipeline_id)
        return self._distributions.get(pipeline_id)

    def ids(self) -> list[str]:
        return sorted(self._pipelines)

    def __contains__(self, pipeline_id: object) -> bool:
        return pipeline_id in self._pipelines

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self._pipelines)


def discover(
    group: str = ENTRY_POINT_GROUP, *, only: Iterable[str] | None = None
) -> PipelineRegistry:
    """A fresh registry of what is installed now (call again after installing a plugin);
    with `only`, of just those ids (the others are not imported)."""
    return PipelineRegistry.from_entry_points(group, only=only)
