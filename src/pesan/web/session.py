"""Who is looking at a page: the session cookie, the language cookie, and CSRF protection.

The session cookie holds an ordinary pesan token (`auth.issue_token`), so the WebSocket at
`/api/v1/ws` accepts it from our own pages. CSRF protection is asgi-csrf's double-submit
cookie, on every state-changing request outside the API (the API takes bearer tokens only).
"""

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from asgi_csrf import asgi_csrf
from fastapi import Depends, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pesan.auth import Caller, caller_for_token
from pesan.config import Settings
from pesan.deps import Db
from pesan.errors import Problem
from pesan.live.ws import SESSION_COOKIE
from pesan.roles import Role
from pesan.web.i18n import parse_language

log = logging.getLogger("pesan.web")

LANGUAGE_COOKIE = "pesan_lang"
CSRF_COOKIE = "csrftoken"
CSRF_FIELD = "csrftoken"
CSRF_HEADER = "x-csrftoken"
LANGUAGE_MAX_AGE = 365 * 24 * 3600
# Paths that are not the web app: the API (bearer tokens, problem+json) and operations.
NOT_WEB = ("/api/", "/healthz", "/readyz", "/metrics")


def is_web_path(path: str) -> bool:
    return not path.startswith(NOT_WEB)


def is_https(request: Request) -> bool:
    """https, also behind a proxy that says so (uvicorn applies X-Forwarded-Proto)."""
    return request.url.scheme == "https"


def set_session(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def set_language(request: Request, response: Response, language: str) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_MAX_AGE,
        path="/",
        samesite="lax",
        secure=is_https(request),
    )


def language_of(request: Request) -> str:
    return parse_language(request.cookies.get(LANGUAGE_COOKIE))


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def optional_caller(request: Request, db: Db) -> Caller | None:
    token = session_token(request)
    if token is None:
        return None
    try:
        with db.reader() as session:
            return caller_for_token(session, token)
    except Problem:
        return None  # expired or revoked: the page treats the visitor as signed out


class SignInFirst(Exception):
    """A page that needs a signed-in visitor: answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.location = f"/signin?next={quote(next_url, safe='/')}"


class NotForYou(Exception):
    """A page for another kind of account (e.g. the dashboard for a customer)."""


Visitor = Annotated[Caller | None, Depends(optional_caller)]


def required_caller(request: Request, caller: Visitor) -> Caller:
    if caller is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInFirst(target)
    return caller


SignedIn = Annotated[Caller, Depends(required_caller)]


def require_role(caller: Caller, roles: frozenset[Role] | set[Role]) -> None:
    if caller.role not in roles:
        raise NotForYou()


def signing_secret(settings: Settings) -> str:
    """The CSRF cookie's signing key: the setting, or one kept beside the embedded database
    (so a restart does not void every open form), or one per process."""
    if settings.secret_key:
        return settings.secret_key
    if settings.is_embedded:
        path = Path(settings.data_dir) / "web-secret"
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(48))
                path.chmod(0o600)
            return path.read_text().strip()
        except OSError:
            log.warning("cannot keep the web secret in %s; using one per process", path)
    return secrets.token_urlsafe(48)


class _Everywhere:
    """asgi-csrf's `always_protect`: also a visitor with no cookie at all must send a token."""

    def __contains__(self, path: object) -> bool:
        return True


class CsrfMiddleware:
    """asgi-csrf around the app, its cookie `Secure` on https; the API is left alone."""

    def __init__(
        self,
        app: ASGIApp,
        secret: str,
        on_failure: Callable[[Scope, Send, Any], Any],
    ) -> None:
        options: dict[str, Any] = {
            "signing_secret": secret,
            "always_protect": _Everywhere(),
            "skip_if_scope": lambda scope: not is_web_path(scope["path"]),
            "cookie_samesite": "Lax",
            "send_csrf_failed": on_failure,
        }
        self.plain = asgi_csrf(app, cookie_secure=False, **options)
        self.secure = asgi_csrf(app, cookie_secure=True, **options)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        wrapped = self.secure if scope.get("scheme") == "https" else self.plain
        await wrapped(scope, receive, send)
