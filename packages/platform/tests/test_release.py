"""The CI/CD files run what this repository has: make targets that exist, the services and
variables the tests read, the Dockerfiles the images come from; and one version for every
package. (Their syntax is checked against GitHub's workflow schema by `make lint`.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
VERSION_TOOL = ROOT / ".ci" / "version.py"


def workflow(name: str) -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_-]+):", text, flags=re.MULTILINE))


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in steps(job))


def uses(job: dict[str, Any]) -> list[str]:
    return [str(step["uses"]) for step in steps(job) if "uses" in step]


def test_ci_runs_every_check_on_pushes_and_pull_requests() -> None:
    ci = workflow("ci.yml")
    assert "main" in ci["on"]["push"]["branches"] and "pull_request" in ci["on"]
    assert ci["env"]["CI"] == "true"  # missing services fail, never skip
    jobs = ci["jobs"]
    assert {"lint", "typecheck", "test", "dashboard", "e2e", "wheels", "images"} <= jobs.keys()
    wanted = {
        "lint": "make lint",
        "typecheck": "make typecheck",
        "test": "make test-python",
        "dashboard": "make test-dashboard",
        "e2e": "make test-e2e",
        "wheels": "uv build --all-packages",
    }
    for job, command in wanted.items():
        assert command in runs(jobs[job]), job
    targets = make_targets()
    for name in ("ci.yml", "release.yml"):
        for job_name, job in workflow(name)["jobs"].items():
            for target in re.findall(r"\bmake ([A-Za-z0-9_-]+)", runs(job)):
                assert target in targets, f"{name} {job_name}: no make target {target}"
            for action in uses(job):  # a moving major version, never a branch but the
                # PyPI publisher's documented release/v1
                assert re.search(r"@(v\d+|release/v1)$", action), f"{name} {job_name}: {action}"
    # `make lint`, which .ci/run runs, validates the workflows and the version
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "check-jsonschema --builtin-schema vendor.github-workflows" in lint
    assert ".ci/version.py check" in lint


def test_integration_tests_get_the_services_and_variables_conftest_reads() -> None:
    job = workflow("ci.yml")["jobs"]["test"]
    services = job["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["postgres"]["env"]["POSTGRES_DB"] == "test"
    assert services["redis"]["image"].startswith("redis:")
    assert "5432:5432" in services["postgres"]["ports"]
    assert "6379:6379" in services["redis"]["ports"]
    conftest = (ROOT / "packages" / "platform" / "tests" / "conftest.py").read_text()
    read = set(re.findall(r'os\.environ\.get\(\s*"(AZURAFORGE_TEST_[A-Z_]+)"', conftest))
    assert read == {"AZURAFORGE_TEST_POSTGRES_URL", "AZURAFORGE_TEST_REDIS_URL"}
    assert read <= job["env"].keys()
    assert job["env"]["AZURAFORGE_TEST_POSTGRES_URL"].endswith(":5432/test")
    assert job["env"]["AZURAFORGE_TEST_REDIS_URL"].startswith("redis://127.0.0.1:6379")


def test_browser_tests_run_on_debian_where_make_installs_chromium() -> None:
    job = workflow("ci.yml")["jobs"]["e2e"]
    assert re.match(r"(python:3\.\d+-)?(bookworm|trixie)$|debian:", job["container"])
    makefile = (ROOT / "Makefile").read_text()
    assert "apt-get install -y -qq chromium" in makefile


def test_a_version_tag_publishes_wheels_and_images() -> None:
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    jobs = release["jobs"]
    assert '.ci/version.py check --tag "$GITHUB_REF_NAME"' in runs(jobs["verify"])
    assert "uv build --all-packages" in runs(jobs["wheels"])
    pypi = jobs["pypi"]
    assert pypi["permissions"] == {"id-token": "write"}  # trusted publishing, no stored token
    assert any(a.startswith("pypa/gh-action-pypi-publish@") for a in uses(pypi))
    images = jobs["images"]
    assert images["permissions"]["packages"] == "write"
    push = next(s for s in steps(images) if str(s.get("uses", "")).startswith("docker/build-push"))
    assert push["with"]["push"] is True
    assert "ghcr.io" in runs(images)
    assert "version.py notes" in runs(jobs["github-release"])


def test_the_images_are_built_from_a_dockerfile_that_has_their_stages() -> None:
    for name in ("ci.yml", "release.yml"):
        images = workflow(name)["jobs"]["images"]
        build = next(s for s in steps(images) if str(s.get("uses", "")).startswith("docker/build"))
        assert build["with"]["target"] == "${{ matrix.image }}"
        dockerfile = ROOT / build["with"]["file"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile.read_text(), re.M | re.I))
        for image in images["strategy"]["matrix"]["image"]:
            assert image in stages, f"{name}: {dockerfile} has no stage {image}"
        # the API image serves the built dashboard, copied from dashboard/dist
        assert "npm run build" in runs(images), name


# -- one version ----------------------------------------------------------------------------


def version_tool(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERSION_TOOL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_package_carries_one_version() -> None:
    import azuraforge_platform

    checked = version_tool(ROOT, "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == azuraforge_platform.__version__


def test_the_version_check_notices_a_package_that_disagrees(tmp_path: Path) -> None:
    for path in [
        ROOT / "pyproject.toml",
        ROOT / "CHANGELOG.md",
        *ROOT.glob("packages/*/pyproject.toml"),
        *ROOT.glob("apps/*/pyproject.toml"),
        *ROOT.glob("packages/*/src/*/__init__.py"),
    ]:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    version = version_tool(tmp_path, "check").stdout.strip()
    learner = tmp_path / "packages" / "learner" / "pyproject.toml"
    learner.write_text(learner.read_text().replace(f'version = "{version}"', 'version = "9.9.9"'))
    disagreeing = version_tool(tmp_path, "check")
    assert disagreeing.returncode != 0
    assert "packages/learner/pyproject.toml: 9.9.9" in disagreeing.stderr

    assert version_tool(tmp_path, "set", "9.9.9").returncode == 0
    undocumented = version_tool(tmp_path, "check")
    assert "CHANGELOG.md has no section '## [9.9.9]'" in undocumented.stderr
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(changelog.read_text() + "\n## [9.9.9] - Unreleased\n\n- more\n")
    assert version_tool(tmp_path, "check").stdout.strip() == "9.9.9"
    # a release tag needs its own version, on a dated section
    assert "does not name" in version_tool(tmp_path, "check", "--tag", "v9.9.8").stderr
    assert "no release date" in version_tool(tmp_path, "check", "--tag", "v9.9.9").stderr
    changelog.write_text(
        changelog.read_text().replace("[9.9.9] - Unreleased", "[9.9.9] - 2027-01-02")
    )
    assert version_tool(tmp_path, "check", "--tag", "v9.9.9").returncode == 0
    assert version_tool(tmp_path, "notes", "9.9.9").stdout.strip() == "- more"
    stated = [
        p.read_text()
        for p in tmp_path.glob("packages/*/src/*/__init__.py")
        if "__version__" in p.read_text()
    ]
    assert stated and all('__version__ = "9.9.9"' in text for text in stated)
    # `set` moved the pins between the packages along: a 9.9.9 wheel wants 9.9.9 siblings
    forecasting = (tmp_path / "packages" / "forecasting" / "pyproject.toml").read_text()
    assert '"azuraforge-learner==9.9.9"' in forecasting
    assert '"azuraforge-pipeline==9.9.9"' in forecasting


def test_the_version_check_notices_an_unpinned_sibling(tmp_path: Path) -> None:
    for path in [
        ROOT / "pyproject.toml",
        ROOT / "CHANGELOG.md",
        *ROOT.glob("packages/*/pyproject.toml"),
    ]:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    version = version_tool(tmp_path, "check").stdout.strip()
    assert version
    learner = tmp_path / "packages" / "learner" / "pyproject.toml"
    learner.write_text(
        learner.read_text().replace(f'"azuraforge-core=={version}"', '"azuraforge-core"')
    )
    unpinned = version_tool(tmp_path, "check")
    assert unpinned.returncode != 0
    assert f"must pin =={version}" in unpinned.stderr
    assert "packages/learner/pyproject.toml: azuraforge-core" in unpinned.stderr
    assert version_tool(tmp_path, "set", version).returncode == 0
    assert version_tool(tmp_path, "check").returncode == 0
