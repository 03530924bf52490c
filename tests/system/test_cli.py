"""`pesan demo`, `pesan admin create` and `pesan --help`, run as an operator runs them."""

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pesan import migrate
from pesan.app import create_app
from pesan.config import Settings
from pesan.demo import DEMO_PASSWORD
from tests.system.conftest import pesan_env, run_pesan


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return pesan_env(data_dir=data_dir)


def row_counts(data_dir: Path) -> dict[str, int]:
    with closing(sqlite3.connect(data_dir / "pesan.sqlite3")) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in migrate.metadata.tables
        }


def sign_in(client: TestClient, email: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_demo_loads_a_marketplace_and_prints_how_to_sign_in(
    env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    result = run_pesan("demo", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Demo data loaded." in out
    assert DEMO_PASSWORD in out
    assert "/api/v1/auth/login" in out
    for email in ("emma@example.com", "frontdesk@example.com", "admin@example.com"):
        assert email in out

    app = create_app(Settings(data_dir=data_dir))
    with TestClient(app, raise_server_exceptions=False) as client:
        for kind, at_least in (("therapist", 3), ("place", 2)):
            r = client.get("/api/v1/providers", params={"type": kind})
            assert r.status_code == 200, r.text
            providers = r.json()["items"]
            assert len(providers) >= at_least
            for provider in providers:
                assert provider["services"], provider
                for service in provider["services"]:
                    assert service["price"]["currency"] == "IDR"
                    assert isinstance(service["price"]["amount"], int)
                    assert service["price"]["amount"] >= 10_000  # rupiah, not dollars
        for email, role in (
            ("emma@example.com", "customer"),
            ("frontdesk@example.com", "hotel"),
            ("admin@example.com", "admin"),
        ):
            me = client.get("/api/v1/me", headers=sign_in(client, email, DEMO_PASSWORD))
            assert me.status_code == 200, me.text
            assert me.json()["role"] == role


def test_demo_prints_where_this_server_listens(env: dict[str, str], tmp_path: Path) -> None:
    result = run_pesan("demo", env={**env, "PESAN_PORT": "8123"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "curl -s -X POST http://127.0.0.1:8123/api/v1/auth/login" in result.stdout


def test_demo_twice_changes_nothing_and_says_so(
    env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    first = run_pesan("demo", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = row_counts(data_dir)
    assert before["users"] > 0 and before["services"] > 0

    second = run_pesan("demo", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert row_counts(data_dir) == before


def test_admin_create_makes_an_admin_who_reads_the_inbox(
    env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    result = run_pesan(
        "admin", "create", "--email", "ops@example.com", "--password", "s3cret pass",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ops@example.com" in result.stdout

    app = create_app(Settings(data_dir=data_dir))
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = sign_in(client, "ops@example.com", "s3cret pass")
        assert client.get("/api/v1/me", headers=headers).json()["role"] == "admin"
        inbox = client.get("/api/v1/admin/messages", headers=headers)
        assert inbox.status_code == 200, inbox.text
        assert inbox.json()["items"] == []


@pytest.mark.parametrize(
    ("email", "password", "says"),
    [
        ("not-an-email", "long enough", "not an email address"),
        ("ops@example.com", "short", "8 to 200 characters"),
        ("ops@example.com", "x" * 201, "8 to 200 characters"),
    ],
)
def test_admin_create_rejects_bad_input_and_creates_nothing(
    env: dict[str, str], data_dir: Path, tmp_path: Path, email: str, password: str, says: str
) -> None:
    result = run_pesan(
        "admin", "create", "--email", email, "--password", password, env=env, cwd=tmp_path
    )
    assert result.returncode != 0
    assert says in result.stderr
    db_file = data_dir / "pesan.sqlite3"
    assert not db_file.exists() or row_counts(data_dir)["users"] == 0


def test_admin_create_refuses_a_duplicate_email(
    env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    create = ("admin", "create", "--email", "ops@example.com", "--password", "long enough")
    assert run_pesan(*create, env=env, cwd=tmp_path).returncode == 0
    again = run_pesan(
        "admin", "create", "--email", "OPS@example.com", "--password", "another one",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert row_counts(data_dir)["users"] == 1


def test_admin_create_on_a_database_without_schema_names_the_fix(
    database_url_factory: Any, tmp_path: Path
) -> None:
    env = pesan_env(database_url=database_url_factory("postgresql"))
    result = run_pesan(
        "admin", "create", "--email", "ops@example.com", "--password", "long enough",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "pesan db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_command(env: dict[str, str], tmp_path: Path) -> None:
    result = run_pesan("--help", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^\W*([a-z]+)\s{2,}\S", result.stdout, re.MULTILINE))
    assert {"serve", "db", "doctor", "demo", "admin"} <= listed, result.stdout


def test_serve_with_several_workers_needs_redis(env: dict[str, str], tmp_path: Path) -> None:
    result = run_pesan("serve", "--workers", "2", "--port", "1", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "PESAN_REDIS_URL" in result.stderr


def test_a_bad_setting_is_named_not_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    bad = {**env, "PESAN_PORT": "eighty"}
    doctor = run_pesan("doctor", env=bad, cwd=tmp_path)
    assert doctor.returncode == 1
    assert doctor.stdout.startswith("FAIL config") and "PESAN_PORT" in doctor.stdout
    check = run_pesan("db", "check", env=bad, cwd=tmp_path)
    assert check.returncode == 2
    assert "PESAN_PORT" in check.stderr and "Traceback" not in check.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "pesan.example.com"])
def test_demo_refuses_a_server_listening_beyond_loopback(
    env: dict[str, str], data_dir: Path, tmp_path: Path, host: str
) -> None:
    result = run_pesan("demo", env={**env, "PESAN_HOST": host}, cwd=tmp_path)
    assert result.returncode == 2
    assert f"PESAN_HOST={host}" in result.stderr and "--force" in result.stderr
    assert not (data_dir / "pesan.sqlite3").exists() or row_counts(data_dir)["users"] == 0


def test_demo_loads_beyond_loopback_only_when_forced_and_doctor_warns(
    env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    before = run_pesan("doctor", env=env, cwd=tmp_path)
    assert "demo" in before.stdout and "WARN demo" not in before.stdout, before.stdout
    forced = run_pesan("demo", "--force", env={**env, "PESAN_HOST": "0.0.0.0"}, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert row_counts(data_dir)["users"] > 0
    doctor = run_pesan("doctor", env=env, cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout
    warning = next(line for line in doctor.stdout.splitlines() if line.startswith("WARN demo"))
    assert "admin@example.com" in warning and "fix:" in warning


def test_every_setting_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    internal = {"argon2_time_cost", "argon2_memory_kib"}  # lowered only by the test suite
    missing = [
        f"PESAN_{name.upper()}"
        for name in Settings.model_fields
        if name not in internal and f"`PESAN_{name.upper()}`" not in readme
    ]
    assert missing == []
