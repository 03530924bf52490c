"""Test fixtures: a real database (SQLite file, then PostgreSQL), never a mock.

Every API test runs once per backend (`[sqlite]`, `[postgresql]`). With CI set, a backend
that cannot be reached fails the run instead of being skipped.
"""

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.setdefault("PESAN_ARGON2_TIME_COST", "1")
os.environ.setdefault("PESAN_ARGON2_MEMORY_KIB", "64")
# The suite's processes (and the servers they start) run far from UTC, in UTC+14, as its
# PostgreSQL sessions run in Asia/Makassar: pesan must depend on neither zone.
os.environ.setdefault("TZ", "Pacific/Kiritimati")
# Throttling is tested on apps of its own; the rest of the suite signs in freely.
os.environ.setdefault("PESAN_LIMITS_ENABLED", "false")

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from pesan import migrate
from pesan.app import create_app
from pesan.config import Settings, get_settings

get_settings.cache_clear()
time.tzset()  # the TZ above, for this process

PG_ADMIN_URL = os.environ.get("PESAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PESAN_TEST_REDIS", "redis://127.0.0.1:6379/0")
PG_SESSION_TIMEZONE = "Asia/Makassar"
IN_CI = bool(os.environ.get("CI"))
BACKENDS = os.environ.get("PESAN_TEST_BACKENDS", "sqlite,postgresql").split(",")


def unavailable(what: str, exc: BaseException) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI and cannot be reached: {exc}")
    pytest.skip(f"{what} not reachable: {exc}")


@dataclass
class PgDatabase:
    url: str
    name: str

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def create_pg_database() -> PgDatabase:
    name = f"pesan_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # A server east of UTC, as in Bali: pesan must not depend on the session's zone.
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone = '{PG_SESSION_TIMEZONE}'")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return PgDatabase(url=f"{base}/{name}", name=name)


@pytest.fixture(scope="session")
def database_url_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Makes empty databases of either kind; drops the PostgreSQL ones at the end."""
    made: list[PgDatabase] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("db") / "pesan.sqlite3"
            return f"sqlite:///{path}"
        try:
            pg = create_pg_database()
        except Exception as exc:
            unavailable("PostgreSQL", exc)
            raise
        made.append(pg)
        return pg.url

    yield make
    for pg in made:
        pg.drop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `backend_only("postgresql")` runs for that backend only: its other
    parametrisations are deselected (not skipped: there is nothing there to run)."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("backend_only")
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        backend = params.get("backend") or params.get("database_url")
        if marker is not None and backend is not None and backend != marker.args[0]:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def app(
    backend: str, database_url_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    url = database_url_factory(backend)
    # Periodic work is run by the tests themselves, at the times they choose.
    settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("data"), run_jobs=False)
    application = create_app(settings, check_schema=False)
    migrate.upgrade(application.state.db.engine)
    yield application
    application.state.db.dispose()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    """Empty every table before each test that uses the app."""
    if "app" not in request.fixturenames:
        return
    application: FastAPI = request.getfixturevalue("app")
    engine = application.state.db.engine
    tables = [t.name for t in reversed(migrate.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


class FakeClock:
    """A clock the test moves: the app's routes and jobs read their `now` from it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FakeClock]:
    """The app's clock, stopped at the start of the next whole hour (UTC) until moved."""
    now = datetime.now(UTC)
    fake = FakeClock(now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
    previous = app.state.clock
    app.state.clock = fake
    yield fake
    app.state.clock = previous


@pytest.fixture
def settings_override(app: FastAPI) -> Iterator[Any]:
    """Change the app's settings for one test: `settings_override(answer_now_seconds=3)`."""
    original = app.state.settings

    def override(**changes: Any) -> None:
        app.state.settings = original.model_copy(update=changes)

    yield override
    app.state.settings = original


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_job(app: FastAPI, name: str) -> int:
    """Run one periodic job once, as the ticker would, at the app's clock's time."""
    from pesan import scheduled

    job = next(j for j in scheduled.JOBS if j.name == name)
    return job.run(app.state.db, app.state.clock.now(), app.state.settings)


# ---- factories: make data in one line -------------------------------------------------------


@dataclass
class Account:
    id: str
    token: str
    role: str
    name: str
    email: str
    service_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """Thin helpers over the public HTTP API, so tests read like a user's steps."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._n = 0

    def register(self, role: str = "customer", name: str | None = None) -> Account:
        self._n += 1
        email = f"{role}{self._n}-{uuid.uuid4().hex[:6]}@example.com"
        name = name or f"{role.title()} {self._n}"
        r = self.client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "correct horse", "name": name, "role": role},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Account(body["user"]["id"], body["token"], role, name, email)

    def provider(
        self,
        role: str = "therapist",
        presence: str = "available",
        area: str = "Ubud",
        price: int = 200000,
    ) -> Account:
        account = self.register(role)
        r = self.client.put(
            "/api/v1/providers/me",
            headers=account.headers,
            json={"bio": "Balinese massage", "languages": ["id", "en"], "area": area},
        )
        assert r.status_code == 200, r.text
        r = self.client.post(
            "/api/v1/providers/me/services",
            headers=account.headers,
            json={"name": "Balinese massage", "durationMinutes": 90, "price": {"amount": price}},
        )
        assert r.status_code == 201, r.text
        account.service_ids.append(r.json()["id"])
        r = self.client.put(
            "/api/v1/providers/me/presence", headers=account.headers, json={"presence": presence}
        )
        assert r.status_code == 200, r.text
        return account

    def book_body(self, provider: Account, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "providerId": provider.id,
            "serviceId": provider.service_ids[0],
            "mode": "now",
            "location": {"kind": "villa", "room": "Villa 3"},
            "guestName": "Anna",
        }
        body.update(overrides)
        return body

    def slots(
        self,
        provider: Account,
        count: int = 1,
        *,
        days: float = 1,
        service: int = 0,
        after: datetime | None = None,
    ) -> list[str]:
        """`count` free start times of `provider` from `days` after `after` (default: now), far
        enough apart to book them all (as the availability endpoint offers them)."""
        start = (after or datetime.now(UTC)) + timedelta(days=days)
        r = self.client.get(
            f"/api/v1/providers/{provider.id}/availability",
            params={
                "serviceId": provider.service_ids[service],
                "from": start.isoformat(),
                "to": (start + timedelta(days=7)).isoformat(),
            },
        )
        assert r.status_code == 200, r.text
        chosen: list[str] = []
        free_from = start
        for item in r.json()["items"]:
            begins = datetime.fromisoformat(item["startAt"].replace("Z", "+00:00"))
            if begins >= free_from:
                chosen.append(item["startAt"])
                free_from = datetime.fromisoformat(item["endAt"].replace("Z", "+00:00"))
                free_from += timedelta(minutes=60)  # past any buffer
            if len(chosen) == count:
                return chosen
        raise AssertionError(f"only {len(chosen)} free times for {provider.name}")

    def slot(self, provider: Account, *, days: float = 1, after: datetime | None = None) -> str:
        return self.slots(provider, 1, days=days, after=after)[0]

    def schedule(self, provider: Account, **body: Any) -> dict[str, Any]:
        """Set the provider's schedule (weekly hours as {"mon": [["09:00", "12:00"]], ...})."""
        weekly = body.pop("weekly", None)
        if weekly is not None:
            body["weeklyHours"] = {
                day: [{"opens": o, "closes": c} for o, c in intervals]
                for day, intervals in weekly.items()
            }
        body.setdefault("weeklyHours", {})
        r = self.client.put("/api/v1/providers/me/schedule", headers=provider.headers, json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def availability(self, provider: Account, start: datetime, end: datetime) -> list[datetime]:
        r = self.client.get(
            f"/api/v1/providers/{provider.id}/availability",
            params={
                "serviceId": provider.service_ids[0],
                "from": start.isoformat(),
                "to": end.isoformat(),
            },
        )
        assert r.status_code == 200, r.text
        return [parse_time(i["startAt"]) for i in r.json()["items"]]

    def book(self, booker: Account, provider: Account, **overrides: Any) -> dict[str, Any]:
        r = self.client.post(
            "/api/v1/bookings", headers=booker.headers, json=self.book_body(provider, **overrides)
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def act(self, who: Account, booking_id: str, action: str, body: Any = None) -> Any:
        return self.client.post(
            f"/api/v1/bookings/{booking_id}/{action}", headers=who.headers, json=body
        )

    def send(self, who: Account, conversation_id: str, content: str, **extra: Any) -> Any:
        return self.client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            headers=who.headers,
            json={"content": content, **extra},
        )

    def conversation(self, a: Account, b: Account) -> str:
        r = self.client.post(
            "/api/v1/conversations", headers=a.headers, json={"participantId": b.id}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["id"])


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def make_admin(app: FastAPI) -> Any:
    """Admins are made only from the CLI's code path; tests call the same function."""
    from pesan.accounts.service import create_user
    from pesan.auth import issue_token
    from pesan.roles import Role

    def make(name: str = "Admin") -> Account:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        with app.state.db.transaction() as session:
            user = create_user(
                session, email=email, password="admin pass", name=name, role=Role.admin
            )
            token = issue_token(session, user.id)
            return Account(user.id, token, "admin", name, email)

    return make
