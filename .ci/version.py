#!/usr/bin/env python3
"""The one version every AzuraForge package carries, and its CHANGELOG section.

    python .ci/version.py check                 # all agree, and CHANGELOG.md has the section
    python .ci/version.py check --tag v0.2.0    # ... and the tag names it, on a dated section
    python .ci/version.py set 0.2.0             # write it everywhere
    python .ci/version.py notes 0.2.0           # print its CHANGELOG section (release notes)

Where it lives: the `version` of the root pyproject.toml and of every workspace member
(packages/*, apps/* but the plugin template, which is a new plugin's own), the
`__version__` of the packages that have one, and the pins by which the members depend on
each other (`azuraforge-core==X.Y.Z`: a wheel of one release never installs beside a
sibling of another). Standard library only: it runs before anything
is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?$")
PYPROJECT_VERSION = re.compile(r'^version = "([^"]*)"', re.MULTILINE)
MODULE_VERSION = re.compile(r'^__version__ = "([^"]*)"', re.MULTILINE)
INTERNAL_PIN = re.compile(r'"(azuraforge-[a-z0-9-]+)(?:==[^"]*)?"')
SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>.+))?$", re.MULTILINE)


def pyprojects(root: Path) -> list[Path]:
    members = [
        *sorted(root.glob("packages/*/pyproject.toml")),
        *sorted(root.glob("apps/*/pyproject.toml")),
    ]
    return [root / "pyproject.toml", *(p for p in members if p.parent.name != "_template")]


def modules(root: Path) -> list[Path]:
    found = []
    for init in sorted(root.glob("packages/*/src/*/__init__.py")):
        if MODULE_VERSION.search(init.read_text()):
            found.append(init)
    return found


def versions(root: Path) -> dict[str, str]:
    """Every place that states the version -> what it says."""
    stated = {}
    for path in pyprojects(root):
        stated[str(path.relative_to(root))] = tomllib.loads(path.read_text())["project"]["version"]
    for path in modules(root):
        match = MODULE_VERSION.search(path.read_text())
        assert match is not None
        stated[str(path.relative_to(root))] = match.group(1)
    return stated


def internal_dependencies(root: Path) -> dict[str, list[str]]:
    """Every member's dependencies on other AzuraForge packages, as written."""
    found = {}
    for path in pyprojects(root):
        deps = tomllib.loads(path.read_text())["project"].get("dependencies", [])
        found[str(path.relative_to(root))] = [d for d in deps if d.startswith("azuraforge-")]
    return found


def _pin_dependencies(text: str, version: str) -> str:
    """`text` (a pyproject) with its `dependencies = [...]` pins set to `version`."""
    head, sep, rest = text.partition("\ndependencies = [")
    if not sep:
        return text
    block, end, tail = rest.partition("]")
    return head + sep + INTERNAL_PIN.sub(rf'"\1=={version}"', block) + end + tail


def sections(root: Path) -> dict[str, tuple[str | None, str]]:
    """CHANGELOG.md: version -> (its date or None, its body)."""
    text = (root / "CHANGELOG.md").read_text()
    found = {}
    heads = list(SECTION.finditer(text))
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        body = text[head.end() : end]
        body = re.split(r"^\[[^\]]+\]: ", body, maxsplit=1, flags=re.MULTILINE)[0]
        found[head["version"]] = (head["date"], body.strip())
    return found


def check(root: Path, tag: str | None) -> str:
    stated = versions(root)
    distinct = sorted(set(stated.values()))
    if len(distinct) != 1:
        listing = "\n".join(f"  {path}: {v}" for path, v in sorted(stated.items()))
        raise SystemExit(f"the packages disagree about the version:\n{listing}\n"
                         "set one with: python .ci/version.py set X.Y.Z")  # fmt: skip
    version = distinct[0]
    if not SEMVER.match(version):
        raise SystemExit(f"version {version!r} is not X.Y.Z (or X.Y.ZaN, bN, rcN)")
    unpinned = [
        f"  {path}: {dep}"
        for path, deps in sorted(internal_dependencies(root).items())
        for dep in deps
        if not dep.endswith(f"=={version}")
    ]
    if unpinned:
        raise SystemExit(
            f"dependencies between the packages must pin =={version}:\n"
            + "\n".join(unpinned)
            + "\nwrite the pins with: python .ci/version.py set "
            + version
        )
    changelog = sections(root)
    if version not in changelog:
        raise SystemExit(f"CHANGELOG.md has no section '## [{version}]'")
    if tag is not None:
        if tag != f"v{version}":
            raise SystemExit(
                f"tag {tag} does not name the packages' version {version} (v{version})"
            )
        date = changelog[version][0]
        if date is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.strip()):
            raise SystemExit(
                f"CHANGELOG.md's section for {version} has no release date "
                f"('## [{version}] - YYYY-MM-DD'); date it before tagging"
            )
    return version


def set_version(root: Path, version: str) -> None:
    if not SEMVER.match(version):
        raise SystemExit(f"version {version!r} is not X.Y.Z (or X.Y.ZaN, bN, rcN)")
    for path in pyprojects(root):
        text, n = PYPROJECT_VERSION.subn(f'version = "{version}"', path.read_text(), count=1)
        if n != 1:
            raise SystemExit(f"{path}: no version line")
        path.write_text(_pin_dependencies(text, version))
    for path in modules(root):
        path.write_text(MODULE_VERSION.sub(f'__version__ = "{version}"', path.read_text(), count=1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the repository (default: this one)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="all agree, and CHANGELOG.md has the section")
    checking.add_argument("--tag", help="a release tag (vX.Y.Z) that must name the version")
    setting = commands.add_parser("set", help="write a version everywhere")
    setting.add_argument("version")
    noting = commands.add_parser("notes", help="print a version's CHANGELOG section")
    noting.add_argument("version")
    args = parser.parse_args(argv)
    if args.command == "check":
        print(check(args.root, args.tag))
    elif args.command == "set":
        set_version(args.root, args.version)
        print(f"version {args.version} written; run `uv lock` and add a CHANGELOG.md section")
    else:
        found = sections(args.root).get(args.version)
        if found is None:
            raise SystemExit(f"CHANGELOG.md has no section for {args.version}")
        print(found[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
