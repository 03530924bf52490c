"""Dependencies as named `Annotated` types: a route reads `def f(db: Db, caller: CurrentUser)`."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pesan.auth import Caller, PasswordHashing, TokenCache, lookup_token
from pesan.clock import Clock
from pesan.config import Settings
from pesan.db import Database
from pesan.errors import Unauthorized
from pesan.throttle import Throttle

_TOKEN_HELP = "An opaque token from login or register."
_bearer = HTTPBearer(auto_error=False, description=_TOKEN_HELP)


# The plain dependencies are `async def` (they never block), so FastAPI calls them on the
# event loop instead of paying a trip through the thread pool for each.


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_throttle(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle


def client_address(request: Request) -> str:
    """The client's address (behind a proxy: the one it forwarded, as uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


async def _client_address(request: Request) -> str:
    return client_address(request)


async def get_live(request: Request) -> Any:
    """The broker to live sockets (pesan.live.broker.Broker), None outside the app's lifespan."""
    return request.app.state.broker


async def get_now(request: Request) -> datetime:
    """The time, from the app's clock (tests set one they control)."""
    clock: Clock = request.app.state.clock
    return clock.now()


Db = Annotated[Database, Depends(get_db)]


async def get_passwords(request: Request) -> PasswordHashing:
    passwords: PasswordHashing = request.app.state.passwords
    return passwords


Passwords = Annotated[PasswordHashing, Depends(get_passwords)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
Throttler = Annotated[Throttle, Depends(get_throttle)]
ClientAddress = Annotated[str, Depends(_client_address)]
Live = Annotated[Any, Depends(get_live)]
Now = Annotated[datetime, Depends(get_now)]


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    return credentials.credentials


Token = Annotated[str, Depends(bearer_token)]


class SignedIn(HTTPBearer):
    """The bearer scheme, as OpenAPI publishes it, answering the signed-in caller itself.

    One dependency instead of four (scheme, token, database, caller): FastAPI spends tens of
    microseconds of CPU on each dependency of each request, and every private route has this
    one (docs/decisions.md, "One flat route table").
    """

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or not credentials.credentials:
            raise Unauthorized()
        return await current_user(request, credentials.credentials)


async def current_user(request: Request, token: str) -> Caller:
    """The caller `token` signs in: from the token cache (see `TokenCache`), else the database."""
    cache: TokenCache = request.app.state.tokens
    cached = cache.get(token)
    if cached is not None:
        return cached
    generation = cache.generation
    caller, expires_at = await run_in_threadpool(_lookup, request.app.state.db, token)
    cache.put(token, caller, expires_at, generation)
    return caller


def _lookup(db: Database, token: str) -> tuple[Caller, datetime]:
    with db.reader() as session:
        return lookup_token(session, token)


_signed_in = SignedIn(auto_error=False, scheme_name="HTTPBearer", description=_TOKEN_HELP)
CurrentUser = Annotated[Caller, Depends(_signed_in)]
