"""Property-based fuzzing of every operation in the OpenAPI document (Hypothesis): requests
built from the declared parameter and body schemas, valid and junk alike (integers past 64
bits in every query parameter, crafted pagination cursors), never get a 5xx,
always get a status the document declares, and their bodies match the declared schema."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from azuraforge_platform.api import schemas as api_schemas
from azuraforge_platform.api.schemas import ErrorResponse
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment

from .conftest import make_settings, signed_in_client

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


# Integers no database column holds (past signed 64 bits) and the edges around them: a query
# parameter that reaches SQL unbounded overflows there (a 500) instead of being a 422.
HUGE = st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]) | st.integers(
    min_value=2**63
)

# Pagination cursors as the server writes them (base64 of a JSON list), with junk inside.
CURSORS = st.tuples(
    st.sampled_from(["created_at", "name", "pipeline_id", "status"]), st.booleans(), JSON, JSON
).map(lambda parts: base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode())


def from_schema(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """A strategy for values matching a JSON Schema (the subset FastAPI emits)."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs, depth) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", 100)
            )
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
                lambda d: d.isoformat()
            )
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 30), 30)
        )
    if kind == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", -(10**6) - 1) + 1)
        hi = schema.get("maximum", schema.get("exclusiveMaximum", 10**6 + 1) - 1)
        return st.integers(min_value=lo, max_value=min(hi, 2000))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        item = from_schema(schema.get("items", {}), defs, depth + 1)
        return st.lists(item, max_size=3)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs, depth + 1) for k, v in props.items() if k in required},
            optional={
                k: from_schema(v, defs, depth + 1) for k, v in props.items() if k not in required
            },
        )
    return JSON


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory, trainer: str
) -> Iterator[tuple[TestClient, dict[str, list[str]]]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(tmp)
    with signed_in_client(settings, "fuzzer", run_jobs=False) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        done = services.store.create(pipeline_id=trainer, config={"epochs": 3})
        run_experiment(done.id, EventService(services.store, InProcessEventBus()))
        queued = services.store.create(pipeline_id=trainer, config={})
        services.models.register("line", experiment_id=done.id, artifact_path="model.json")
        known = {
            "experiment_id": [done.id, queued.id],
            "pipeline_id": [trainer, "stock_predictor"],
            "name": ["line"],
            "path": ["model.json", "report.md", "../x"],
        }
        yield client, known


def _operations(client: TestClient) -> list[tuple[str, str]]:
    doc = client.get("/api/v1/openapi.json").json()
    return sorted((path, method) for path, item in doc["paths"].items() for method in item)


# Reachable without a credential; every other operation must answer 401 to an anonymous caller.
PUBLIC = {("/api/v1/health", "get"), ("/api/v1/auth/login", "post")}


@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_every_operation_is_fuzzed(
    fuzz_app: tuple[TestClient, dict[str, list[str]]], who: str
) -> None:
    client, _ = fuzz_app
    ops = _operations(client)
    assert len(ops) >= 25  # a new route joins the fuzzing automatically
    seen: Counter[int] = Counter()
    # Deletes last: the known experiments and model must exist while the other routes run.
    for path, method in sorted(ops, key=lambda op: op[1] == "delete"):
        _fuzz_operation(fuzz_app, path, method, seen, anonymous=who == "anonymous")
    print(f"fuzz statuses ({who}):", dict(seen))
    if who == "admin":  # both sides were really exercised: successes and refusals
        assert sum(n for code, n in seen.items() if code < 300) > 40, seen
        assert sum(n for code, n in seen.items() if code >= 400) > 40, seen
    else:
        assert seen[401] > 100, seen


def _keep_signed_in(client: TestClient) -> None:
    """The fuzzer may revoke its own token or disable itself (it is an admin): then it gets a
    fresh one, after checking that the 401 was deserved."""
    services = client.app.state.services  # type: ignore[attr-defined]
    secret = client.headers["Authorization"].split(" ", 1)[1]
    if services.accounts.authenticate(secret) is not None:
        return
    user = services.accounts.store.user_by_name("fuzzer")
    services.accounts.update_user(user.id, disabled=False, role="admin")
    _, fresh = services.accounts.create_token(user, "fuzz", 1)
    client.headers["Authorization"] = f"Bearer {fresh}"


def _adapter(op: dict[str, Any]) -> TypeAdapter[Any] | None:
    """The declared 2xx JSON schema as a validator: its component is one of api/schemas.py."""
    for code, answer in op["responses"].items():
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        if not code.startswith("2") or not schema:
            continue
        if "$ref" in schema:
            return TypeAdapter(getattr(api_schemas, schema["$ref"].rsplit("/", 1)[-1]))
        if schema.get("type") == "array" and "$ref" in schema["items"]:
            item = getattr(api_schemas, schema["items"]["$ref"].rsplit("/", 1)[-1])
            return TypeAdapter(list[item])  # type: ignore[valid-type]
    return None


def _fuzz_operation(
    fuzz_app: tuple[TestClient, dict[str, list[str]]],
    path: str,
    method: str,
    seen: Counter[int],
    *,
    anonymous: bool = False,
) -> None:
    client, known = fuzz_app
    doc = client.get("/api/v1/openapi.json").json()
    defs = doc["components"]["schemas"]
    op = doc["paths"][path][method]
    declared = set(op["responses"])
    adapter = _adapter(op)
    params = op.get("parameters", [])
    body_schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    multipart = "multipart/form-data" in op.get("requestBody", {}).get("content", {})

    def path_strategy(p: dict[str, Any]) -> Any:
        options = known.get(p["name"], [])
        # "." and ".." are not names: URL normalisation turns /models/.. into another route
        safe = st.text(
            st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1, max_size=20
        ).filter(lambda text: text.strip() not in {".", ".."})
        return st.sampled_from(options) | safe if options else safe

    def junk(p: dict[str, Any]) -> Any:
        return CURSORS if p["name"] == "cursor" else st.text(max_size=10) | HUGE

    def param_strategy(p: dict[str, Any]) -> Any:
        if p["in"] == "path":
            return path_strategy(p)
        return from_schema(p["schema"], defs) | junk(p)

    def valid_strategy(p: dict[str, Any]) -> Any:
        if p["in"] == "path" and known.get(p["name"]):
            return st.sampled_from(known[p["name"]])
        return path_strategy(p) if p["in"] == "path" else from_schema(p["schema"], defs)

    strategies = {p["name"]: param_strategy(p) for p in params}
    query_names = [p["name"] for p in params if p["in"] == "query"]
    body = from_schema(body_schema, defs) | JSON if body_schema is not None else st.just(None)

    def send(values: dict[str, Any], payload: Any, data: bytes) -> None:
        url = path
        for name, value in values.items():
            if "{" + name in url:
                safe = "/" if name == "path" else ""
                url = url.replace("{" + name + "}", quote(str(value), safe=safe))
        query = {
            name: (value if not isinstance(value, bool) else str(value).lower())
            for name, value in values.items()
            if name in query_names and value is not None
        }
        kwargs: dict[str, Any] = {"params": query}
        if multipart:
            kwargs["files"] = {"file": ("x.csv", data or b"a")}
        elif payload is not None:
            kwargs["content"] = json.dumps(payload)
            kwargs["headers"] = {"content-type": "application/json"}
        credential = client.headers.pop("Authorization") if anonymous else None
        try:
            response = client.request(method.upper(), url, **kwargs)
        finally:
            if credential is not None:
                client.headers["Authorization"] = credential
        seen[response.status_code] += 1
        assert response.status_code < 500, (method, url, response.text)
        if anonymous and (path, method) not in PUBLIC:
            assert response.status_code in (401, 404, 422), (method, url, response.text)
        if response.status_code == 401 and not anonymous:
            _keep_signed_in(client)
        assert str(response.status_code) in declared, (method, url, response.status_code)
        if response.status_code >= 400:
            ErrorResponse.model_validate_json(response.content)
        elif adapter is not None and response.headers.get("content-type") == "application/json":
            adapter.validate_json(response.content)

    fuzz = settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )

    @fuzz
    @given(values=st.fixed_dictionaries(strategies), payload=body, data=st.binary(max_size=200))
    def check(values: dict[str, Any], payload: Any, data: bytes) -> None:
        send(values, payload, data)

    check()

    # Then each query parameter in turn gets the junk while the others are valid (and path
    # parameters name things that exist), so no other refusal hides what the junk does.
    for target in (p for p in params if p["in"] == "query"):
        one_bad = {p["name"]: valid_strategy(p) for p in params} | {target["name"]: junk(target)}

        @fuzz
        @given(values=st.fixed_dictionaries(one_bad), payload=body, data=st.binary(max_size=200))
        def check_one(values: dict[str, Any], payload: Any, data: bytes) -> None:
            send(values, payload, data)

        check_one()
