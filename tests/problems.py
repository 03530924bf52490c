"""Assertions on problem+json answers, shared by the API tests."""

from typing import Any


def assert_problem(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """`r` is a problem+json error with this status (and code), carrying its request id."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert body["status"] == status
    assert body["requestId"] == r.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    return body


def error_fields(r: Any) -> list[str]:
    """The fields a validation problem names."""
    return [e["field"] for e in r.json()["errors"]]
