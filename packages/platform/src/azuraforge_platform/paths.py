"""Which server paths a client may name, as `PathPolicy`s for the pipeline contract, and how
server paths are kept out of what clients see.

API clients name their uploads (`uploads/<id>.csv`, relative to the data folder) and files in
the configured `data_roots`; nothing else, so neither `/etc/shadow` nor the store's database
file is reachable. A run resolves the names it was given against the same data folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from azuraforge_pipeline import PathPolicy, check_path
from azuraforge_platform.settings import Settings

__all__ = [
    "client_path_policy",
    "client_roots",
    "redact_paths",
    "resolve_client_path",
    "run_path_policy",
]


def client_roots(settings: Settings) -> tuple[Path, ...]:
    return (settings.upload_dir, *(Path(r).resolve() for r in settings.data_roots))


def client_path_policy(
    settings: Settings, guard: Callable[[Path], None] | None = None
) -> PathPolicy:
    """At submission: a path must lie in the uploads folder or a data root (and pass `guard`,
    the API's check that an upload is the caller's); the config keeps the value as the client
    wrote it."""
    return PathPolicy(base=settings.data_dir.resolve(), roots=client_roots(settings), guard=guard)


def run_path_policy(settings: Settings) -> PathPolicy:
    """At run time: relative names resolve against the data folder (the submission was
    already checked; a local `azuraforge run` may name any file of its own user)."""
    return PathPolicy(base=settings.data_dir.resolve(), roots=None, resolve=True)


def resolve_client_path(settings: Settings, value: str) -> Path:
    """The file a client named, resolved, or `PathNotAllowedError` when it is out of reach."""
    return check_path(value, client_path_policy(settings))


# An absolute POSIX path of two or more parts, not inside a URL ("https://host/a/b") or a
# relative name ("uploads/a.csv", "~/x/y"); it ends at whitespace, quotes or punctuation.
_PART = r"[^\s/'\"`:,;()<>\[\]{}]+"
_ABSOLUTE = re.compile(rf"(?<![\w.:/~-])/(?:{_PART}/)+{_PART}/?")
_PACKAGES = ("/site-packages/", "/dist-packages/")


def _shorten(match: re.Match[str]) -> str:
    path = match.group(0)
    for marker in _PACKAGES:
        if marker in path:  # a traceback's module file: its import path says enough
            return path.rsplit(marker, 1)[1]
    return ".../" + "/".join(path.rstrip("/").split("/")[-2:])


def redact_paths(
    text: str, base: Path | None = None, shown: Mapping[str, str] | None = None
) -> str:
    """`text` (an error, a traceback) without absolute server paths, for clients: each path in
    `shown` becomes the name the caller knows it by ("the file of model 'x'"), paths in the
    data folder `base` what a config names (`uploads/<id>.csv`), installed modules their
    import path, anything else `.../folder/name`. The server log keeps the original."""
    names = sorted((shown or {}).items(), key=lambda item: len(item[0]), reverse=True)
    for index, (path, _) in enumerate(names):
        text = text.replace(path, f"\x00{index}\x00")
    if base is not None:
        text = text.replace(f"{base}/", "")
    text = _ABSOLUTE.sub(_shorten, text)
    for index, (_, name) in enumerate(names):
        text = text.replace(f"\x00{index}\x00", name)
    return text
