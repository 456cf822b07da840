"""A real plugin package, built and installed into this venv, found through its entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from azuraforge_pipeline import RecordingReporter, RunContext, applications, discover


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("the uv executable is needed to install the throw-away plugin")
    return uv


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    module = f"azf_testplugin_{tag}"
    dist = f"azf-testplugin-{tag}"
    good_id, broken_id = f"echo_{tag}", f"broken_{tag}"
    root = tmp_path_factory.mktemp("plugin")
    (root / "src" / module).mkdir(parents=True)
    (root / "README.md").write_text("test plugin\n")
    # No declared dependencies: azuraforge-pipeline is already in the venv, and the
    # install must not go looking for it on an index.
    (root / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [project]
        name = "{dist}"
        version = "0.0.1"
        requires-python = ">=3.11"

        [project.entry-points."azuraforge.pipelines"]
        {good_id} = "{module}.echo:Echo"
        {broken_id} = "{module}.broken:Broken"

        [build-system]
        requires = ["uv_build>=0.8,<0.14"]
        build-backend = "uv_build"
        """)
    )
    (root / "src" / module / "__init__.py").write_text("")
    (root / "src" / module / "echo.py").write_text(
        textwrap.dedent(f"""
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
        """)
    )
    (root / "src" / module / "broken.py").write_text("raise RuntimeError('plugin exploded')\n")
    uv = _uv()
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable, str(root)],
        check=True,
    )
    try:
        yield {"good": good_id, "broken": broken_id, "dist": dist}
    finally:
        subprocess.run(
            [uv, "pip", "uninstall", "--quiet", "--python", sys.executable, dist], check=False
        )


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
