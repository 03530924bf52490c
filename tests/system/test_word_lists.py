"""One definition per word list, and the database keeps to it.

Every value of every word list (booking status, mode, location kind, actor; presence, provider
type; message, sender and recipient type; role; proposal status) fits its column in a
migrated database, and nothing else does. A CHECK or exclusion constraint that differs from
the code is found by `pesan db check` and `pesan doctor`, stops `pesan serve`, and is put back
by `pesan db upgrade`.
"""

from pathlib import Path
from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import FastAPI
from sqlalchemy import CheckConstraint, text
from sqlalchemy.exc import IntegrityError

from pesan import migrate
from pesan.config import normalise_database_url
from pesan.db import make_engine
from tests.conftest import Api, FakeClock
from tests.system.conftest import pesan_env, run_pesan

WORD_COLUMNS = [
    (table.name, constraint)
    for table in migrate.metadata.sorted_tables
    for constraint in table.constraints
    if isinstance(constraint, CheckConstraint) and "one_of" in constraint.info
]


def test_every_list_is_a_check_constraint() -> None:
    listed = {(table, c.info["column"]) for table, c in WORD_COLUMNS}
    assert listed >= {
        ("users", "role"),
        ("provider_profiles", "type"),
        ("provider_profiles", "presence"),
        ("bookings", "status"),
        ("bookings", "mode"),
        ("bookings", "location_kind"),
        ("bookings", "ended_by"),
        ("messages", "message_type"),
        ("messages", "sender_type"),
        ("messages", "recipient_type"),
        ("reschedule_proposals", "status"),
    }


def test_every_word_of_every_list_fits_its_column_and_nothing_else_does(
    api: Api, app: FastAPI, clock: FakeClock
) -> None:
    # One row in every table that holds a word list.
    customer, therapist = api.register("customer"), api.provider("therapist")
    booked = api.book(
        customer, therapist, mode="scheduled", startAt=api.slot(therapist, after=clock.at)
    )
    r = api.client.post(
        f"/api/v1/bookings/{booked['booking']['id']}/proposals",
        headers=customer.headers,
        json={"startAt": api.slot(therapist, days=2, after=clock.at)},
    )
    assert r.status_code == 201, r.text

    with app.state.db.engine.connect() as conn:
        outer = conn.begin()
        try:
            for table, constraint in WORD_COLUMNS:
                column = constraint.info["column"]
                key = conn.execute(text(f"SELECT * FROM {table} LIMIT 1")).mappings().first()
                assert key is not None, f"no row in {table} to try its words on"
                pk = migrate.metadata.tables[table].primary_key.columns.keys()
                where = " AND ".join(f"{c} = :{c}" for c in pk)
                keys = {c: key[c] for c in pk}
                for word in constraint.info["one_of"]:
                    with conn.begin_nested():
                        conn.execute(
                            text(f"UPDATE {table} SET {column} = :w WHERE {where}"),
                            {"w": word, **keys},
                        )
                with pytest.raises(IntegrityError), conn.begin_nested():
                    conn.execute(
                        text(f"UPDATE {table} SET {column} = :w WHERE {where}"),
                        {"w": "not-a-word", **keys},
                    )
        finally:
            outer.rollback()


# ---- a list that drifted from the code ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, database_url_factory: Any) -> str:
    return str(database_url_factory(request.param))


def narrow_statuses(database_url: str) -> None:
    """What a new status without its migration looks like to the database: a CHECK without it."""
    engine = make_engine(normalise_database_url(database_url))
    with engine.begin() as conn:
        operations = Operations(MigrationContext.configure(conn))
        with operations.batch_alter_table("bookings") as batch:
            batch.drop_constraint("ck_bookings_status", type_="check")
            batch.create_check_constraint(
                "ck_bookings_status", text("status IN ('pending', 'accepted', 'completed')")
            )
    engine.dispose()


def test_a_word_list_that_differs_is_found_and_put_back(database_url: str, tmp_path: Path) -> None:
    env = pesan_env(database_url=database_url)
    assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    narrow_statuses(database_url)

    check = run_pesan("db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 1
    assert (
        "check constraint 'ck_bookings_status' on 'bookings' differs from the code: "
        "the database lacks arrived, cancelled, declined, expired, no_show, on_the_way"
    ) in check.stdout
    doctor = run_pesan("doctor", env=env, cwd=tmp_path)
    assert doctor.returncode == 1 and "ck_bookings_status" in doctor.stdout

    fix = run_pesan("db", "upgrade", env=env, cwd=tmp_path)
    assert fix.returncode == 0, fix.stderr
    assert "restored check constraint 'ck_bookings_status' on 'bookings'" in fix.stdout
    assert run_pesan("db", "check", env=env, cwd=tmp_path).returncode == 0


@pytest.mark.backend_only("postgresql")
def test_a_dropped_exclusion_constraint_is_found_and_put_back(
    database_url: str, tmp_path: Path
) -> None:
    env = pesan_env(database_url=database_url)
    assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    engine = make_engine(normalise_database_url(database_url))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap"))
    engine.dispose()

    check = run_pesan("db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 1
    assert "exclusion constraint 'ex_bookings_no_overlap' on 'bookings' is missing" in check.stdout
    fix = run_pesan("db", "upgrade", env=env, cwd=tmp_path)
    assert "restored exclusion constraint 'ex_bookings_no_overlap'" in fix.stdout
    assert run_pesan("db", "check", env=env, cwd=tmp_path).returncode == 0
