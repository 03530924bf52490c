"""Schemathesis against the OpenAPI schema the server publishes, in process, on both backends
(PostgreSQL's session zone is Asia/Makassar, see conftest).

Every operation gets a bounded, derandomized run of valid and invalid requests, signed in as
someone who may call it; no answer may be a 5xx, and every answer must be one the schema
documents (status code, content type, body). Times are drawn with the range's edges and
large offsets; then every field of every operation gets hostile values in turn (times at and
past the edges, huge integers, control characters, wrong types) and every body is sent too
large: still no 5xx.
"""

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pesan.app import create_app
from pesan.config import Settings
from tests.conftest import Account, Api

OPENAPI = "/api/v1/openapi.json"
MAX_EXAMPLES = 30
HOSTILE_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
PROVIDER_ACTIONS = ("/accept", "/decline", "/on-the-way", "/arrived", "/complete")
CONTRACT = [  # /work/shared/api.md, the endpoints table (the WebSocket is not in OpenAPI)
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/providers"),
    ("GET", "/api/v1/providers/{provider_id}"),
    ("PUT", "/api/v1/providers/me"),
    ("PUT", "/api/v1/providers/me/presence"),
    ("POST", "/api/v1/providers/me/services"),
    ("POST", "/api/v1/bookings"),
    ("GET", "/api/v1/bookings"),
    ("GET", "/api/v1/bookings/{booking_id}"),
    *(("POST", f"/api/v1/bookings/{{booking_id}}{action}") for action in PROVIDER_ACTIONS),
    ("POST", "/api/v1/bookings/{booking_id}/cancel"),
    ("GET", "/api/v1/conversations"),
    ("POST", "/api/v1/conversations"),
    ("GET", "/api/v1/conversations/{conversation_id}"),
    ("GET", "/api/v1/conversations/{conversation_id}/messages"),
    ("POST", "/api/v1/conversations/{conversation_id}/messages"),
    ("POST", "/api/v1/conversations/{conversation_id}/read"),
    ("GET", "/api/v1/admin/messages"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}

EDGE_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-12:00",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "9999-11-30T23:59:59+00:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T10:00:00+14:00",
]
OFFSETS = [timezone(timedelta(hours=h)) for h in (-12, -1, 0, 8, 14)]
# RFC 3339 times from the whole of Python's range, with offsets far from UTC, and the edges.
TIMES = st.sampled_from(EDGE_TIMES) | st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from(OFFSETS),
).map(lambda t: t.isoformat())
schemathesis.openapi.format("date-time", TIMES)


def _cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


HOSTILE = st.sampled_from(
    [
        *EDGE_TIMES,
        "2026-13-45T25:61:61Z",
        2**63,
        -(2**63) - 1,
        10**30,
        2**31,
        -1,
        0,
        1e308,
        "Villa 3\nPrice: IDR 1",
        "\r\n",
        "\x1b[31m",
        "\u2028",
        "\x7f",
        "\ud800",
        "x" * 100_000,
        "",
        None,
        True,
        [],
        {},
        [{"a": [1]}],
        _cursor("0001-01-01T00:00:00+14:00", "01JDQ0000000000000000000AA"),
        _cursor("9999-12-31T23:59:59-14:00", "01JDQ0000000000000000000AA"),
    ]
)


def _published_operations() -> list[tuple[str, str]]:
    """Read at collection time, so each operation is its own test (no database needed)."""
    app = create_app(Settings(database_url="sqlite://"), check_schema=False)
    try:
        paths = app.openapi()["paths"]
    finally:
        app.state.db.dispose()
    return [(m.upper(), p) for p, item in paths.items() for m in item if m in HTTP_METHODS]


OPERATIONS = _published_operations()


@pytest.fixture(scope="session")
def in_process(app: FastAPI) -> Any:
    """The app as schemathesis calls it: without its lifespan, which the test client runs.

    Schemathesis would otherwise start a second lifespan (broker, hub) on the shared app and
    keep it alive until the process exits.
    """

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return asgi


@dataclass
class People:
    customer: Account
    therapist: Account
    admin: Account
    leaving: Account  # signs out while its operation is fuzzed
    ids: dict[str, str]  # real ids for path parameters and bodies, to reach past the lookup


@pytest.fixture
def people(api: Api, make_admin: Any) -> People:
    customer = api.register("customer")
    therapist = api.provider("therapist")
    answer = api.book(customer, therapist)
    ids = {
        "provider_id": therapist.id,
        "booking_id": answer["booking"]["id"],
        "conversation_id": answer["conversation"]["id"],
        "providerId": therapist.id,
        "participantId": therapist.id,
        "serviceId": therapist.service_ids[0],
        "bookingId": answer["booking"]["id"],
        "upToMessageId": answer["message"]["id"],
    }
    return People(customer, therapist, make_admin(), api.register("customer"), ids)


def caller(method: str, path: str, people: People) -> Account:
    if path.endswith("/logout"):
        return people.leaving
    if path.startswith("/api/v1/admin"):
        return people.admin
    if path.startswith("/api/v1/providers/me") or path.endswith(PROVIDER_ACTIONS):
        return people.therapist
    return people.customer


def with_real_ids(ids: dict[str, str], case: Any) -> Any:
    if isinstance(case.body, dict):
        case.body.update({k: v for k, v in ids.items() if k in case.body})
    return case


def test_openapi_schema_is_published(client: TestClient) -> None:
    r = client.get(OPENAPI)
    assert r.status_code == 200
    document = r.json()
    assert document["openapi"].startswith("3.")
    published = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert set(CONTRACT) <= published, sorted(set(CONTRACT) - published)


def test_errors_are_documented_as_problem_json(client: TestClient) -> None:
    document = client.get(OPENAPI).json()
    undocumented = []
    for method, path in CONTRACT:
        if not path.startswith("/api/v1/"):
            continue
        responses = document["paths"][path][method.lower()]["responses"]
        for status in ("401", "404", "422"):
            content = responses.get(status, {}).get("content", {})
            if "application/problem+json" not in content:
                undocumented.append(f"{method} {path} {status}")
    assert undocumented == []
    ready = document["paths"]["/readyz"]["get"]["responses"]
    assert "application/json" in ready["503"]["content"]
    problem = document["components"]["schemas"]["ProblemOut"]
    assert {"type", "title", "status", "detail", "code", "requestId"} <= set(problem["properties"])


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzzed_requests_get_documented_answers(
    in_process: Any, backend: str, people: People, method: str, path: str
) -> None:
    operation = schemathesis.openapi.from_asgi(OPENAPI, in_process)[path][method]
    headers = {"Authorization": f"Bearer {caller(method, path, people).token}"}
    in_path = {k: v for k, v in people.ids.items() if f"{{{k}}}" in path}
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE, headers=headers),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=headers),
        operation.as_strategy(headers=headers, path_parameters=in_path or None).map(
            partial(with_real_ids, people.ids)
        ),
    ]
    failures: dict[str, str] = {}

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                first_line = failure.message.strip().split("\n", 1)[0]
                failures.setdefault(f"{failure.title}: {first_line}", case.as_curl_command())

    run()
    assert not failures, "\n".join(f"{what}\n  {curl}" for what, curl in failures.items())


# ---- what schemathesis found, pinned down -------------------------------------------------


@pytest.mark.parametrize("parameter", ["q", "area", "cursor"])
def test_nul_in_a_query_is_refused(client: TestClient, parameter: str) -> None:
    r = client.get("/api/v1/providers", params={parameter: "Ub\x00ud"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "query", "message": "must not contain NUL characters"}]


def test_nul_in_a_path_is_refused(client: TestClient) -> None:
    r = client.get("/api/v1/providers/Ub%00ud")
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"


@pytest.mark.parametrize("field", ["register name", "profile bio", "booking note"])
def test_nul_in_text_is_refused_like_in_messages(api: Api, client: TestClient, field: str) -> None:
    if field == "register name":
        body = {"email": "nul@example.com", "password": "long enough", "role": "customer"}
        r = client.post("/api/v1/auth/register", json={**body, "name": "Ma\x00de"})
    elif field == "profile bio":
        therapist = api.provider("therapist")
        r = client.put(
            "/api/v1/providers/me",
            headers=therapist.headers,
            json={"bio": "Bali\x00nese", "languages": ["id"], "area": "Ubud"},
        )
    else:
        customer, therapist = api.register("customer"), api.provider("therapist")
        body = api.book_body(therapist, note="Villa\x003")
        r = client.post("/api/v1/bookings", headers=customer.headers, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"


# ---- hostile values in every field -----------------------------------------------------------


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON body a value can be put: each key and item, nested too."""
    if isinstance(value, dict):
        found = [(*path, k) for k in value]
        for k, v in value.items():
            found += _leaves(v, (*path, k))
        return found
    if isinstance(value, list):
        found = [(*path, i) for i in range(len(value))]
        for i, v in enumerate(value):
            found += _leaves(v, (*path, i))
        return found
    return []


def _put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


def _body_fields(operation: Any) -> list[str]:
    """The top-level fields the schema gives the body, so absent optional ones get a turn."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref") or next(
        (s.get("$ref") for s in schema.get("anyOf", []) if "$ref" in s), None
    )
    if ref is None:
        return list(schema.get("properties", {}))
    resolved = operation.schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return list(resolved.get("properties", {}))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_hostile_values_in_every_field_are_never_a_server_error(
    in_process: Any, backend: str, people: People, method: str, path: str
) -> None:
    operation = schemathesis.openapi.from_asgi(OPENAPI, in_process)[path][method]
    headers = {"Authorization": f"Bearer {caller(method, path, people).token}"}
    in_path = {k: v for k, v in people.ids.items() if f"{{{k}}}" in path}
    valid = operation.as_strategy(
        GenerationMode.POSITIVE, headers=headers, path_parameters=in_path or None
    ).map(partial(with_real_ids, people.ids))
    parameters = operation.definition.raw.get("parameters", [])
    query_names = [p["name"] for p in parameters if p.get("in") == "query"]
    extra_fields = _body_fields(operation)
    failures: dict[str, str] = {}

    @given(case=valid, data=st.data())
    @settings(
        max_examples=HOSTILE_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, data: Any) -> None:
        places: list[tuple[str, tuple[Any, ...]]] = []
        if isinstance(case.body, dict | list):
            places += [("body", p) for p in _leaves(case.body)]
            if isinstance(case.body, dict):
                places += [("body", (k,)) for k in extra_fields if k not in case.body]
        places += [("query", (name,)) for name in query_names]
        if not places:
            return
        where, at = data.draw(st.sampled_from(places))
        value = data.draw(HOSTILE)
        if where == "body":
            _put(case.body, at, value)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            if not text.isascii() and "\ud800" in text:
                return  # a lone surrogate cannot even be put in a URL
            if case.query is None or not isinstance(case.query, dict):
                case.query = {}
            case.query[at[0]] = text
        try:
            case.call_and_validate(checks=[not_a_server_error])
        except FailureGroup as group:
            for failure in group.exceptions:
                first_line = failure.message.strip().split("\n", 1)[0]
                failures.setdefault(f"{failure.title}: {first_line}", case.as_curl_command())

    run()
    assert not failures, "\n".join(f"{what}\n  {curl}" for what, curl in failures.items())


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_an_oversized_body_to_any_operation_is_413(
    client: TestClient, people: People, method: str, path: str
) -> None:
    url = path
    for name, value in people.ids.items():
        url = url.replace(f"{{{name}}}", value)
    headers = {
        "Authorization": f"Bearer {caller(method, path, people).token}",
        "Content-Type": "application/json",
    }
    body = json.dumps({"content": "x" * (1024 * 1024)}).encode()
    r = client.request(method, url, headers=headers, content=body)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "payload_too_large"
