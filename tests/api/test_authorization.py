"""Who may do what: every private route, tried by nobody and by every role that is no party.

A customer books a therapist (so a booking, its conversation and messages exist). Then each
private route is called by a caller without a token, with a garbage token, and by accounts of
every role unrelated to that booking (and an admin). Outsiders must learn nothing (404, exactly
as for an id that does not exist), role-gated routes answer 403, and the booking, the
conversation and its messages are unchanged afterwards.

`test_every_private_route_is_in_the_matrix` fails when a route is added without a row here.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from tests.conftest import Account, Api

PREFIX = "/api/v1"
ROLES = ["customer", "therapist", "place", "hotel", "villa", "agent"]
BOOKERS = {"customer", "hotel", "villa", "agent"}
PROVIDERS = {"therapist", "place"}
CALLERS = ["nobody", "garbage", *ROLES, "admin"]
UNKNOWN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"

PUBLIC = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/providers"),
    ("GET", "/api/v1/providers/{provider_id}"),
    ("GET", "/api/v1/providers/{provider_id}/availability"),
    ("GET", "/api/v1/providers/{provider_id}/schedule"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
}


@dataclass
class World:
    customer: Account
    therapist: Account
    booking_id: str
    conversation_id: str
    message_id: str
    before: list[Any] = field(default_factory=list)
    free_times: list[str] = field(default_factory=list)

    def ids(self) -> dict[str, str]:
        return {
            "booking_id": self.booking_id,
            "conversation_id": self.conversation_id,
            "proposal_id": UNKNOWN_ID,
        }


# What an allowed outsider's call must look like beyond its status (it touched only its own data).
Check = Callable[[World, Account, Any], None]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    expect: Callable[[str], int]  # caller role -> status
    body: Callable[[World], Any] | None = None
    check: Check | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)


def parties_only(read: bool) -> Callable[[str], int]:
    """The booking's or conversation's own routes: outsiders 404; admins read but never act."""
    return lambda role: (200 if read else 403) if role == "admin" else 404


def roles(allowed: set[str], status: int) -> Callable[[str], int]:
    return lambda role: status if role in allowed else 403


def anyone(status: int) -> Callable[[str], int]:
    return lambda role: status


def _itself(world: World, caller: Account, r: Any) -> None:
    assert r.json()["id"] == caller.id


def _not_listed(field: str) -> Check:
    def check(world: World, caller: Account, r: Any) -> None:
        target = getattr(world, field)
        assert target not in [item["id"] for item in r.json()["items"]]

    return check


def _admin_sees_booking(world: World, caller: Account, r: Any) -> None:
    ids = [item["id"] for item in r.json()["items"]]
    assert (world.booking_id in ids) == (caller.role == "admin")


def _own_booking(world: World, caller: Account, r: Any) -> None:
    answer = r.json()
    assert answer["booking"]["id"] != world.booking_id
    assert answer["booking"]["customerId"] == caller.id
    assert answer["conversation"]["id"] != world.conversation_id


def _own_conversation(world: World, caller: Account, r: Any) -> None:
    assert r.json()["id"] != world.conversation_id
    assert caller.id in [p["id"] for p in r.json()["participants"]]


def _later_booking(world: World) -> dict[str, Any]:
    # A time of its own for each outsider's booking: the shared world's therapist is booked often.
    return {
        "providerId": world.therapist.id,
        "serviceId": world.therapist.service_ids[0],
        "mode": "scheduled",
        "startAt": world.free_times.pop(0),
        "location": {"kind": "hotel", "room": "12"},
    }


def _later_time(world: World) -> dict[str, Any]:
    return {"startAt": world.free_times[-1]}


def _service(world: World) -> dict[str, Any]:
    return {"name": "Reflexology", "durationMinutes": 60, "price": {"amount": 150000}}


BOOKING = "/api/v1/bookings/{booking_id}"
CONVERSATION = "/api/v1/conversations/{conversation_id}"

MATRIX = [
    Endpoint("POST", "/api/v1/auth/logout", anyone(204)),
    Endpoint("GET", "/api/v1/me", anyone(200), check=_itself),
    Endpoint(
        "PUT", "/api/v1/providers/me", roles(PROVIDERS, 200), lambda w: {"bio": "new"}, _itself
    ),
    Endpoint(
        "PUT",
        "/api/v1/providers/me/presence",
        roles(PROVIDERS, 200),
        lambda w: {"presence": "busy"},
        _itself,
    ),
    Endpoint("POST", "/api/v1/providers/me/services", roles(PROVIDERS, 201), _service),
    Endpoint("POST", "/api/v1/bookings", roles(BOOKERS, 201), _later_booking, _own_booking),
    Endpoint("GET", "/api/v1/bookings", anyone(200), check=_admin_sees_booking),
    Endpoint("GET", BOOKING, parties_only(read=True)),
    Endpoint("POST", f"{BOOKING}/accept", parties_only(read=False)),
    Endpoint("POST", f"{BOOKING}/decline", parties_only(read=False), lambda w: {"reason": "x"}),
    Endpoint("POST", f"{BOOKING}/on-the-way", parties_only(False), lambda w: {"etaMinutes": 20}),
    Endpoint("POST", f"{BOOKING}/arrived", parties_only(read=False)),
    Endpoint("POST", f"{BOOKING}/cancel", parties_only(read=False), lambda w: {"reason": "x"}),
    Endpoint("POST", f"{BOOKING}/complete", parties_only(read=False)),
    Endpoint("POST", f"{BOOKING}/no-show", parties_only(read=False)),
    Endpoint("GET", f"{BOOKING}/alternatives", parties_only(read=True)),
    Endpoint("GET", f"{BOOKING}/proposals", parties_only(read=True)),
    Endpoint("POST", f"{BOOKING}/proposals", parties_only(False), _later_time),
    Endpoint("POST", f"{BOOKING}/proposals/{{proposal_id}}/accept", parties_only(read=False)),
    Endpoint("POST", f"{BOOKING}/proposals/{{proposal_id}}/decline", parties_only(read=False)),
    Endpoint(
        "PUT",
        "/api/v1/providers/me/schedule",
        roles(PROVIDERS, 200),
        lambda w: {"weeklyHours": {"mon": [{"opens": "10:00", "closes": "18:00"}]}},
    ),
    Endpoint("GET", "/api/v1/conversations", anyone(200), check=_not_listed("conversation_id")),
    Endpoint(
        "POST",
        "/api/v1/conversations",
        roles(PROVIDERS | {"admin"}, 200),
        lambda w: {"participantId": w.customer.id},
        _own_conversation,
    ),
    Endpoint("GET", CONVERSATION, parties_only(read=True)),
    Endpoint("GET", f"{CONVERSATION}/messages", parties_only(read=True)),
    Endpoint(
        "POST",
        f"{CONVERSATION}/messages",
        parties_only(read=False),
        lambda w: {"content": "let me in", "clientMessageId": "intruder"},
    ),
    Endpoint(
        "POST",
        f"{CONVERSATION}/read",
        parties_only(read=False),
        lambda w: {"upToMessageId": w.message_id},
    ),
    Endpoint("GET", "/api/v1/admin/messages", roles({"admin"}, 200)),
]
WEBSOCKET = "/api/v1/ws"


def private_routes(app: FastAPI) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if not path.startswith(PREFIX):
            continue
        if isinstance(context.route, WebSocketRoute) or context.methods is None:
            found.add(("WS", path))
            continue
        found.update((method, path) for method in context.methods - {"HEAD", "OPTIONS"})
    return found - PUBLIC


def test_every_private_route_is_in_the_matrix(app: FastAPI):
    listed = {e.key for e in MATRIX} | {("WS", WEBSOCKET)}
    unlisted = private_routes(app) - listed
    assert not unlisted, f"add these routes to MATRIX in {__file__}: {sorted(unlisted)}"
    gone = listed - private_routes(app)
    assert not gone, f"these routes no longer exist; update MATRIX: {sorted(gone)}"


# ---- the world the outsiders try to get into -------------------------------------------------


@pytest.fixture(autouse=True)
def _clean() -> None:
    """Overrides conftest's: the matrix shares one world per backend instead of emptying every
    table before each of its hundreds of cases (that alone would take minutes). Every test here
    makes its own outsiders, and each checks that the shared world is exactly as it was."""


def build_world(api: Api) -> World:
    customer = api.register("customer", "Emma")
    therapist = api.provider("therapist")
    booked = api.book(customer, therapist, note="Gate code 1234")
    conversation_id = booked["conversation"]["id"]
    r = api.send(therapist, conversation_id, "I can come at 3")
    assert r.status_code == 201, r.text
    world = World(customer, therapist, booked["booking"]["id"], conversation_id, r.json()["id"])
    world.free_times = api.slots(therapist, 16, days=2)
    world.before = snapshot(api.client, world)
    return world


@pytest.fixture(scope="module")
def world(app: FastAPI) -> World:
    with TestClient(app, raise_server_exceptions=False) as client:
        return build_world(Api(client))


@pytest.fixture
def own_world(api: Api) -> World:
    """A world of its own, for a test that changes it."""
    return build_world(api)


def snapshot(client: TestClient, world: World) -> list[Any]:
    """Everything the parties see of their booking and conversation."""
    booking = f"/api/v1/bookings/{world.booking_id}"
    conversation = f"/api/v1/conversations/{world.conversation_id}"
    urls = [
        (world.customer, booking),
        (world.customer, "/api/v1/bookings"),
        (world.customer, conversation),
        (world.therapist, conversation),
        (world.customer, f"{conversation}/messages?limit=200"),
    ]
    out = []
    for who, url in urls:
        r = client.get(url, headers=who.headers)
        assert r.status_code == 200, (url, r.text)
        out.append(r.json())
    return out


def outsider(api: Api, make_admin: Any, caller: str) -> Account | None:
    if caller in ("nobody", "garbage"):
        return None
    return make_admin("Ops") if caller == "admin" else api.register(caller)


def headers_of(caller: str, account: Account | None) -> dict[str, str]:
    if caller == "garbage":
        return {"Authorization": "Bearer not-a-real-token"}
    return account.headers if account else {}


def call(
    client: TestClient, endpoint: Endpoint, world: World, headers: dict[str, str], **ids: str
) -> Any:
    url = endpoint.path.format(**(world.ids() | ids))
    body = endpoint.body(world) if endpoint.body else None
    return client.request(endpoint.method, url, headers=headers, json=body)


def comparable(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k != "requestId"}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", MATRIX, ids=lambda e: f"{e.method} {e.path}")
def test_outsiders_get_nothing(
    api: Api, client: TestClient, make_admin: Any, world: World, endpoint: Endpoint, caller: str
):
    account = outsider(api, make_admin, caller)
    headers = headers_of(caller, account)

    r = call(client, endpoint, world, headers)

    assert r.headers["x-request-id"]
    if account is None:
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == ("invalid_token" if caller == "garbage" else "not_authenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")
    else:
        expected = endpoint.expect(caller)
        assert r.status_code == expected, r.text
        if expected >= 400:
            assert r.headers["content-type"].startswith("application/problem+json")
        if expected == 404:
            # Indistinguishable from an id that does not exist: ids leak nothing.
            unknown = call(
                client, endpoint, world, headers, booking_id=UNKNOWN_ID, conversation_id=UNKNOWN_ID
            )
            assert comparable(r.json()) == comparable(unknown.json())
        if expected < 300 and endpoint.check:
            endpoint.check(world, account, r)
        if caller != "admin" and expected < 300 and r.status_code != 204:
            for secret in (world.customer.email, "Gate code 1234", world.booking_id):
                assert secret not in r.text
    assert snapshot(client, world) == world.before


# ---- the live socket -------------------------------------------------------------------------


def frames_until_ready(ws: Any) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        if frame["type"] == "ready":
            return frames


@pytest.mark.parametrize("token", [None, "", "not-a-real-token"])
def test_live_socket_refuses_without_a_valid_token(client: TestClient, token: str | None):
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(WEBSOCKET) as ws:
        ws.send_json({"type": "auth", "token": token, "lastEventId": None})
        ws.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize("caller", [*ROLES, "admin"])
def test_live_socket_replays_nothing_of_others(
    api: Api, client: TestClient, make_admin: Any, world: World, caller: str
):
    account = outsider(api, make_admin, caller)
    assert account is not None
    with client.websocket_connect(WEBSOCKET) as ws:
        ws.send_json({"type": "auth", "token": account.token, "lastEventId": "000000000000"})
        replayed = frames_until_ready(ws)
        ws.send_json({"type": "typing", "conversationId": world.conversation_id})
    for frame in replayed:
        text = str(frame)
        assert world.booking_id not in text and world.conversation_id not in text
    assert snapshot(client, world) == world.before


def test_live_socket_ignores_typing_into_no_real_conversation(
    api: Api, client: TestClient, own_world: World
):
    world = own_world
    with client.websocket_connect(WEBSOCKET) as ws:
        ws.send_json({"type": "auth", "token": world.customer.token, "lastEventId": None})
        frames_until_ready(ws)
        for conversation_id in ("01J\x00", "nonsense", UNKNOWN_ID):
            ws.send_json({"type": "typing", "conversationId": conversation_id})
        for text in ("still there?", "yes"):
            sent = api.send(world.therapist, world.conversation_id, text).json()
            frame = ws.receive_json()
            while frame["type"] != "message.created":
                frame = ws.receive_json()
            assert frame["data"]["id"] == sent["id"]


# ---- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic Y3VzdG9tZXI6cGFzcw==", "bearer-token", "Token abc", "Bearer a b"],
)
def test_malformed_authorization_is_refused(client: TestClient, world: World, authorization: str):
    for url in ("/api/v1/me", f"/api/v1/conversations/{world.conversation_id}"):
        r = client.get(url, headers={"Authorization": authorization})
        assert r.status_code == 401, (authorization, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_a_signed_out_token_opens_nothing(client: TestClient, own_world: World):
    world = own_world
    assert client.post("/api/v1/auth/logout", headers=world.customer.headers).status_code == 204
    for url in (
        "/api/v1/me",
        f"/api/v1/bookings/{world.booking_id}",
        f"/api/v1/conversations/{world.conversation_id}/messages",
    ):
        r = client.get(url, headers=world.customer.headers)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "invalid_token"
    # The other party's token is unaffected.
    r = client.get(f"/api/v1/bookings/{world.booking_id}", headers=world.therapist.headers)
    assert r.status_code == 200


def test_unauthenticated_is_decided_before_anything_leaks(client: TestClient, world: World):
    for booking_id in (world.booking_id, UNKNOWN_ID):
        r = client.get(f"/api/v1/bookings/{booking_id}")
        assert r.status_code == 401
    bad_body = client.post(f"/api/v1/conversations/{world.conversation_id}/messages", json={})
    assert bad_body.status_code == 401
