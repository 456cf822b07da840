"""API tokens that `azuraforge login` stored, one per server, in a file only its owner can read.

`~/.config/azuraforge/credentials.json`: `{"servers": {"https://host": {"token", "username"}}}`.
The folder is 0700 and the file 0600, written to a temporary file and renamed, so a crash never
leaves half a file and no other user ever sees a token.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["credentials_file", "forget_token", "save_token", "stored_token"]


def credentials_file(config_dir: Path) -> Path:
    return config_dir / "credentials.json"


def _key(server: str) -> str:
    return server.rstrip("/").lower()


def _load(config_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(credentials_file(config_dir).read_text())
    except (OSError, ValueError):
        return {"servers": {}}
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        return {"servers": {}}
    return data


def stored_token(config_dir: Path, server: str) -> str | None:
    entry = _load(config_dir)["servers"].get(_key(server))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) and token else None


def _write(config_dir: Path, data: dict[str, Any]) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config_dir, 0o700)
    path = credentials_file(config_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return path


def save_token(config_dir: Path, server: str, token: str, username: str) -> Path:
    data = _load(config_dir)
    data["servers"][_key(server)] = {"token": token, "username": username}
    return _write(config_dir, data)


def forget_token(config_dir: Path, server: str) -> bool:
    data = _load(config_dir)
    if data["servers"].pop(_key(server), None) is None:
        return False
    _write(config_dir, data)
    return True
