"""A typed Python client of the AzuraForge HTTP API, for scripts, notebooks and the CLI.

```python
from azuraforge_platform.client import AzuraForgeClient

with AzuraForgeClient("http://127.0.0.1:8000") as af:
    exp = af.create_experiment("stock_predictor", {"epochs": 5}, tags=["try"])
    done = af.wait(exp.id)                     # follows the WebSocket, with a progress bar
    loss = af.metrics(exp.id, max_points=200)  # downsampled on the server
    af.download_artifacts(exp.id, "results/")
```
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from azuraforge_platform.api.schemas import (
    ArtifactList,
    ArtifactPublic,
    AuditList,
    EventPublic,
    ExperimentList,
    ExperimentPublic,
    Health,
    LogList,
    Me,
    MetricsPublic,
    ModelList,
    ModelPublic,
    PipelineDetail,
    PipelineList,
    PredictResponse,
    TokenCreated,
    TokenList,
    TokenPublic,
    UploadPublic,
    UserCreated,
    UserList,
    UserPublic,
)
from azuraforge_platform.credentials import stored_token
from azuraforge_platform.settings import Settings

__all__ = ["ApiError", "AzuraForgeClient", "default_token"]

M = TypeVar("M", bound=BaseModel)
FINAL = ("succeeded", "failed", "cancelled")


def default_token(server: str) -> str | None:
    """AZURAFORGE_TOKEN, else the token stored by `azuraforge login` for `server`."""
    settings = Settings()  # read now: a notebook may set the variable after importing
    if settings.token is not None:
        return settings.token.get_secret_value()
    return stored_token(settings.config_dir, server)


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class ApiError(Exception):
    """An error answer of the API: `status`, `code`, `message` and field errors."""

    def __init__(
        self, status: int, code: str, message: str, fields: Sequence[Mapping[str, str]] = ()
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.fields = [dict(f) for f in fields]
        detail = "; ".join(f"{f.get('path')}: {f.get('message')}" for f in self.fields)
        super().__init__(f"{status} {code}: {message}" + (f" [{detail}]" if detail else ""))


class AzuraForgeClient:
    """The API of one AzuraForge server; its experiment methods are the `Experiments`
    interface (`azuraforge_platform.experiments`), as the local store's are."""

    def __init__(
        self,
        server: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`token`: an API token; by default AZURAFORGE_TOKEN, else the one
        `azuraforge login --server` stored for this server."""
        self.server = server.rstrip("/")
        self.api = f"{self.server}/api/v1"
        self.token = token or default_token(self.server)
        self._headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(
            base_url=self.api, timeout=timeout, transport=transport, headers=self._headers
        )

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AzuraForgeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._error(response)
        return response

    @staticmethod
    def _error(response: httpx.Response) -> ApiError:
        try:
            body = response.json()["error"]
            return ApiError(
                response.status_code, body["code"], body["message"], body.get("fields", [])
            )
        except (ValueError, KeyError, TypeError):
            return ApiError(response.status_code, "http_error", response.text[:500])

    def _get(self, model: type[M], path: str, **kwargs: Any) -> M:
        return model.model_validate(self._request("GET", path, **kwargs).json())

    def _post(self, model: type[M], path: str, body: Any = None, **kwargs: Any) -> M:
        return model.model_validate(self._request("POST", path, json=body, **kwargs).json())

    # -- who am I, tokens, users, audit ----------------------------------------------------
    def me(self) -> Me:
        return self._get(Me, "/auth/me")

    def tokens(self) -> list[TokenPublic]:
        return self._get(TokenList, "/tokens").items

    def create_token(self, name: str, *, expires_in_days: int = 90) -> TokenCreated:
        body = {"name": name, "expires_in_days": expires_in_days}
        return self._post(TokenCreated, "/tokens", body)

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/tokens/{token_id}")

    def users(self) -> list[UserPublic]:
        return self._get(UserList, "/users").items

    def create_user(
        self, username: str, *, role: str = "member", password: str | None = None
    ) -> UserCreated:
        body = {"username": username, "role": role, "password": password}
        return self._post(UserCreated, "/users", body)

    def update_user(self, user_id: int, **changes: Any) -> UserPublic:
        response = self._request("PATCH", f"/users/{user_id}", json=changes)
        return UserPublic.model_validate(response.json())

    def audit(self, *, limit: int = 50, before: int | None = None, **filters: Any) -> AuditList:
        params = {"limit": limit, "before": before, **filters}
        return self._get(AuditList, "/audit", params={k: v for k, v in params.items() if v})

    # -- health and pipelines -------------------------------------------------------------
    def health(self) -> Health:
        return self._get(Health, "/health")

    def pipelines(self) -> PipelineList:
        return self._get(PipelineList, "/pipelines")

    def pipeline(self, pipeline_id: str) -> PipelineDetail:
        return self._get(PipelineDetail, f"/pipelines/{quote(pipeline_id, safe='')}")

    # -- experiments ----------------------------------------------------------------------
    def create_experiment(
        self,
        pipeline_id: str,
        config: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        max_attempts: int | None = None,
    ) -> ExperimentPublic:
        body: dict[str, Any] = {"pipeline_id": pipeline_id, "config": dict(config or {})}
        body["tags"] = list(tags)
        if name is not None:
            body["name"] = name
        if max_attempts is not None:
            body["max_attempts"] = max_attempts
        return self._post(ExperimentPublic, "/experiments", body)

    def list_experiments(
        self,
        *,
        pipeline_id: str | None = None,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] = (),
        search: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        sort: str = "created_at",
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        with_total: bool = False,
    ) -> ExperimentList:
        """As `Experiments.list_experiments`; dates may also be ISO 8601 text (with a
        timezone)."""
        params: list[tuple[str, Any]] = [
            ("sort", sort),
            ("order", "desc" if descending else "asc"),
            ("limit", limit),
        ]
        if pipeline_id:
            params.append(("pipeline_id", pipeline_id))
        for s in [status] if isinstance(status, str) else status or ():
            params.append(("status", s))
        params += [("tag", t) for t in tags]
        for key, value in (
            ("q", search),
            ("created_after", _iso(created_after)),
            ("created_before", _iso(created_before)),
            ("cursor", cursor),
        ):
            if value:
                params.append((key, value))
        if with_total:
            params.append(("with_total", "true"))
        return self._get(ExperimentList, "/experiments", params=params)

    def get_experiment(self, experiment_id: str) -> ExperimentPublic:
        return self._get(ExperimentPublic, f"/experiments/{experiment_id}")

    def resolve_experiment(self, ref: str) -> ExperimentPublic:
        """An experiment by id or by a unique id prefix (of at least 4 characters, as the
        shortened ids in listings): 404 when none matches, 400 when several do."""
        try:
            return self.get_experiment(ref)
        except ApiError as exc:
            if exc.status != 404 or len(ref) < 4:
                raise
            missing = exc
        page = self.list_experiments(search=ref, limit=50)  # "id starts with" or name match
        matches = [e.id for e in page.items if e.id.startswith(ref)]
        if len(matches) > 1:
            raise ApiError(
                400,
                "ambiguous_id",
                f"{ref!r} matches {len(matches)} experiments; give more of the id",
            )
        if not matches:
            raise missing
        return self.get_experiment(matches[0])

    def cancel(self, experiment_id: str) -> ExperimentPublic:
        return self._post(ExperimentPublic, f"/experiments/{experiment_id}/cancel")

    def delete(self, experiment_id: str) -> None:
        self._request("DELETE", f"/experiments/{experiment_id}")

    def rerun(
        self,
        experiment_id: str,
        config: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> ExperimentPublic:
        body: dict[str, Any] = {"config": dict(config or {})}
        if name is not None:
            body["name"] = name
        if tags is not None:
            body["tags"] = list(tags)
        return self._post(ExperimentPublic, f"/experiments/{experiment_id}/rerun", body)

    def metrics(
        self, experiment_id: str, names: Sequence[str] = (), *, max_points: int = 1000
    ) -> MetricsPublic:
        params: list[tuple[str, Any]] = [("max_points", max_points)]
        params += [("name", n) for n in names]
        return self._get(MetricsPublic, f"/experiments/{experiment_id}/metrics", params=params)

    def logs(self, experiment_id: str, *, after_id: int = 0, limit: int = 1000) -> LogList:
        params = {"after_id": after_id, "limit": limit}
        return self._get(LogList, f"/experiments/{experiment_id}/logs", params=params)

    def events(self, experiment_id: str, *, after: int = 0, limit: int = 1000) -> list[EventPublic]:
        response = self._request(
            "GET", f"/experiments/{experiment_id}/events", params={"after": after, "limit": limit}
        )
        return [EventPublic.model_validate(e) for e in response.json()]

    def artifacts(self, experiment_id: str) -> list[ArtifactPublic]:
        return self._get(ArtifactList, f"/experiments/{experiment_id}/artifacts").items

    def artifact_location(self, experiment_id: str) -> str:
        return f"{self.api}/experiments/{experiment_id}/artifacts"

    def download_artifact(
        self, experiment_id: str, path: str, dest: str | Path | None = None
    ) -> Path:
        """Save one artifact to `dest` (a file, or a folder to put it in; default: here)."""
        target = Path(dest) if dest is not None else Path(Path(path).name)
        if target.is_dir():
            target = target / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        url = f"/experiments/{experiment_id}/artifacts/{quote(path)}"
        with self._http.stream("GET", url, params={"download": "true"}) as response:
            if response.status_code >= 400:
                response.read()
                raise self._error(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        return target

    def download_artifacts(self, experiment_id: str, dest_dir: str | Path) -> list[Path]:
        """Every artifact of the experiment, keeping their relative paths under `dest_dir`."""
        root = Path(dest_dir)
        return [
            self.download_artifact(experiment_id, a.path, root / a.path)
            for a in self.artifacts(experiment_id)
        ]

    # -- live events ----------------------------------------------------------------------
    def stream_events(
        self, experiment_id: str, *, after: int = 0, reconnect: bool = True
    ) -> Generator[dict[str, Any], None, None]:
        """Stored events (each with its `seq`) as they happen, until the experiment ends.
        A dropped connection is resumed from the last seq: nothing is missed or repeated."""
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        ws_base = "ws" + self.api[len("http") :] if self.api.startswith("http") else self.api
        last = after
        while True:
            url = f"{ws_base}/experiments/{experiment_id}/events?after={last}"
            try:
                with connect(url, open_timeout=30, additional_headers=self._headers) as ws:
                    for raw in ws:
                        message = json.loads(raw)
                        kind = message.get("type")
                        if kind == "ping":
                            continue
                        if kind == "end":
                            return
                        if kind == "error":
                            err = message["error"]
                            codes = {"not_found": 404, "unauthenticated": 401}
                            status = codes.get(err.get("code"), 500)
                            raise ApiError(status, err["code"], err["message"])
                        last = int(message["seq"])
                        yield message
            except (ConnectionClosed, OSError):
                if not reconnect:
                    raise
                time.sleep(0.5)
                continue
            # the server closed without an end message: look at the state before resuming
            if self.get_experiment(experiment_id).status.value in FINAL and not self.events(
                experiment_id, after=last, limit=1
            ):
                return

    def wait(
        self, experiment_id: str, *, progress: bool = True, timeout: float | None = None
    ) -> ExperimentPublic:
        """Follow the experiment until it ends (a rich progress bar when `progress`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar: Any = None
        task: Any = None
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(
                TextColumn("[bold]{task.fields[name]}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
            )
            bar.start()
            task = bar.add_task("queued", total=None, name=experiment_id[:8])
        try:
            for event in self.stream_events(experiment_id):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"experiment {experiment_id} did not finish in time")
                if bar is None:
                    continue
                payload = event["payload"]
                if event["type"] == "progress":
                    done = payload.get("epoch") or payload.get("step")
                    total = payload.get("total_epochs") or payload.get("total_steps")
                    bar.update(task, completed=done or 0, total=total)
                elif event["type"] == "metrics":
                    shown = " ".join(f"{k}={v:.4g}" for k, v in payload["values"].items())
                    bar.update(task, description=shown)
                elif event["type"] == "status":
                    bar.update(task, description=payload.get("status", ""))
        finally:
            if bar is not None:
                bar.stop()
        return self.get_experiment(experiment_id)

    # -- uploads and models ---------------------------------------------------------------
    def upload(self, path: str | Path) -> UploadPublic:
        path = Path(path)
        with path.open("rb") as fh:
            response = self._request("POST", "/uploads", files={"file": (path.name, fh)})
        return UploadPublic.model_validate(response.json())

    def models(self) -> list[ModelPublic]:
        return self._get(ModelList, "/models").items

    def model(self, name: str) -> ModelPublic:
        return self._get(ModelPublic, f"/models/{quote(name, safe='')}")

    def register_model(
        self,
        name: str,
        experiment_id: str,
        *,
        artifact_path: str | None = None,
        description: str | None = None,
    ) -> ModelPublic:
        body: dict[str, Any] = {"name": name, "experiment_id": experiment_id}
        if artifact_path is not None:
            body["artifact_path"] = artifact_path
        if description is not None:
            body["description"] = description
        return self._post(ModelPublic, "/models", body)

    def predict(
        self, name: str, inputs: Any = None, *, upload_id: str | None = None
    ) -> PredictResponse:
        body: dict[str, Any] = {"inputs": inputs}
        if upload_id is not None:
            body = {"upload_id": upload_id}
        return self._post(PredictResponse, f"/models/{quote(name, safe='')}/predict", body)
