"""Web pages through the TestClient: a visitor with cookies, forms with their CSRF token."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Account, Api

CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')


class Visitor:
    """One browser's worth of cookies, reading pages and sending their forms."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if not self.csrf:
            self.get("/signin")
        form = {"csrftoken": self.csrf, **(data or {})}
        kwargs.setdefault("follow_redirects", False)
        return self.client.post(path, data=form, **kwargs)

    def sign_in(self, account: Account, password: str = "correct horse") -> Any:
        r = self.post("/signin", {"email": account.email, "password": password, "next": "/"})
        assert r.status_code == 303, r.text
        return r

    def language(self, lang: str) -> None:
        self.client.cookies.set("pesan_lang", lang)


@pytest.fixture
def visitor(app: Any) -> Any:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield Visitor(c)


@pytest.fixture
def other_visitor(app: Any) -> Any:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield Visitor(c)


def text_of(html: str) -> str:
    """What a person reads: the page without tags, scripts and styles."""
    html = re.sub(r"<(script|style|template)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", html)


def booked(api: Api, customer: Account, provider: Account, **overrides: Any) -> dict[str, Any]:
    return api.book(customer, provider, **overrides)
