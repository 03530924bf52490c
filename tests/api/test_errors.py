"""Every error is application/problem+json with a stable code and the request id."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Account, Api

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "requestId"}
Request = Callable[[TestClient, Api], Any]


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert body.keys() >= PROBLEM_FIELDS
    assert body["status"] == status and body["code"] == code
    assert body["requestId"] == r.headers["x-request-id"]
    assert all(isinstance(body[k], str) and body[k] for k in PROBLEM_FIELDS - {"status"})
    return body


def errors_of(r: Any) -> list[dict[str, str]]:
    errors = r.json()["errors"]
    assert all(set(e) == {"field", "message"} and e["message"] for e in errors)
    return list(errors)


def _booked(api: Api) -> tuple[Account, Account, str]:
    customer, therapist = api.register("customer"), api.provider("therapist")
    return customer, therapist, api.book(customer, therapist)["booking"]["id"]


def _not_json(client: TestClient, api: Api) -> Any:
    customer = api.register()
    headers = {**customer.headers, "Content-Type": "application/json"}
    return client.post("/api/v1/bookings", headers=headers, content=b"{not json")


def _wrong_actor(client: TestClient, api: Api) -> Any:
    customer, _, booking_id = _booked(api)
    return api.act(customer, booking_id, "accept")


def _invalid_transition(client: TestClient, api: Api) -> Any:
    _, therapist, booking_id = _booked(api)
    return api.act(therapist, booking_id, "arrived")


def _email_taken(client: TestClient, api: Api) -> Any:
    account = api.register()
    body = {"email": account.email, "password": "x" * 8, "name": "x", "role": "customer"}
    return client.post("/api/v1/auth/register", json=body)


ERRORS: dict[str, tuple[Request, int, str]] = {
    "not signed in": (lambda c, a: c.get("/api/v1/bookings"), 401, "not_authenticated"),
    "bad token": (
        lambda c, a: c.get("/api/v1/me", headers={"Authorization": "Bearer nope"}),
        401,
        "invalid_token",
    ),
    "wrong credentials": (
        lambda c, a: c.post("/api/v1/auth/login", json={"email": "a@b.co", "password": "x"}),
        401,
        "invalid_credentials",
    ),
    "role not allowed": (
        lambda c, a: c.put("/api/v1/providers/me", headers=a.register().headers, json={}),
        403,
        "role_not_allowed",
    ),
    "wrong actor": (_wrong_actor, 403, "wrong_actor"),
    "unknown provider": (lambda c, a: c.get("/api/v1/providers/nobody"), 404, "not_found"),
    "unknown booking": (
        lambda c, a: c.get("/api/v1/bookings/nothing", headers=a.register().headers),
        404,
        "not_found",
    ),
    "unknown route": (lambda c, a: c.get("/api/v1/nowhere"), 404, "not_found"),
    # (an unknown path outside the API is the web app's: an HTML page, see tests/web)
    "wrong method": (lambda c, a: c.delete("/api/v1/providers"), 405, "method_not_allowed"),
    "invalid transition": (_invalid_transition, 409, "invalid_transition"),
    "email taken": (_email_taken, 409, "email_taken"),
    "invalid body": (
        lambda c, a: c.post("/api/v1/auth/register", json={"role": "admin"}),
        422,
        "validation_failed",
    ),
    "invalid query": (lambda c, a: c.get("/api/v1/providers?limit=500"), 422, "validation_failed"),
    "not json": (_not_json, 422, "validation_failed"),
}


@pytest.mark.parametrize(("request_", "status", "code"), ERRORS.values(), ids=list(ERRORS))
def test_every_error_is_a_problem(
    client: TestClient, api: Api, request_: Request, status: int, code: str
) -> None:
    body = assert_problem(request_(client, api), status, code)
    if status == 422:
        assert body["errors"], body
    else:
        assert "errors" not in body


def test_wrong_method_says_what_is_allowed(client: TestClient) -> None:
    r = client.delete("/api/v1/me")
    assert_problem(r, 405, "method_not_allowed")
    assert "GET" in r.headers["allow"]


def test_a_body_that_is_not_json_is_blamed_on_the_body(client: TestClient, api: Api) -> None:
    r = _not_json(client, api)
    assert [e["field"] for e in errors_of(r)] == ["body"]


def test_a_missing_body_is_named(client: TestClient, api: Api) -> None:
    r = client.post("/api/v1/bookings", headers=api.register().headers)
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in errors_of(r)] == ["body"]


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"location": {"kind": "hotel"}}, ["location.room"]),
        ({"location": {"kind": "home"}}, ["location.address"]),
        ({"location": {"kind": "boat"}}, ["location.kind"]),
        ({"location": {"kind": "hotel", "room": "x" * 51}}, ["location.room"]),
        ({"providerId": None, "serviceId": ""}, ["providerId", "serviceId"]),
        ({"mode": "later"}, ["mode"]),
        ({"mode": "scheduled", "startAt": None}, ["startAt"]),
        ({"guestName": "x" * 101}, ["guestName"]),
    ],
)
def test_validation_errors_name_fields_in_camel_case(
    client: TestClient, api: Api, overrides: dict[str, Any], fields: list[str]
) -> None:
    customer, therapist = api.register(), api.provider()
    r = client.post(
        "/api/v1/bookings", headers=customer.headers, json=api.book_body(therapist, **overrides)
    )
    body = assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in errors_of(r)] == fields
    assert all(field in body["detail"] for field in fields)


def test_nested_fields_of_other_bodies_are_camel_case(client: TestClient, api: Api) -> None:
    therapist = api.provider()
    r = client.post(
        "/api/v1/providers/me/services",
        headers=therapist.headers,
        json={"name": "x", "durationMinutes": "long", "price": {"amount": "free"}},
    )
    assert_problem(r, 422, "validation_failed")
    assert [e["field"] for e in errors_of(r)] == ["durationMinutes", "price.amount"]


# ---- request ids --------------------------------------------------------------------------


def test_every_response_carries_a_request_id(client: TestClient, api: Api) -> None:
    account = api.register()
    answers = [
        client.get("/healthz"),
        client.get("/api/v1/providers"),
        client.get("/api/v1/me", headers=account.headers),
        client.post("/api/v1/auth/logout", headers=account.headers),
        client.get("/api/v1/me", headers=account.headers),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 204, 401]
    ids = [r.headers["x-request-id"] for r in answers]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("incoming", ["req-123", "a" * 128, "01HZX:trace.7_b"])
def test_a_safe_incoming_request_id_is_echoed(client: TestClient, incoming: str) -> None:
    ok = client.get("/api/v1/providers", headers={"X-Request-ID": incoming})
    assert ok.headers["x-request-id"] == incoming
    failed = client.get("/api/v1/providers/nobody", headers={"X-Request-ID": incoming})
    assert assert_problem(failed, 404, "not_found")["requestId"] == incoming


@pytest.mark.parametrize("incoming", ["a" * 129, "has space", "<script>", "a/b"])
def test_an_unsafe_incoming_request_id_is_replaced(client: TestClient, incoming: str) -> None:
    r = client.get("/api/v1/providers/nobody", headers={"X-Request-ID": incoming})
    body = assert_problem(r, 404, "not_found")
    assert body["requestId"] != incoming and incoming not in r.text


def test_an_unexpected_failure_is_a_problem_with_the_request_id(
    client: TestClient, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = api.register()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("pesan.accounts.service.get_user", broken)
    r = client.get("/api/v1/me", headers={**account.headers, "X-Request-ID": "trace-500"})
    body = assert_problem(r, 500, "internal_error")
    assert body["requestId"] == "trace-500" and "trace-500" in body["detail"]
    assert "secret" not in r.text and "Traceback" not in r.text
