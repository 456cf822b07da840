"""The applications catalog: the official apps (shipped as package data) merged with what is
installed, so a user sees both what they have and what they could install."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib.resources import files
from typing import Any

from azuraforge_pipeline.registry import PipelineRegistry

__all__ = ["Application", "CatalogEntry", "applications", "official_catalog"]


@dataclass(frozen=True)
class CatalogEntry:
    """One official application as listed in the shipped `catalog.json`."""

    id: str
    name: str
    description: str
    package: str
    category: str


@dataclass(frozen=True)
class Application:
    """A catalog row: official and/or installed."""

    id: str
    name: str
    description: str
    package: str | None
    category: str
    official: bool
    installed: bool
    version: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def official_catalog() -> list[CatalogEntry]:
    """The official apps, read from the JSON file shipped inside this package."""
    raw = json.loads(files("azuraforge_pipeline").joinpath("catalog.json").read_text("utf-8"))
    return [CatalogEntry(**entry) for entry in raw["applications"]]


def applications(registry: PipelineRegistry) -> list[Application]:
    """Official apps first (in catalog order) with their `installed` flag, then any other
    installed pipeline (third-party plugins) sorted by id."""
    rows: list[Application] = []
    official_ids = set()
    for entry in official_catalog():
        official_ids.add(entry.id)
        installed = entry.id in registry
        version = registry.get(entry.id).version if installed else None
        rows.append(
            Application(
                id=entry.id,
                name=entry.name,
                description=entry.description,
                package=entry.package,
                category=entry.category,
                official=True,
                installed=installed,
                version=version,
            )
        )
    for pipeline_id in registry.ids():
        if pipeline_id in official_ids:
            continue
        cls = registry.get(pipeline_id)
        rows.append(
            Application(
                id=pipeline_id,
                name=cls.name,
                description=cls.description,
                package=registry.distribution(pipeline_id),
                category="community",
                official=False,
                installed=True,
                version=cls.version,
            )
        )
    return rows
