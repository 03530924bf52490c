"""Upgrading a database in use: every row a user made before a migration is there after it.

A database at revision 0001 with a marketplace's worth of rows (accounts, a provider, a
conversation, a pending booking made with an Idempotency-Key, its messages and admin note) is
upgraded to the head. SQLite rebuilds tables to change them, which with foreign keys on would
refuse or delete rows that refer to them; this is the test that caught it.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, func, insert, select

from pesan import migrate
from pesan.db import Database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, database_url_factory: Any) -> Any:
    db = Database(migrate_url(database_url_factory(request.param)))
    yield db
    db.dispose()


def migrate_url(url: str) -> str:
    from pesan.config import normalise_database_url

    return normalise_database_url(url)


def at(db: Database, when: datetime) -> datetime:
    return when.replace(tzinfo=None) if db.dialect == "sqlite" else when


def test_an_upgrade_from_0001_keeps_every_row(database: Database) -> None:
    with database.engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
    old = MetaData()
    old.reflect(database.engine)
    t = old.tables
    made = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    now = at(database, made)
    start = at(database, made + timedelta(days=1))
    ids = {name: f"01JA{name.upper():A<22}"[:26] for name in ("c", "p", "s", "v", "b", "m", "n")}
    rows: list[tuple[str, dict[str, Any]]] = [
        (
            "users",
            {
                "id": ids["c"],
                "email": "c@x.id",
                "password_hash": "h",
                "name": "Emma",
                "role": "customer",
                "created_at": now,
                "updated_at": now,
            },
        ),
        (
            "users",
            {
                "id": ids["p"],
                "email": "p@x.id",
                "password_hash": "h",
                "name": "Made",
                "role": "therapist",
                "created_at": now,
                "updated_at": now,
            },
        ),
        (
            "provider_profiles",
            {
                "user_id": ids["p"],
                "type": "therapist",
                "name": "Made",
                "bio": "",
                "languages": ["id"],
                "timezone": "Asia/Makassar",
                "area": "Ubud",
                "presence": "available",
                "created_at": now,
                "updated_at": now,
            },
        ),
        (
            "services",
            {
                "id": ids["s"],
                "provider_id": ids["p"],
                "name": "Massage",
                "duration_minutes": 60,
                "price_amount": 150000,
                "currency": "IDR",
                "active": True,
                "created_at": now,
            },
        ),
        (
            "conversations",
            {
                "id": ids["v"],
                "pair_key": f"{ids['c']}:{ids['p']}",
                "created_at": now,
                "updated_at": now,
                "last_message_id": ids["m"],
            },
        ),
        (
            "conversation_participants",
            {"conversation_id": ids["v"], "user_id": ids["c"], "joined_at": now},
        ),
        (
            "conversation_participants",
            {"conversation_id": ids["v"], "user_id": ids["p"], "joined_at": now},
        ),
        (
            "bookings",
            {
                "id": ids["b"],
                "status": "pending",
                "mode": "scheduled",
                "customer_id": ids["c"],
                "customer_name": "Emma",
                "booker_role": "customer",
                "provider_id": ids["p"],
                "provider_name": "Made",
                "service_id": ids["s"],
                "service_name": "Massage",
                "duration_minutes": 60,
                "start_at": start,
                "end_at": at(database, made + timedelta(days=1, hours=1)),
                "location_kind": "place",
                "price_amount": 150000,
                "currency": "IDR",
                "conversation_id": ids["v"],
                "created_at": now,
                "updated_at": now,
            },
        ),
        (
            "messages",
            {
                "id": ids["m"],
                "conversation_id": ids["v"],
                "sender_id": ids["c"],
                "sender_name": "Emma",
                "sender_type": "customer",
                "recipient_id": ids["p"],
                "recipient_name": "Made",
                "recipient_type": "therapist",
                "content": "Booking request",
                "message_type": "booking",
                "original_language": "en",
                "is_system_message": False,
                "booking_id": ids["b"],
                "read": False,
                "created_at": now,
            },
        ),
        (
            "idempotency_keys",
            {
                "user_id": ids["c"],
                "key": "k-1",
                "request_hash": "x" * 64,
                "booking_id": ids["b"],
                "created_at": now,
            },
        ),
        (
            "admin_messages",
            {
                "id": ids["n"],
                "kind": "booking.created",
                "title": "New booking",
                "body": "Booking request",
                "booking_id": ids["b"],
                "conversation_id": ids["v"],
                "created_at": now,
            },
        ),
    ]
    with database.engine.begin() as conn:
        for table, values in rows:
            conn.execute(insert(t[table]).values(**values))
    before = _counts(database)

    assert migrate.upgrade(database.engine, repair=False) == []

    assert _counts(database) == before
    state = migrate.inspect_schema(database.engine)
    assert state.ok, state.explain()
    with database.engine.connect() as conn:
        new = MetaData()
        new.reflect(conn)
        booking = conn.execute(select(new.tables["bookings"])).one()._mapping
        parties = new.tables["conversation_participants"]
        unread = dict(conn.execute(select(parties.c.user_id, parties.c.unread_count)).all())
    # 0003 counts each party's unread messages once: the booking card is to the provider.
    assert unread == {ids["p"]: 1, ids["c"]: 0}
    assert booking["timezone"] == "Asia/Makassar"
    assert booking["blocked_from"] == booking["start_at"]
    assert booking["blocked_until"] == booking["end_at"]
    assert _utc(booking["respond_by"]) == made + timedelta(minutes=30)  # the default window


def _counts(db: Database) -> dict[str, int]:
    current = MetaData()
    current.reflect(db.engine)
    with db.engine.connect() as conn:
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in current.tables.items()
            if name in migrate.metadata.tables and name != "reschedule_proposals"
        }


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
