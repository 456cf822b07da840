"""Shape rules import-linter cannot express: only the Lifecycle changes a run's status."""

from __future__ import annotations

import re
from pathlib import Path

import azuraforge_platform

ROOT = Path(azuraforge_platform.__file__).parent
# the store's status-machine methods, and a hand-written status event
STATUS_WRITES = re.compile(
    r"store\.(transition|request_cancel|claim|recover|reap_lost)\(|emit\([^)]*[\"']status[\"']"
)


def test_only_the_lifecycle_writes_a_status() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("store/") or relative == "lifecycle.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if STATUS_WRITES.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == [], "status changes go through Lifecycle:\n" + "\n".join(offenders)


def test_the_rule_sees_a_status_write() -> None:
    assert STATUS_WRITES.search('events.emit(exp.id, "status", {"status": "failed"})')
    assert STATUS_WRITES.search("store.transition(exp_id, S.failed)")
    assert STATUS_WRITES.search("self._store.claim(exp_id, worker)")
    assert not STATUS_WRITES.search("lifecycle.finish(exp_id, S.failed)")
    assert not STATUS_WRITES.search("self.lifecycle.recover(exp_id, worker=w, reason=r)")
