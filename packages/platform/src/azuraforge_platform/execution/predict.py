"""Predictions in a sandbox: every `Pipeline.predict(model_path, inputs)` runs in a child
process of its own, under a wall-clock limit and a memory limit, so a hostile or unlucky input
costs one refused request and never the API process: not its memory, not a thread pinned
forever, and not the SQLite locks it holds (a file opened and closed in a child cannot drop
the parent's POSIX locks).

The child is forked from the platform's fork server, which has the plugins imported already
(`processes`), so a prediction starts in milliseconds. It sets its own limits (RLIMIT_AS, one
BLAS thread), dies with the fork server (PR_SET_PDEATHSIG) and with the API process (a thread
watches the parent's sentinel), and answers with JSON text only: the parent never unpickles
what a plugin produced. The parent kills it at the deadline, when the client goes away, and on
shutdown; no child outlives its request.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import anyio
import anyio.to_thread

from azuraforge_pipeline import PipelineRegistry, PredictionNotSupportedError, UnknownPipelineError
from azuraforge_platform.execution.processes import mp_context, warm_up
from azuraforge_platform.paths import redact_paths
from azuraforge_platform.settings import Settings
from azuraforge_platform.store.tables import json_safe

__all__ = ["MAX_RESULT_BYTES", "PredictionFailedError", "PredictionSandbox"]

log = logging.getLogger(__name__)

MAX_RESULT_BYTES = 32 * 1024 * 1024  # the JSON of one prediction's answer
_POLL_SECONDS = 0.5  # how often a waiting request looks whether its client is still there
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Exceptions a pipeline raises for inputs it cannot use (a 4xx, not a server error).
_INPUT_ERRORS = (ValueError, TypeError, LookupError, ArithmeticError)


class PredictionFailedError(Exception):
    """A prediction gave no predictions. `kind` says why: bad_inputs, not_supported,
    unknown_pipeline, timeout, out_of_memory, too_large, killed (by a signal), busy,
    client_gone, bad_output or error (a bug in the pipeline; `detail` has its traceback).
    `message` never shows a server path the caller did not name (see `redact_paths`)."""

    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail


# ------------------------------------------------------------------------------ the child
def _die_with_parents() -> None:
    """The child's parent is the fork server: PR_SET_PDEATHSIG kills the child when it dies.
    The fork server outlives the API while any child lives, so a thread also watches the
    API's sentinel (it reaches EOF when the API process is gone) and ends the child then."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # not glibc/musl: the sentinel thread still works
            pass
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        sentinel = parent.sentinel

        def watch() -> None:
            wait([sentinel])
            os._exit(3)

        threading.Thread(target=watch, name="azf-predict-parent", daemon=True).start()


def _limit_threads() -> None:
    # One prediction needs no BLAS thread pool; each pool thread would also reserve address
    # space (stacks, buffers, malloc arenas) out of the memory limit.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - it comes with the numeric plugins
        return
    threadpool_limits(limits=1)


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux
        return 0


def _limit_memory(extra_bytes: int) -> None:
    """RLIMIT_AS: what the pre-loaded process holds already plus `extra_bytes`. Past it an
    allocation fails (MemoryError in Python and numpy) instead of growing the machine's use."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _outcome(kind: str, message: str = "", detail: str = "") -> bytes:
    return json.dumps({"kind": kind, "message": message, "detail": detail}).encode()


def _predict(pipeline_id: str, model_path: str, inputs: Any) -> bytes:
    """One answer message: a JSON header line, then (when it worked) the predictions' JSON."""
    try:
        registry = PipelineRegistry.from_entry_points(only=[pipeline_id])
        pipeline = registry.get(pipeline_id)
    except UnknownPipelineError as exc:
        return _outcome("unknown_pipeline", str(exc))
    try:
        result = pipeline.predict(model_path, inputs)
    except MemoryError:
        return _outcome("out_of_memory")
    except PredictionNotSupportedError as exc:
        return _outcome("not_supported", str(exc))
    except _INPUT_ERRORS as exc:
        return _outcome("bad_inputs", str(exc) or type(exc).__name__)
    except Exception as exc:
        return _outcome(
            "error", f"the prediction failed ({type(exc).__name__})", traceback.format_exc()
        )
    try:
        predictions = json.dumps(json_safe(result), allow_nan=False).encode()
    except MemoryError:
        return _outcome("out_of_memory")
    except (TypeError, ValueError) as exc:
        return _outcome("bad_output", str(exc))
    if len(predictions) > MAX_RESULT_BYTES:
        return _outcome("too_large", str(len(predictions)))
    return _outcome("ok") + b"\n" + predictions


def _child_main(
    conn: Connection, pipeline_id: str, model_path: str, inputs: Any, memory_bytes: int
) -> None:
    _die_with_parents()
    _limit_threads()
    _limit_memory(memory_bytes)  # last: the threads above count in the baseline
    try:
        answer = _predict(pipeline_id, model_path, inputs)
    except MemoryError:  # while loading the registry or building an error message
        answer = _outcome("out_of_memory")
    conn.send_bytes(answer)
    conn.close()


# ----------------------------------------------------------------------------- the parent
class _Child:
    """One prediction's process and the read end of its answer pipe."""

    def __init__(self, pipeline_id: str, model_path: str, inputs: Any, memory_bytes: int) -> None:
        self.conn, child_end = mp_context.Pipe(duplex=False)
        self.process: BaseProcess = mp_context.Process(
            target=_child_main,
            args=(child_end, pipeline_id, model_path, inputs, memory_bytes),
            name=f"azf-predict-{pipeline_id}",
            daemon=True,
        )
        try:
            self.process.start()
        finally:
            child_end.close()  # only the child writes; its exit must read as EOF here

    def ready(self, timeout: float) -> bool:
        """True once there is an answer to read or the child is gone."""
        return bool(wait([self.conn, self.process.sentinel], timeout))

    def answer(self) -> tuple[dict[str, Any], bytes] | int | None:
        """The child's answer (header, predictions' JSON) or, when it died without one, its
        exit code (negative: the signal that killed it)."""
        if self.conn.poll():
            try:
                raw = self.conn.recv_bytes(MAX_RESULT_BYTES + 64 * 1024)
            except (EOFError, OSError):  # it died mid-answer
                pass
            else:
                head, _, body = raw.partition(b"\n")
                return json.loads(head), body
        self.process.join(5)
        return self.process.exitcode

    def stop(self) -> None:
        """Kill the child if it still runs (SIGKILL: it cannot be ignored) and release it."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.conn.close()
        if self.process.exitcode is not None:
            self.process.close()


class PredictionSandbox:
    """Runs predictions in child processes, at most `max_concurrent` at once.

    `timeout_seconds` bounds each prediction's wall-clock time (the child is killed after it);
    `memory_mb` bounds the memory one prediction may allocate beyond its pre-loaded process.
    A request that finds every slot busy waits for one up to `timeout_seconds`.
    """

    def __init__(self, *, timeout_seconds: float, memory_mb: int, max_concurrent: int) -> None:
        if timeout_seconds <= 0 or memory_mb < 1 or max_concurrent < 1:
            raise ValueError("timeout, memory and concurrency limits must be positive")
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.max_concurrent = max_concurrent
        self._slots = anyio.Semaphore(max_concurrent)
        self._children: set[_Child] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionSandbox:
        return cls(
            timeout_seconds=settings.predict_timeout_seconds,
            memory_mb=settings.predict_memory_mb,
            max_concurrent=settings.predict_max_concurrent,
        )

    def start(self) -> PredictionSandbox:
        warm_up()
        return self

    def close(self) -> None:
        """Kill every prediction still running (the API is shutting down)."""
        with self._lock:
            children = list(self._children)
        for child in children:
            child.stop()

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._children)

    async def predict(
        self,
        pipeline_id: str,
        model_path: str | os.PathLike[str],
        inputs: Any,
        *,
        shown: Mapping[str, str] | None = None,
        client_gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> bytes:
        """The predictions as JSON text (the API passes it on unparsed), or
        `PredictionFailedError`. `shown` maps server paths
        the child receives to how the caller knows them, for error messages; `client_gone`
        is polled while waiting, and a prediction nobody waits for any more is killed."""
        with anyio.move_on_after(self.timeout_seconds) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise PredictionFailedError(
                "busy",
                f"every prediction slot ({self.max_concurrent}) stayed busy for "
                f"{self.timeout_seconds:g} s; try again shortly",
            )
        try:
            # Shielded: a cancel while the process starts would otherwise leave it running.
            with anyio.CancelScope(shield=True):
                child = await anyio.to_thread.run_sync(
                    _Child, pipeline_id, str(model_path), inputs, self.memory_mb * 1024 * 1024
                )
            with self._lock:
                self._children.add(child)
            try:
                header, body = await self._wait(child, client_gone)
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(child.stop)
                with self._lock:
                    self._children.discard(child)
        finally:
            self._slots.release()
        kind = header.get("kind")
        if kind == "ok":
            return body
        message = redact_paths(str(header.get("message", "")), shown=shown)[:2000]
        detail = str(header.get("detail", ""))
        if kind == "out_of_memory":
            message = f"the prediction ran out of memory (limit {self.memory_mb} MB)"
        elif kind == "too_large":
            message = f"the predictions are larger than {MAX_RESULT_BYTES // 2**20} MB of JSON"
        raise PredictionFailedError(str(kind), message, detail)

    async def _wait(
        self, child: _Child, client_gone: Callable[[], Awaitable[bool]] | None
    ) -> tuple[dict[str, Any], bytes]:
        deadline = anyio.current_time() + self.timeout_seconds
        while True:
            left = deadline - anyio.current_time()
            if left <= 0:
                raise PredictionFailedError(
                    "timeout",
                    f"the prediction took longer than {self.timeout_seconds:g} s and was stopped",
                )
            if await anyio.to_thread.run_sync(
                child.ready, min(left, _POLL_SECONDS), abandon_on_cancel=True
            ):
                break
            if client_gone is not None and await client_gone():
                raise PredictionFailedError(
                    "client_gone", "the client went away; prediction stopped"
                )
        answer = await anyio.to_thread.run_sync(child.answer)
        if isinstance(answer, tuple):
            return answer
        if answer is not None and answer < 0:
            try:
                name = signal.Signals(-answer).name
            except ValueError:
                name = f"signal {-answer}"
            raise PredictionFailedError(
                "killed",
                f"the prediction process was killed by {name}; it may have run out of memory "
                f"(limit {self.memory_mb} MB)",
            )
        raise PredictionFailedError(
            "error", f"the prediction process exited with code {answer} without an answer"
        )
