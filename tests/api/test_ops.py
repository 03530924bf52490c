"""/healthz, /readyz and /metrics: what an operator's load balancer and Prometheus see.

Tests that break a database make their own (and their own app); the shared `app` fixture's
database is never touched.
"""

from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from pesan import migrate
from pesan.app import create_app
from pesan.config import Settings
from pesan.migrate import SchemaNotReady
from tests.system.conftest import drop_table

READY_CHECKS = {"database", "schema", "write", "broker"}
OPERATOR_TOKEN = "ops-secret"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@contextmanager
def own_app(
    url: str, data_dir: Path, *, check_schema: bool = False, **settings: Any
) -> Iterator[FastAPI]:
    settings.setdefault("metrics_token", OPERATOR_TOKEN)
    app = create_app(
        Settings(database_url=url, data_dir=data_dir, **settings), check_schema=check_schema
    )
    try:
        yield app
    finally:
        app.state.db.dispose()


@pytest.fixture
def upgraded_url(backend: str, database_url_factory: Any, tmp_path: Path) -> str:
    """A database of this test's backend, of its own, at the head revision."""
    url = str(database_url_factory(backend))
    with own_app(url, tmp_path) as app:
        migrate.upgrade(app.state.db.engine)
    return url


def metric(client: TestClient, name: str, **labels: str) -> float:
    """A sample's value from /metrics (0 if it was never recorded)."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_healthz_answers_while_the_process_lives(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_checks_database_schema_write_and_broker(upgraded_url: str, tmp_path: Path) -> None:
    with own_app(upgraded_url, tmp_path) as app, TestClient(app) as client:
        r = client.get("/readyz", headers=OPERATOR)
        public = client.get("/readyz")
        guessed = client.get("/readyz", headers={"Authorization": "Bearer guess"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == READY_CHECKS
    for name, check in body["checks"].items():
        assert check["ok"] is True, name
        assert isinstance(check["detail"], str) and check["detail"], name
    # The public (and a wrong token) gets the status alone: no driver text, no paths.
    assert public.status_code == guessed.status_code == 200
    assert public.json() == guessed.json() == {"status": "ok"}


def test_readyz_shows_no_detail_without_a_metrics_token(client: TestClient) -> None:
    r = client.get("/readyz", headers={"Authorization": "Bearer "})
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_is_503_naming_a_dropped_table(upgraded_url: str, tmp_path: Path) -> None:
    drop_table(upgraded_url, "messages")
    with own_app(upgraded_url, tmp_path) as app, TestClient(app) as client:
        r = client.get("/readyz", headers=OPERATOR)
        public = client.get("/readyz")
    assert public.status_code == 503
    assert public.json() == {"status": "unavailable"}
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["schema"]["ok"] is False
    assert "messages" in body["checks"]["schema"]["detail"]
    assert "pesan db upgrade" in body["checks"]["schema"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_is_503_when_the_database_takes_no_writes(
    upgraded_url: str, backend: str, tmp_path: Path
) -> None:
    """Reads still work, so only a real write finds this (a replica, a read-only mount)."""
    if backend == "postgresql":
        name = upgraded_url.rsplit("/", 1)[1]
        with psycopg.connect(upgraded_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    with own_app(upgraded_url, tmp_path) as app:
        if backend == "sqlite":

            @event.listens_for(app.state.db.engine, "connect")
            def _read_only(dbapi_connection: Any, _record: Any) -> None:
                with closing(dbapi_connection.cursor()) as cursor:
                    cursor.execute("PRAGMA query_only = ON")

        with TestClient(app) as client:
            r = client.get("/readyz", headers=OPERATOR)
    assert r.status_code == 503, r.text
    checks = r.json()["checks"]
    assert checks["write"]["ok"] is False
    assert "only" in checks["write"]["detail"]  # "readonly database", "read-only transaction"
    assert "writable" in checks["write"]["fix"]
    assert checks["database"]["ok"] is True
    assert checks["schema"]["ok"] is True


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    route = "/api/v1/providers/{provider_id}"
    before = metric(client, "pesan_http_requests_total", route=route, status="404")
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/providers/01ARZ3NDEKTSV4RRFFQ69G5FAV").status_code == 404

    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE pesan_http_requests_total counter" in r.text
    assert "# TYPE pesan_http_request_duration_seconds histogram" in r.text
    assert metric(client, "pesan_http_requests_total", route="/healthz", status="200") >= 1
    assert metric(client, "pesan_http_requests_total", route=route, status="404") == before + 1
    assert metric(client, "pesan_http_request_duration_seconds_count", route=route) >= 1
    # Labelled by template, never by the raw path: one series per route, not per id.
    assert "01ARZ3NDEKTSV4RRFFQ69G5FAV" not in r.text


def test_metrics_count_bookings_created_and_messages_sent(client: TestClient, api: Any) -> None:
    customer = api.register("customer")
    therapist = api.provider("therapist")
    created = metric(client, "pesan_bookings_created_total", outcome="created")
    sent = metric(client, "pesan_messages_sent_total", type="text")

    booking = api.book(customer, therapist)
    assert metric(client, "pesan_bookings_created_total", outcome="created") == created + 1
    r = api.send(customer, booking["conversation"]["id"], "Terima kasih!")
    assert r.status_code == 201, r.text
    assert metric(client, "pesan_messages_sent_total", type="text") == sent + 1


def test_metrics_need_the_token_when_one_is_set(database_url_factory: Any, tmp_path: Path) -> None:
    url = database_url_factory("sqlite")
    with own_app(url, tmp_path, metrics_token="scrape-me") as app, TestClient(app) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    for r in (missing, wrong):
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "pesan_http_requests_total" not in r.text
    assert right.status_code == 200
    assert "pesan_http_requests_total" in right.text


def test_app_refuses_to_start_on_a_dropped_table(upgraded_url: str, tmp_path: Path) -> None:
    drop_table(upgraded_url, "messages")
    with (
        own_app(upgraded_url, tmp_path, check_schema=True) as app,
        pytest.raises(SchemaNotReady, match="messages"),
        TestClient(app),
    ):
        pass


def test_app_starts_on_a_schema_at_head(upgraded_url: str, tmp_path: Path) -> None:
    with own_app(upgraded_url, tmp_path, check_schema=True) as app, TestClient(app) as client:
        assert client.get("/readyz").status_code == 200


def test_web_pages_are_counted_by_their_route_template_too(client: TestClient) -> None:
    before = metric(
        client, "pesan_http_requests_total", route="/providers/{provider_id}", status="404"
    )
    client.get("/providers/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    after = metric(
        client, "pesan_http_requests_total", route="/providers/{provider_id}", status="404"
    )
    assert after == before + 1
