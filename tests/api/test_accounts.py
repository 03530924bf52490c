"""Register, sign in, sign out, and who the caller is."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api
from tests.problems import assert_problem, error_fields

USER_FIELDS = {"id", "email", "name", "role", "createdAt"}


def email() -> str:
    return f"made-{uuid.uuid4().hex[:8]}@example.com"


def register(client: TestClient, **overrides: Any) -> Any:
    body = {"email": email(), "password": "correct horse", "name": "Made", "role": "customer"}
    return client.post("/api/v1/auth/register", json={**body, **overrides})


def login(client: TestClient, address: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"email": address, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- register -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["customer", "therapist", "place", "hotel", "villa", "agent"])
def test_register_answers_a_token_and_the_user(client: TestClient, role: str) -> None:
    address = email()
    r = register(client, email=address, name="Made Wirawan", role=role)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"token", "user"}
    assert set(body["user"]) == USER_FIELDS
    assert body["user"]["email"] == address
    assert body["user"]["name"] == "Made Wirawan" and body["user"]["role"] == role
    assert body["user"]["createdAt"].endswith("Z")
    me = client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json() == body["user"]


def test_the_legacy_role_user_means_customer(client: TestClient) -> None:
    r = register(client, role="user")
    assert r.status_code == 201, r.text
    assert r.json()["user"]["role"] == "customer"


def test_nobody_registers_as_admin(client: TestClient) -> None:
    r = register(client, role="admin")
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == ["role"]


def test_an_email_is_taken_whatever_its_case(client: TestClient) -> None:
    address = email()
    assert register(client, email=address).status_code == 201
    for again in (address, address.upper(), f"  {address.title()} "):
        assert_problem(register(client, email=again, role="therapist"), 409, "email_taken")


def test_the_email_is_kept_in_lower_case(client: TestClient) -> None:
    address = email()
    r = register(client, email=address.upper())
    assert r.status_code == 201, r.text
    assert r.json()["user"]["email"] == address


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "x" * 201}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"name": "   "}, "name"),
        ({"role": "spa"}, "role"),
    ],
)
def test_register_validation_names_the_field(
    client: TestClient, overrides: dict[str, Any], field: str
) -> None:
    r = register(client, **overrides)
    body = assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [field]
    assert field in body["detail"]


def test_missing_fields_are_all_listed(client: TestClient) -> None:
    r = client.post("/api/v1/auth/register", json={})
    assert_problem(r, 422, "validation_failed")
    assert sorted(error_fields(r)) == ["email", "name", "password", "role"]


def test_a_password_is_taken_exactly_as_typed(client: TestClient) -> None:
    address = email()
    r = register(client, email=address, password="  1234567")  # 9 characters, spaces count
    assert r.status_code == 201, r.text
    assert login(client, address, "  1234567").status_code == 200
    assert_problem(login(client, address, "1234567"), 401, "invalid_credentials")


# ---- login and logout ---------------------------------------------------------------------


def test_login_answers_a_new_token(api: Api, client: TestClient) -> None:
    account = api.register("villa")
    r = login(client, account.email.upper(), "correct horse")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["id"] == account.id and body["user"]["email"] == account.email
    assert body["token"] != account.token
    assert client.get("/api/v1/me", headers=bearer(body["token"])).json()["id"] == account.id


def test_wrong_credentials_are_refused_alike(api: Api, client: TestClient) -> None:
    account = api.register()
    wrong = assert_problem(login(client, account.email, "wrong horse"), 401, "invalid_credentials")
    unknown = assert_problem(login(client, email(), "correct horse"), 401, "invalid_credentials")
    assert wrong["detail"] == unknown["detail"]  # nothing tells whether the email exists
    assert "token" not in wrong and "token" not in unknown


def test_an_admin_made_from_the_command_line_signs_in(client: TestClient, make_admin: Any) -> None:
    admin = make_admin("Root")
    r = login(client, admin.email, "admin pass")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "admin"


def test_logout_revokes_the_token(api: Api, client: TestClient) -> None:
    account = api.register()
    other = login(client, account.email, "correct horse").json()["token"]
    r = client.post("/api/v1/auth/logout", headers=account.headers)
    assert r.status_code == 204 and r.content == b""
    assert_problem(client.get("/api/v1/me", headers=account.headers), 401, "invalid_token")
    assert_problem(
        client.post("/api/v1/auth/logout", headers=account.headers), 401, "invalid_token"
    )
    # only that token: the account's other sessions stay signed in
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200


def test_logout_needs_sign_in(client: TestClient) -> None:
    assert_problem(client.post("/api/v1/auth/logout"), 401, "not_authenticated")


# ---- me -----------------------------------------------------------------------------------


def test_me_shows_the_caller_with_their_email(api: Api, client: TestClient) -> None:
    account = api.register("agent", "Komang")
    r = client.get("/api/v1/me", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == account.id and r.json()["email"] == account.email
    assert r.json()["name"] == "Komang" and r.json()["role"] == "agent"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "not_authenticated"),
        ({"Authorization": "Bearer not-a-token"}, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not_authenticated"),
    ],
)
def test_me_needs_a_valid_token(client: TestClient, headers: dict[str, str], code: str) -> None:
    r = client.get("/api/v1/me", headers=headers)
    assert_problem(r, 401, code)
    assert r.headers["www-authenticate"] == "Bearer"


def test_other_users_never_see_an_email(api: Api, client: TestClient) -> None:
    customer = api.register()
    therapist = api.provider()
    answer = api.book(customer, therapist)
    conversation = client.get(
        f"/api/v1/conversations/{answer['conversation']['id']}", headers=therapist.headers
    )
    assert conversation.status_code == 200, conversation.text
    assert customer.email not in conversation.text
    assert therapist.email not in client.get(f"/api/v1/providers/{therapist.id}").text
