"""Paths a user names in a config (`csv_path`, `data_path`, ...): the `DataPath` field type and
the `PathPolicy` the platform validates them under.

A pipeline declares `csv_path: DataPath | None = Field(...)`. Validated with no policy (a
library user, a local script) the value is a plain string. The platform validates with a
policy in the validation context: relative values are taken from the policy's `base` folder,
and with `roots` set the path must resolve (symlinks followed) inside one of those folders, so
an API client can name its uploads and the configured data folders, never `/etc/shadow` or the
store's own database file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo, WithJsonSchema

__all__ = ["PATH_POLICY_KEY", "DataPath", "PathNotAllowedError", "PathPolicy", "check_path"]

# The validation-context key a `PathPolicy` travels under (`model_validate(..., context=...)`).
PATH_POLICY_KEY = "azuraforge_path_policy"


class PathNotAllowedError(ValueError):
    """A path outside the folders a client may name. The message never shows the resolved
    server path, only what the client gave."""


@dataclass(frozen=True)
class PathPolicy:
    """How client-given paths are checked.

    `base`: the folder relative paths are taken from (None: the working directory).
    `roots`: the folders a path must resolve inside (None: anywhere, for a trusted local user).
    `resolve`: validation returns the resolved absolute path (at run time) instead of the
    value as given (at submission, so stored configs and API answers keep the client's form).
    `guard`: a last check of the resolved path (the platform's: is this upload the caller's?),
    raising `PathNotAllowedError` to refuse it.
    """

    base: Path | None = None
    roots: tuple[Path, ...] | None = None
    resolve: bool = False
    guard: Callable[[Path], None] | None = None

    @classmethod
    def confined(
        cls, roots: Sequence[str | os.PathLike[str]], *, base: str | os.PathLike[str] | None
    ) -> PathPolicy:
        return cls(
            base=Path(base) if base is not None else None,
            roots=tuple(Path(r).resolve() for r in roots),
        )


def check_path(value: str, policy: PathPolicy) -> Path:
    """The absolute, symlink-resolved path `value` names under `policy`, or
    `PathNotAllowedError` when the policy's roots do not contain it."""
    if not value or "\x00" in value:
        raise PathNotAllowedError("must name a file or folder")
    path = Path(os.path.expanduser(value)) if policy.roots is None else Path(value)
    if not path.is_absolute() and policy.base is not None:
        path = policy.base / path
    resolved = path.resolve()  # follows symlinks, so a link cannot lead outside a root
    if policy.roots is not None and not any(
        resolved == root or resolved.is_relative_to(root) for root in policy.roots
    ):
        raise PathNotAllowedError(
            f"{value!r} is outside the folders this server reads from: upload the file and "
            "use the path the upload returns, or ask an admin to add a data root"
        )
    if policy.guard is not None:
        policy.guard(resolved)
    return resolved


def _validate(value: str, info: ValidationInfo) -> str:
    context: Any = info.context
    policy = context.get(PATH_POLICY_KEY) if isinstance(context, dict) else None
    if policy is None:
        return value
    resolved = check_path(value, policy)
    return str(resolved) if policy.resolve else value


# A string naming a file or folder on the machine that runs the pipeline. Its JSON Schema
# says `format: data-path`, so a form can offer an upload next to the text box.
DataPath = Annotated[
    str,
    AfterValidator(_validate),
    WithJsonSchema({"type": "string", "format": "data-path"}),
]
