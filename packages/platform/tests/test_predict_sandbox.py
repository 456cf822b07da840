"""The prediction sandbox's own rules, without a server: the concurrency cap and what its
error messages may show."""

from __future__ import annotations

import anyio
import pytest

from azuraforge_platform.execution.predict import PredictionFailedError, PredictionSandbox
from azuraforge_platform.paths import redact_paths


def test_a_request_that_finds_no_free_slot_in_time_is_busy() -> None:
    sandbox = PredictionSandbox(timeout_seconds=0.2, memory_mb=64, max_concurrent=1)

    async def scenario() -> PredictionFailedError:
        async with sandbox._slots:  # the one slot is taken for longer than the limit
            with pytest.raises(PredictionFailedError) as failed:
                await sandbox.predict("any", "/nowhere/model.json", [1])
        return failed.value

    failure = anyio.run(scenario)
    assert failure.kind == "busy" and "every prediction slot (1) stayed busy" in failure.message
    assert sandbox.running == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PredictionSandbox(timeout_seconds=0, memory_mb=64, max_concurrent=1)
    with pytest.raises(ValueError):
        PredictionSandbox(timeout_seconds=1, memory_mb=64, max_concurrent=0)


def test_messages_show_names_the_caller_knows_and_no_other_server_path() -> None:
    shown = {"/srv/af/uploads/abc.csv": "upload 'abc.csv'", "/srv/af/artifacts/x/m.json": "M"}
    message = (
        "/srv/af/artifacts/x/m.json: cannot read /srv/af/uploads/abc.csv (see /etc/af.conf; "
        "'/home/u/.cache/x'); 0-255 / 28x28 at 2024/01/02, 1/2, http://example.org/a"
    )
    assert redact_paths(message, shown=shown) == (
        "M: cannot read upload 'abc.csv' (see .../etc/af.conf; '.../.cache/x'); 0-255 / 28x28 "
        "at 2024/01/02, 1/2, http://example.org/a"
    )
