"""Limits one client cannot pass: throttling (429 with Retry-After), body and frame sizes (413,
1009), security headers on every answer, and sockets closed when their token is signed out."""

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from pesan import migrate
from pesan.app import create_app
from pesan.config import Settings
from pesan.middleware import RequestMiddleware
from tests.conftest import Api
from tests.problems import assert_problem

WEBSOCKET = "/api/v1/ws"


@contextmanager
def limited_app(
    backend: str, database_url_factory: Any, tmp_path: Path, **limits: Any
) -> Iterator[tuple[TestClient, Api]]:
    """An app of its own (its own counters) with throttling on and the given limits."""
    settings = Settings(
        database_url=database_url_factory(backend),
        data_dir=tmp_path,
        limits_enabled=limits.pop("limits_enabled", True),
        **limits,
    )
    app = create_app(settings, check_schema=False)
    migrate.upgrade(app.state.db.engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, Api(client)
    finally:
        app.state.db.dispose()


def assert_throttled(r: Any) -> None:
    body = assert_problem(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 3600, r.headers
    assert "try again" in body["detail"]


def login(client: TestClient, email: str, password: str = "wrong password") -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_sign_in_is_throttled_per_account(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(backend, database_url_factory, tmp_path, limit_login_account="3/minute") as (
        client,
        api,
    ):
        victim = api.register("customer")
        for _ in range(3):
            assert_problem(login(client, victim.email), 401, "invalid_credentials")
        assert_throttled(login(client, victim.email))
        # Even the right password waits now: the attacker cannot tell which try was right.
        assert_throttled(login(client, victim.email.upper(), "correct horse"))
        other = api.register("customer")
        assert login(client, other.email, "correct horse").status_code == 200


def test_sign_in_is_throttled_per_client_address(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(backend, database_url_factory, tmp_path, limit_login_address="4/minute") as (
        client,
        _,
    ):
        for i in range(4):
            assert_problem(login(client, f"guess{i}@example.com"), 401)
        assert_throttled(login(client, "guess-next@example.com"))


def test_registration_is_throttled_per_client_address(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(backend, database_url_factory, tmp_path, limit_register="2/hour") as (
        client,
        api,
    ):
        api.register("customer")
        api.register("therapist")
        r = client.post(
            "/api/v1/auth/register",
            json={
                "email": "third@example.com",
                "password": "long enough",
                "name": "Third",
                "role": "customer",
            },
        )
        assert_throttled(r)
        assert login(client, "third@example.com", "long enough").status_code == 401  # not made


def test_sends_and_book_now_are_throttled_per_user(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(
        backend, database_url_factory, tmp_path, limit_send="2/minute", limit_book="1/minute"
    ) as (client, api):
        customer, therapist = api.register("customer"), api.provider("therapist")
        booked = api.book(customer, therapist)
        r = client.post(
            "/api/v1/bookings",
            headers=customer.headers,
            json=api.book_body(therapist, mode="scheduled", startAt="2030-01-01T10:00:00Z"),
        )
        assert_throttled(r)
        conversation = booked["conversation"]["id"]
        assert api.send(customer, conversation, "one").status_code == 201
        assert api.send(customer, conversation, "two").status_code == 201
        assert_throttled(api.send(customer, conversation, "three"))
        assert api.send(therapist, conversation, "the other party").status_code == 201
        history = client.get(
            f"/api/v1/conversations/{conversation}/messages", headers=customer.headers
        )
        contents = [m["content"] for m in history.json()["items"]]
        assert "three" not in contents and "two" in contents


def test_typing_frames_over_the_limit_are_dropped_and_told_once(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(backend, database_url_factory, tmp_path, limit_typing="2/minute") as (
        client,
        api,
    ):
        customer, therapist = api.register("customer"), api.provider("therapist")
        conversations = [api.conversation(customer, therapist)]
        conversations += [f"01JDQ00000000000000000000{i}" for i in range(5)]
        with client.websocket_connect(WEBSOCKET) as ws:
            ws.send_text(json.dumps({"type": "auth", "token": customer.token}))
            assert ws.receive_json()["type"] == "ready"
            for conversation in conversations:
                ws.send_text(json.dumps({"type": "typing", "conversationId": conversation}))
            ws.send_text(json.dumps({"type": "ping"}))
            frames = [ws.receive_json(), ws.receive_json()]
        assert frames[0] == {
            "type": "error",
            "code": "rate_limited",
            "retryAfter": frames[0]["retryAfter"],
        }
        assert frames[0]["retryAfter"] >= 1
        assert frames[1] == {"type": "pong"}  # told once, not once per frame


def test_limits_can_all_be_turned_off(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(
        backend,
        database_url_factory,
        tmp_path,
        limits_enabled=False,
        limit_login_account="1/hour",
        limit_login_address="1/hour",
    ) as (client, _):
        for _ in range(5):
            assert login(client, "someone@example.com").status_code == 401


@pytest.mark.parametrize("limit", ["lots", "20/fortnight", ""])
def test_a_limit_setting_in_the_wrong_notation_is_refused(limit: str) -> None:
    with pytest.raises(ValidationError, match="limit_send"):
        Settings(limit_send=limit)


# ---- request and frame sizes ---------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_413(client: TestClient, api: Api) -> None:
    customer, therapist = api.register("customer"), api.provider("therapist")
    conversation = api.conversation(customer, therapist)
    huge = {"content": "x" * (1024 * 1024 + 1)}
    r = client.post(
        f"/api/v1/conversations/{conversation}/messages", headers=customer.headers, json=huge
    )
    assert_problem(r, 413, "payload_too_large")
    assert "1048576 bytes" in r.json()["detail"]
    # Refused before auth: a stranger's huge body costs no more.
    r = client.post("/api/v1/auth/login", content=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert_problem(r, 413, "payload_too_large")


def test_a_body_without_content_length_is_counted_and_cut(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 413, "payload_too_large")


def test_a_declared_oversized_body_is_refused_before_it_is_read() -> None:
    read: list[Any] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        read.append(1)
        return {"type": "http.request", "body": b"", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = RequestMiddleware(app, max_body_bytes=1024)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/auth/login",
        "headers": [(b"content-length", b"104857600")],
        "query_string": b"",
        "app": FastAPI(),
    }
    asyncio.run(middleware(scope, receive, send))
    assert read == []
    assert sent[0]["status"] == 413


def test_the_body_limit_is_a_setting(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited_app(backend, database_url_factory, tmp_path, max_body_bytes=2048) as (client, _):
        r = client.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 3000}
        )
        assert_problem(r, 413, "payload_too_large")
        r = client.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 100}
        )
        assert_problem(r, 401)


def test_a_websocket_frame_over_the_limit_closes_the_socket_1009(
    client: TestClient, api: Api
) -> None:
    customer = api.register("customer")
    with client.websocket_connect(WEBSOCKET) as ws:
        ws.send_text(json.dumps({"type": "auth", "token": customer.token}))
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(json.dumps({"type": "typing", "conversationId": "x" * 70_000}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1009


def test_an_oversized_auth_frame_is_refused_4401(client: TestClient, api: Api) -> None:
    customer = api.register("customer")
    frame = {"type": "auth", "token": customer.token, "padding": "x" * 70_000}
    with client.websocket_connect(WEBSOCKET) as ws:
        ws.send_text(json.dumps(frame))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


# ---- headers ---------------------------------------------------------------------------------


def assert_secure_headers(r: Any) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_every_answer_carries_the_security_headers(client: TestClient, api: Api) -> None:
    customer = api.register("customer")
    answers = [
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/api/v1/providers"),
        client.get("/api/v1/me", headers=customer.headers),
        client.get("/api/v1/me"),  # 401
        client.get("/api/v1/providers/Ub%00ud"),  # refused in the middleware
        client.get("/nowhere"),
        client.post("/api/v1/auth/login", content=b"x" * (2 * 1024 * 1024)),
    ]
    for r in answers:
        assert_secure_headers(r)
        assert "server" not in r.headers


def test_pages_may_load_only_their_own_files(client: TestClient) -> None:
    csp = client.get("/healthz").headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp


def test_the_api_docs_page_keeps_its_start_up_script(client: TestClient) -> None:
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    assert_secure_headers(r)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in csp
    assert "style-src 'self' 'unsafe-inline'" in csp


def test_answers_with_tokens_are_never_stored(client: TestClient, api: Api) -> None:
    customer = api.register("customer")
    r = client.post(
        "/api/v1/auth/login", json={"email": customer.email, "password": "correct horse"}
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "new@example.com", "password": "long enough", "name": "N", "role": "hotel"},
    )
    assert r.headers["cache-control"] == "no-store"
    assert client.get("/api/v1/me", headers=customer.headers).headers["cache-control"] == (
        "no-store"
    )


# ---- sign-out closes sockets -----------------------------------------------------------------


def test_signing_out_closes_that_tokens_sockets_4401(client: TestClient, api: Api) -> None:
    customer = api.register("customer")
    r = client.post(
        "/api/v1/auth/login", json={"email": customer.email, "password": "correct horse"}
    )
    other_device = r.json()["token"]
    with (
        client.websocket_connect(WEBSOCKET) as leaving,
        client.websocket_connect(WEBSOCKET) as staying,
    ):
        leaving.send_text(json.dumps({"type": "auth", "token": customer.token}))
        staying.send_text(json.dumps({"type": "auth", "token": other_device}))
        assert leaving.receive_json()["type"] == "ready"
        assert staying.receive_json()["type"] == "ready"
        assert client.post("/api/v1/auth/logout", headers=customer.headers).status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            leaving.receive_json()
        assert closed.value.code == 4401
        staying.send_text(json.dumps({"type": "ping"}))
        assert staying.receive_json() == {"type": "pong"}


def test_limits_and_outages_are_documented_in_openapi(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path, item in paths.items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            for status in ("413", "503"):
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
    throttled = [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/bookings"),
        ("post", "/api/v1/conversations/{conversation_id}/messages"),
    ]
    for method, path in throttled:
        assert "429" in paths[path][method]["responses"], path
    amount = document["components"]["schemas"]["Money"]["properties"]["amount"]
    assert amount["maximum"] == 10**15 and amount["minimum"] == 0
