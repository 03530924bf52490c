"""The web pages meet the same limits as the API: throttled sign-in, sign-up, sends and Book Now
(a 429 page with Retry-After), sign-out closing the session's sockets, a 503 page for an
outage, and the security headers on every page."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from starlette.websockets import WebSocketDisconnect

from pesan import migrate
from pesan.app import create_app
from pesan.config import Settings
from tests.conftest import Api
from tests.web.conftest import Visitor, text_of


@contextmanager
def limited(
    backend: str, database_url_factory: Any, tmp_path: Path, **limits: str
) -> Iterator[tuple[Visitor, Api]]:
    settings = Settings(
        database_url=database_url_factory(backend),
        data_dir=tmp_path,
        limits_enabled=True,
        **limits,  # type: ignore[arg-type]
    )
    app = create_app(settings, check_schema=False)
    migrate.upgrade(app.state.db.engine)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            visitor = Visitor(client)
            visitor.language("en")
            yield visitor, Api(client)
    finally:
        app.state.db.dispose()


def assert_throttled_page(r: Any) -> None:
    assert r.status_code == 429, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert int(r.headers["retry-after"]) >= 1
    assert "Too many tries" in text_of(r.text)


def test_web_sign_in_is_throttled_per_account(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited(backend, database_url_factory, tmp_path, limit_login_account="2/minute") as (
        visitor,
        api,
    ):
        customer = api.register("customer")
        wrong = {"email": customer.email, "password": "guess", "next": "/"}
        assert [visitor.post("/signin", wrong).status_code for _ in range(2)] == [401, 401]
        assert_throttled_page(visitor.post("/signin", wrong))


def test_web_sign_up_is_throttled_per_address(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited(backend, database_url_factory, tmp_path, limit_register="1/hour") as (visitor, _):
        form = {
            "email": "a@example.com",
            "password": "long enough",
            "name": "A",
            "role": "customer",
        }
        assert visitor.post("/signup", form).status_code == 303
        visitor.client.cookies.clear()
        visitor.language("en")
        visitor.csrf = ""
        assert_throttled_page(visitor.post("/signup", {**form, "email": "b@example.com"}))


def test_web_sends_and_book_now_are_throttled_per_user(
    backend: str, database_url_factory: Any, tmp_path: Path
) -> None:
    with limited(
        backend, database_url_factory, tmp_path, limit_send="1/minute", limit_book="1/minute"
    ) as (visitor, api):
        customer, therapist = api.register("customer"), api.provider("therapist")
        visitor.sign_in(customer)
        conversation = api.book(customer, therapist)["conversation"]["id"]  # the one booking
        path = f"/chat/{conversation}/messages"
        assert visitor.post(path, {"content": "halo"}).status_code == 303
        assert_throttled_page(visitor.post(path, {"content": "lagi"}))
        script = visitor.post(path, {"content": "lagi"}, headers={"X-Requested-With": "pesan"})
        assert script.status_code == 429 and int(script.headers["retry-after"]) >= 1
        form = {
            "mode": "now",
            "service_id": therapist.service_ids[0],
            "location_kind": "home",
            "address": "Jl. Raya Ubud 1",
        }
        assert_throttled_page(visitor.post(f"/providers/{therapist.id}/book", form))


def test_web_sign_out_closes_the_sessions_sockets(visitor: Visitor, api: Api) -> None:
    customer = api.register("customer")
    visitor.sign_in(customer)
    with visitor.client.websocket_connect("/api/v1/ws") as ws:
        ws.send_text(json.dumps({"type": "auth", "token": None}))
        assert ws.receive_json()["type"] == "ready"
        assert visitor.post("/signout").status_code == 303
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


def test_a_database_outage_is_a_503_page_not_a_500(
    backend: str, database_url_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with limited(backend, database_url_factory, tmp_path) as (visitor, api):
        customer = api.register("customer")
        visitor.sign_in(customer)
        engine = visitor.client.app.state.db.engine  # type: ignore[attr-defined]

        def refuse(*_: Any) -> None:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("SELECT", {}, Exception("connection refused"))

        event.listen(engine, "before_cursor_execute", refuse)
        try:
            r = visitor.client.get("/dashboard")
        finally:
            event.remove(engine, "before_cursor_execute", refuse)
    assert r.status_code == 503, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert int(r.headers["retry-after"]) >= 1
    assert "Traceback" not in caplog.text
    assert "database unavailable on GET /dashboard" in caplog.text


def test_pages_carry_the_security_headers(visitor: Visitor) -> None:
    for path in ("/", "/signin", "/static/app.js", "/api/v1/docs"):
        r = visitor.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    page = visitor.client.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in page and "unsafe-inline" not in page
