"""Helpers for testing plugins as users install them: a real distribution, a real entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from azuraforge_pipeline.registry import ENTRY_POINT_GROUP

__all__ = ["find_uv", "installed_plugin"]


def find_uv() -> str:
    """The uv executable: `uv run` names it in UV (also when uv runs as `python -m uv`)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise RuntimeError("installing a plugin package needs uv: set UV or put uv on PATH")
    return uv


@contextmanager
def installed_plugin(
    root: Path,
    dist: str,
    sources: Mapping[str, str],
    entry_points: Mapping[str, str],
) -> Iterator[Path]:
    """Write a plugin distribution under `root` (`sources` maps paths under src/ to code;
    `entry_points` maps pipeline ids to "module:Class"), install it into this interpreter's
    environment with `uv pip install`, and uninstall it on exit. It declares no dependencies:
    azuraforge-pipeline is already installed, and the install must not look for it on an index."""
    for relative, code in sources.items():
        path = root / "src" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code))
    points = "\n".join(f'{pid} = "{target}"' for pid, target in entry_points.items())
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "0.0.1"\nrequires-python = ">=3.11"\n\n'
        f'[project.entry-points."{ENTRY_POINT_GROUP}"]\n{points}\n\n'
        '[build-system]\nrequires = ["uv_build>=0.8,<0.14"]\nbuild-backend = "uv_build"\n'
    )
    uv = find_uv()
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable, str(root)],
        check=True,
    )
    try:
        yield root
    finally:
        subprocess.run(
            [uv, "pip", "uninstall", "--quiet", "--python", sys.executable, dist], check=False
        )
