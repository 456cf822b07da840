"""A real plugin package, built and installed into this venv, found through its entry point."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from azuraforge_pipeline import RecordingReporter, RunContext, applications, discover
from azuraforge_pipeline.testing import installed_plugin


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    module = f"azf_testplugin_{tag}"
    dist = f"azf-testplugin-{tag}"
    good_id, broken_id = f"echo_{tag}", f"broken_{tag}"
    echo = f"""
        from pydantic import Field
        from azuraforge_pipeline import Pipeline, PipelineConfig

        class Echo(Pipeline):
            id = "{good_id}"
            name = "Echo"
            description = "repeats a word"
            version = "0.0.1"

            class Config(PipelineConfig):
                word: str = Field("hi", description="what to say")
                times: int = Field(2, ge=1)

            def run(self, config, context):
                for i in range(config.times):
                    context.log(config.word)
                    context.log_metrics({{"i": i}}, step=i)
                return {{"said": config.word * config.times}}
        """
    sources = {
        f"{module}/__init__.py": "",
        f"{module}/echo.py": echo,
        f"{module}/broken.py": "raise RuntimeError('plugin exploded')\n",
    }
    entry_points = {good_id: f"{module}.echo:Echo", broken_id: f"{module}.broken:Broken"}
    with installed_plugin(tmp_path_factory.mktemp("plugin"), dist, sources, entry_points):
        yield {"good": good_id, "broken": broken_id, "dist": dist}


def test_installed_plugin_is_discovered_and_runs(plugin: dict[str, str], tmp_path: Path) -> None:
    registry = discover()
    assert plugin["good"] in registry.ids()
    cls = registry.get(plugin["good"])
    assert registry.distribution(plugin["good"]) == plugin["dist"]
    config = cls.validate_config({"word": "yo", "times": 3})
    reporter = RecordingReporter()
    result = cls().run(config, RunContext(artifact_dir=tmp_path, reporter=reporter))
    assert result == {"said": "yoyoyo"}
    assert reporter.logs == [("info", "yo")] * 3
    rows = {row.id: row for row in applications(registry)}
    assert rows[plugin["good"]].installed and rows[plugin["good"]].category == "community"


def test_broken_plugin_is_reported_and_skipped(plugin: dict[str, str]) -> None:
    registry = discover()
    assert plugin["broken"] not in registry.ids()
    errors = {e.name: e for e in registry.errors}
    assert plugin["broken"] in errors
    assert "RuntimeError: plugin exploded" in errors[plugin["broken"]].error
    assert errors[plugin["broken"]].distribution == plugin["dist"]
    # the good plugin of the same distribution still loads
    assert plugin["good"] in registry.ids()


def test_discover_only_imports_the_named_pipelines(plugin: dict[str, str]) -> None:
    registry = discover(only=[plugin["good"]])
    assert registry.ids() == [plugin["good"]]
    assert registry.errors == []  # the broken plugin was never imported
    assert discover(only=[plugin["broken"]]).errors[0].name == plugin["broken"]
    assert len(discover(only=["no_such_id"])) == 0
