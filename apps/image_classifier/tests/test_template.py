"""The plugin template: copied, renamed and installed, it is discovered and runs with no
change to the platform; uninstalled, it is gone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from azuraforge_pipeline import discover
from azuraforge_pipeline.testing import find_uv

TEMPLATE = Path(__file__).resolve().parents[2] / "_template"


def _uv() -> str:
    try:
        return find_uv()
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _copy_renamed(dest: Path, pipeline_id: str) -> tuple[Path, str]:
    """The template with every placeholder replaced, as a user following the guide would."""
    import_name = f"azuraforge_app_{pipeline_id}"
    dist = import_name.replace("_", "-")
    shutil.copytree(
        TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    )
    (dest / "src" / "azuraforge_app_my_pipeline").rename(dest / "src" / import_name)
    replacements = [
        ("azuraforge_app_my_pipeline", import_name),
        ("azuraforge-app-my-pipeline", dist),
        ("my_pipeline", pipeline_id),
        ("MyPipeline", "EchoPipeline"),
        ("My Pipeline", "Echo Pipeline"),
    ]
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".toml", ".md"}:
            text = path.read_text()
            for old, new in replacements:
                text = text.replace(old, new)
            path.write_text(text)
    return dest, dist


_PROBE = """
import json, sys, tempfile
from azuraforge_pipeline import RecordingReporter, RunContext, applications, discover
registry = discover()
pid = sys.argv[1]
out = {"ids": registry.ids(), "errors": [e.name for e in registry.errors if e.name == pid]}
if pid in registry:
    cls = registry.get(pid)
    reporter = RecordingReporter()
    context = RunContext(artifact_dir=tempfile.mkdtemp(), reporter=reporter, seed=0)
    result = cls().run(cls.validate_config({"epochs": 15}), context)
    out.update(
        name=cls.name, distribution=registry.distribution(pid), result=result,
        epochs=len(reporter.metric_points),
        catalog=[a.to_dict() for a in applications(registry) if a.id == pid],
    )
print(json.dumps(out))
"""


def _probe(pipeline_id: str) -> dict:
    # A fresh interpreter: what a platform process started after the install would see.
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, pipeline_id], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_template_copy_installs_is_discovered_and_runs(tmp_path: Path) -> None:
    uv = _uv()
    pipeline_id = f"echo_{uuid.uuid4().hex[:8]}"
    project, dist = _copy_renamed(tmp_path / "my-plugin", pipeline_id)
    assert "my_pipeline" not in (project / "pyproject.toml").read_text()
    assert pipeline_id not in discover()

    install = subprocess.run(
        [uv, "pip", "install", "--python", sys.executable, str(project)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert install.returncode == 0, install.stderr
        after = _probe(pipeline_id)
        assert after["errors"] == []
        assert pipeline_id in after["ids"]
        assert after["name"] == "Echo Pipeline" and after["distribution"] == dist
        assert after["epochs"] == 15
        result = after["result"]
        assert result["val_mse"] < 0.1 * result["baseline_mean_mse"]
        (row,) = after["catalog"]
        assert row["installed"] and not row["official"] and row["category"] == "community"
    finally:
        subprocess.run(
            [uv, "pip", "uninstall", "--python", sys.executable, dist],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert pipeline_id not in discover()  # entry points are re-read on every discover()


def test_template_is_not_a_workspace_member() -> None:
    root = TEMPLATE.parents[1] / "pyproject.toml"
    assert 'exclude = ["apps/_template"]' in root.read_text()
