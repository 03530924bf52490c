"""Browser tests: Playwright for Python driving Debian's chromium (never a downloaded browser)
against a real `pesan serve` on 127.0.0.1. Each module has its own server and browser, so
modules run in parallel under xdist without sharing anything."""

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, Account
from tests.live.conftest import Rest, Server, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("web")
    server = start_server({"PESAN_DATA_DIR": str(folder / "data")}, folder)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        if IN_CI:
            pytest.fail("chromium is needed for the browser tests (scripts/test installs it)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import expect, sync_playwright

    # A machine shared with other work: give live updates room before calling them missed.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class People:
    """Accounts made over the REST API of the server under test."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.rest = Rest(server.base)

    def register(self, role: str, name: str) -> Account:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        r = self.rest.http.post(
            "/auth/register",
            json={"email": email, "password": PASSWORD, "name": name, "role": role},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Account(body["user"]["id"], body["token"], role, name, email)

    def customer(self, name: str = "Emma Clarke") -> Account:
        return self.register("customer", name)

    def therapist(self, name: str, area: str, presence: str = "available") -> Account:
        account = self.register("therapist", name)
        h = account.headers
        r = self.rest.http.put(
            "/providers/me", headers=h, json={"name": name, "area": area, "languages": ["id"]}
        )
        assert r.status_code == 200, r.text
        for minutes, price in ((60, 150000), (90, 200000)):
            r = self.rest.http.post(
                "/providers/me/services",
                headers=h,
                json={
                    "name": "Balinese massage",
                    "durationMinutes": minutes,
                    "price": {"amount": price},
                },
            )
            assert r.status_code == 201, r.text
            account.service_ids.append(r.json()["id"])
        r = self.rest.http.put("/providers/me/presence", headers=h, json={"presence": presence})
        assert r.status_code == 200, r.text
        return account


@pytest.fixture
def people(web_server: Server) -> People:
    return People(web_server)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def new_context(
    browser: Any, server: Server, language: str, account: Account | None = None, **options: Any
) -> Any:
    """A browser context (its own cookies) in `language`, signed in as `account` if given."""
    context = browser.new_context(base_url=server.base, **options)
    context.set_default_timeout(10_000)
    cookies = [{"name": "pesan_lang", "value": language, "url": server.base}]
    if account is not None:
        cookies.append({"name": "pesan_session", "value": account.token, "url": server.base})
    context.add_cookies(cookies)
    return context
