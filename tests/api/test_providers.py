"""Provider profiles, presence and services, and the public provider list."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Account, Api
from tests.problems import assert_problem, error_fields

PROFILE_FIELDS = {
    "id",
    "type",
    "name",
    "bio",
    "languages",
    "timezone",
    "area",
    "presence",
    "busyUntil",
    "services",
}


def put_profile(client: TestClient, who: Account, **body: Any) -> Any:
    return client.put("/api/v1/providers/me", headers=who.headers, json=body)


def put_presence(client: TestClient, who: Account, **body: Any) -> Any:
    return client.put("/api/v1/providers/me/presence", headers=who.headers, json=body)


def add_service(client: TestClient, who: Account, **body: Any) -> Any:
    body = {"name": "Foot reflexology", "durationMinutes": 60, "price": {"amount": 150000}, **body}
    return client.post("/api/v1/providers/me/services", headers=who.headers, json=body)


def listed(client: TestClient, query: str = "") -> list[str]:
    r = client.get(f"/api/v1/providers{query}")
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["items"]]


# ---- own profile --------------------------------------------------------------------------


def test_a_provider_creates_its_profile(api: Api, client: TestClient) -> None:
    therapist = api.register("therapist", "Wayan")
    r = put_profile(client, therapist, bio="Balinese massage", languages=["id", "en"], area="Ubud")
    assert r.status_code == 200, r.text
    profile = r.json()
    assert set(profile) == PROFILE_FIELDS
    assert profile["id"] == therapist.id and profile["type"] == "therapist"
    assert profile["name"] == "Wayan"  # the account name until the provider sets another
    assert profile["bio"] == "Balinese massage" and profile["languages"] == ["id", "en"]
    assert profile["area"] == "Ubud" and profile["timezone"] == "Asia/Makassar"
    assert profile["presence"] == "offline" and profile["busyUntil"] is None
    assert profile["services"] == []
    assert client.get(f"/api/v1/providers/{therapist.id}").json() == profile


def test_a_provider_updates_its_profile_and_keeps_its_presence(
    api: Api, client: TestClient
) -> None:
    place = api.provider("place")
    r = put_profile(
        client, place, name="Ubud Spa", bio="Day spa", area="Ubud Centre", timezone="Asia/Jakarta"
    )
    assert r.status_code == 200, r.text
    profile = client.get(f"/api/v1/providers/{place.id}").json()
    assert profile["type"] == "place" and profile["name"] == "Ubud Spa"
    assert profile["bio"] == "Day spa" and profile["area"] == "Ubud Centre"
    assert profile["timezone"] == "Asia/Jakarta"
    assert profile["presence"] == "available"
    assert [s["id"] for s in profile["services"]] == place.service_ids


@pytest.mark.parametrize("role", ["customer", "hotel", "villa", "agent"])
def test_only_providers_have_a_profile(api: Api, client: TestClient, role: str) -> None:
    account = api.register(role)
    assert_problem(put_profile(client, account, bio="x"), 403, "role_not_allowed")
    assert_problem(put_presence(client, account, presence="available"), 403, "role_not_allowed")
    assert_problem(add_service(client, account), 403, "role_not_allowed")
    assert_problem(client.get(f"/api/v1/providers/{account.id}"), 404, "not_found")


def test_admins_have_no_profile(client: TestClient, make_admin: Any) -> None:
    assert_problem(put_profile(client, make_admin(), bio="x"), 403, "role_not_allowed")


def test_the_profile_needs_sign_in(client: TestClient) -> None:
    r = client.put("/api/v1/providers/me", json={"bio": "x"})
    assert_problem(r, 401, "not_authenticated")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"languages": ["english!"]}, "languages"),
        ({"name": ""}, "name"),
        ({"bio": "x" * 2001}, "bio"),
    ],
)
def test_profile_validation_names_the_field(
    api: Api, client: TestClient, body: dict[str, Any], field: str
) -> None:
    therapist = api.register("therapist")
    r = put_profile(client, therapist, **body)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [field]
    assert_problem(client.get(f"/api/v1/providers/{therapist.id}"), 404, "not_found")


def test_the_profile_shows_no_email(api: Api, client: TestClient) -> None:
    therapist = api.provider()
    assert therapist.email.lower() not in client.get(f"/api/v1/providers/{therapist.id}").text
    assert therapist.email.lower() not in client.get("/api/v1/providers").text


# ---- presence -----------------------------------------------------------------------------


def test_busy_with_a_hint_then_available_clears_it(api: Api, client: TestClient) -> None:
    therapist = api.provider(presence="offline")
    bali = timezone(timedelta(hours=8))
    until = (datetime.now(bali) + timedelta(hours=2)).replace(microsecond=0)
    r = put_presence(client, therapist, presence="busy", busyUntil=until.isoformat())
    assert r.status_code == 200, r.text
    assert r.json()["presence"] == "busy"
    assert r.json()["busyUntil"] == until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert client.get(f"/api/v1/providers/{therapist.id}").json()["busyUntil"] is not None

    r = put_presence(client, therapist, presence="available")
    assert r.status_code == 200, r.text
    assert r.json()["presence"] == "available" and r.json()["busyUntil"] is None
    profile = client.get(f"/api/v1/providers/{therapist.id}").json()
    assert profile["presence"] == "available" and profile["busyUntil"] is None


def test_busy_without_a_hint(api: Api, client: TestClient) -> None:
    therapist = api.provider()
    r = put_presence(client, therapist, presence="busy")
    assert r.status_code == 200, r.text
    assert r.json()["presence"] == "busy" and r.json()["busyUntil"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"presence": "busy", "busyUntil": "2020-01-01T00:00:00Z"}, "busyUntil"),
        ({"presence": "busy", "busyUntil": "2099-01-01T00:00:00"}, "busyUntil"),
        ({"presence": "offline", "busyUntil": "2099-01-01T00:00:00Z"}, "busyUntil"),
        ({"presence": "away"}, "presence"),
        ({}, "presence"),
    ],
    ids=["past", "no-offset", "not-busy", "unknown", "missing"],
)
def test_presence_validation(
    api: Api, client: TestClient, body: dict[str, Any], field: str
) -> None:
    therapist = api.provider(presence="available")
    r = put_presence(client, therapist, **body)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [field]
    profile = client.get(f"/api/v1/providers/{therapist.id}").json()
    assert profile["presence"] == "available" and profile["busyUntil"] is None


def test_setting_presence_first_makes_the_profile(api: Api, client: TestClient) -> None:
    therapist = api.register("therapist", "Ketut")
    r = put_presence(client, therapist, presence="available")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Ketut" and r.json()["presence"] == "available"


# ---- services -----------------------------------------------------------------------------


def test_a_new_service_appears_on_the_profile(api: Api, client: TestClient) -> None:
    therapist = api.provider()
    r = add_service(
        client, therapist, name="Hot stone", durationMinutes=120, price={"amount": 350000}
    )
    assert r.status_code == 201, r.text
    service = r.json()
    assert set(service) == {"id", "name", "durationMinutes", "price"}
    assert service["name"] == "Hot stone" and service["durationMinutes"] == 120
    assert service["price"] == {"amount": 350000, "currency": "IDR"}
    services = client.get(f"/api/v1/providers/{therapist.id}").json()["services"]
    assert [s["id"] for s in services] == [therapist.service_ids[0], service["id"]]
    assert services[1] == service


def test_a_service_keeps_its_currency(api: Api, client: TestClient) -> None:
    therapist = api.provider()
    r = add_service(client, therapist, price={"amount": 4500, "currency": "USD"})
    assert r.status_code == 201, r.text
    assert r.json()["price"] == {"amount": 4500, "currency": "USD"}


def test_a_booking_takes_the_price_of_its_service(api: Api, client: TestClient) -> None:
    therapist = api.provider()
    r = add_service(client, therapist, durationMinutes=30, price={"amount": 75000})
    customer = api.register()
    booking = api.book(customer, therapist, serviceId=r.json()["id"])["booking"]
    assert booking["price"] == {"amount": 75000, "currency": "IDR"}
    start, end = (datetime.fromisoformat(booking[k]) for k in ("startAt", "endAt"))
    assert end - start == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"durationMinutes": 4}, "durationMinutes"),
        ({"durationMinutes": 721}, "durationMinutes"),
        ({"price": {"amount": -1}}, "price.amount"),
        ({"price": {"amount": 1, "currency": "rupiah"}}, "price.currency"),
        ({"name": "  "}, "name"),
    ],
)
def test_service_validation_names_the_field(
    api: Api, client: TestClient, body: dict[str, Any], field: str
) -> None:
    therapist = api.provider()
    r = add_service(client, therapist, **body)
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [field]
    services = client.get(f"/api/v1/providers/{therapist.id}").json()["services"]
    assert [s["id"] for s in services] == therapist.service_ids


# ---- reading and listing ------------------------------------------------------------------


def test_an_unknown_provider_is_not_found(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/providers/01ZZZZZZZZZZZZZZZZZZZZZZZZ"), 404, "not_found")


def test_anyone_may_read_profiles(api: Api, client: TestClient) -> None:
    therapist = api.provider()
    r = client.get(f"/api/v1/providers/{therapist.id}")
    assert r.status_code == 200, r.text
    assert r.json()["services"][0]["price"] == {"amount": 200000, "currency": "IDR"}
    assert client.get("/api/v1/providers").json()["items"][0]["id"] == therapist.id


@pytest.fixture
def marketplace(api: Api, client: TestClient) -> dict[str, Account]:
    people = {
        "wayan": api.provider("therapist", presence="available", area="Ubud"),
        "ketut": api.provider("therapist", presence="busy", area="Seminyak"),
        "spa": api.provider("place", presence="available", area="Ubud"),
        "salon": api.provider("place", presence="offline", area="Canggu"),
    }
    put_profile(client, people["wayan"], name="Wayan Sudarma", bio="Deep tissue", area="Ubud")
    put_profile(client, people["spa"], name="Lotus Spa", bio="Flower bath 100%", area="Ubud")
    return people


def test_the_list_filters_by_type_area_and_presence(
    client: TestClient, marketplace: dict[str, Account]
) -> None:
    ids = {name: account.id for name, account in marketplace.items()}

    def names(query: str) -> set[str]:
        by_id = {v: k for k, v in ids.items()}
        return {by_id[i] for i in listed(client, query)}

    assert names("") == set(ids)
    assert names("?type=therapist") == {"wayan", "ketut"}
    assert names("?type=place") == {"spa", "salon"}
    assert names("?area=ubud") == {"wayan", "spa"}
    assert names("?presence=available") == {"wayan", "spa"}
    assert names("?presence=busy") == {"ketut"}
    assert names("?presence=offline") == {"salon"}
    assert names("?type=place&area=Ubud&presence=available") == {"spa"}
    assert names("?area=Kuta") == set()


def test_the_list_searches_name_bio_and_area(
    client: TestClient, marketplace: dict[str, Account]
) -> None:
    def found(q: str) -> set[str]:
        return set(listed(client, f"?q={q}"))

    assert found("wayan") == {marketplace["wayan"].id}
    assert found("DEEP") == {marketplace["wayan"].id}
    assert found("canggu") == {marketplace["salon"].id}
    assert found("lotus") == {marketplace["spa"].id}
    assert found("%25") == {marketplace["spa"].id}  # a literal %, not a wildcard
    assert found("_") == set()


def test_the_list_pages_with_a_cursor(api: Api, client: TestClient) -> None:
    made = {api.provider(area="Ubud").id for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(f"/api/v1/providers{query}")
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) <= 2
        seen += [p["id"] for p in r.json()["items"]]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(made) and set(seen) == made


@pytest.mark.parametrize(
    ("query", "field"),
    [("?type=hotel", "type"), ("?presence=away", "presence"), ("?limit=0", "limit")],
)
def test_list_filters_are_validated(client: TestClient, query: str, field: str) -> None:
    r = client.get(f"/api/v1/providers{query}")
    assert_problem(r, 422, "validation_failed")
    assert error_fields(r) == [field]


def test_a_providers_first_requests_at_once_make_one_profile(api, client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    therapist = api.register("therapist")

    def add(i: int) -> int:
        return client.post(
            "/api/v1/providers/me/services",
            headers=therapist.headers,
            json={"name": f"Massage {i}", "durationMinutes": 60, "price": {"amount": 100000}},
        ).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(add, range(4))) == [201] * 4
    profile = client.get(f"/api/v1/providers/{therapist.id}").json()
    assert len(profile["services"]) == 4
