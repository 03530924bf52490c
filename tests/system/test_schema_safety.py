"""The failure pesan exists to prevent: a `messages` table that is not there.

A database that lacks what pesan needs never serves traffic: `pesan serve` refuses to start,
`pesan db check` and `pesan doctor` name the table and the fix, and `pesan db upgrade` repairs
it. Every test runs the real command in a subprocess against SQLite and PostgreSQL.
"""

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from pesan import migrate
from pesan.config import normalise_database_url
from pesan.db import make_engine
from tests.system.conftest import PESAN, drop_table, pesan_env, run_pesan

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, database_url_factory: Any) -> str:
    return str(database_url_factory(request.param))


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return pesan_env(database_url=database_url)


@pytest.fixture
def lost_messages(database_url: str, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """An upgraded database whose `messages` table was then dropped by hand."""
    upgrade = run_pesan("db", "upgrade", env=env, cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    drop_table(database_url, "messages")
    return env


@pytest.mark.slow
def test_serve_refuses_to_start_without_the_messages_table(
    lost_messages: dict[str, str], tmp_path: Path, start_server: Any
) -> None:
    code, stderr = start_server(lost_messages, tmp_path).exit_by_itself()
    assert code != 0
    assert "messages" in stderr
    assert "pesan db upgrade" in stderr


def test_db_check_lists_the_missing_table(lost_messages: dict[str, str], tmp_path: Path) -> None:
    check = run_pesan("db", "check", env=lost_messages, cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "table 'messages' is missing" in check.stdout
    assert "pesan db upgrade" in check.stderr


def test_doctor_fails_on_the_schema_naming_messages(
    lost_messages: dict[str, str], tmp_path: Path
) -> None:
    doctor = run_pesan("doctor", env=lost_messages, cwd=tmp_path)
    assert doctor.returncode != 0
    failures = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL")]
    assert any("schema" in line and "messages" in line for line in failures), doctor.stdout
    assert "pesan db upgrade" in doctor.stdout


@pytest.mark.slow
def test_db_upgrade_recreates_the_table_and_the_server_starts(
    database_url: str, tmp_path: Path, start_server: Any
) -> None:
    env = pesan_env(database_url=database_url)
    assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    admin = ["admin", "create", "--email", "ops@example.com", "--password", "long enough"]
    assert run_pesan(*admin, env=env, cwd=tmp_path).returncode == 0
    drop_table(database_url, "messages")

    fix = run_pesan("db", "upgrade", env=env, cwd=tmp_path)
    assert fix.returncode == 0, fix.stderr
    assert "recreated missing table 'messages'" in fix.stdout
    check = run_pesan("db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("OK")

    server = start_server(env, tmp_path)
    ready = server.wait_ready().json()
    assert ready["checks"]["schema"]["ok"] is True
    # The repair touched only what was missing: the account made before it still signs in.
    login = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": "ops@example.com", "password": "long enough"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    inbox = httpx.get(
        f"{server.url}/api/v1/admin/messages",
        headers={"Authorization": f"Bearer {login.json()['token']}"},
        timeout=10,
    )
    assert inbox.status_code == 200, inbox.text


def test_db_upgrade_restores_a_dropped_table_that_others_refer_to(
    database_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    """On PostgreSQL, `DROP TABLE users CASCADE` also drops ten foreign keys to it."""
    assert run_pesan("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    drop_table(database_url, "users")

    fix = run_pesan("db", "upgrade", env=env, cwd=tmp_path)
    assert fix.returncode == 0, fix.stdout + fix.stderr
    assert "recreated missing table 'users'" in fix.stdout
    check = run_pesan("db", "check", env=env, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_serve_refuses_an_empty_postgresql_database(
    database_url_factory: Any, tmp_path: Path, start_server: Any
) -> None:
    env = pesan_env(database_url=database_url_factory("postgresql"))
    code, stderr = start_server(env, tmp_path).exit_by_itself()
    assert code == 2
    assert "no pesan schema yet" in stderr
    assert "pesan db upgrade" in stderr


@pytest.mark.slow
def test_serve_upgrades_a_fresh_embedded_database_and_is_ready(
    tmp_path: Path, start_server: Any
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(pesan_env(data_dir=data_dir), tmp_path)
    ready = server.wait_ready().json()
    assert ready["status"] == "ok"
    assert all(check["ok"] for check in ready["checks"].values()), ready
    assert (data_dir / "pesan.sqlite3").exists()


def test_concurrent_upgrades_of_one_postgresql_database_all_succeed(
    database_url_factory: Any, tmp_path: Path
) -> None:
    url = database_url_factory("postgresql")
    env = pesan_env(database_url=url)
    processes = [
        subprocess.Popen(
            [PESAN, "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = []
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=60)
            outcomes.append((process.returncode, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes

    engine = make_engine(normalise_database_url(url))
    try:
        state = migrate.inspect_schema(engine)
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert state.ok, state.explain()
    assert [v for (v,) in versions] == [migrate.head_revision()]


@pytest.mark.parametrize("kind", BACKENDS)
def test_migrations_build_exactly_the_models(kind: str, database_url_factory: Any) -> None:
    """Migrations alone (no repair from the models) must give what the models describe."""
    engine = make_engine(normalise_database_url(database_url_factory(kind)))
    try:
        assert migrate.upgrade(engine, repair=False) == []
        state = migrate.inspect_schema(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            strict = compare_metadata(context, migrate.metadata)
    finally:
        engine.dispose()
    assert state.ok, state.explain()
    assert state.differences == []
    assert strict == [], f"migrations and models differ (types, defaults): {strict}"
