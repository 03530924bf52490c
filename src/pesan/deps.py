"""Dependencies as named `Annotated` types: a route reads `def f(db: Db, caller: CurrentUser)`."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pesan.auth import Caller, caller_for_token
from pesan.clock import Clock
from pesan.config import Settings
from pesan.db import Database
from pesan.errors import Unauthorized
from pesan.throttle import Throttle

_bearer = HTTPBearer(auto_error=False, description="An opaque token from login or register.")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_throttle(request: Request) -> Throttle:
    throttle: Throttle = request.app.state.throttle
    return throttle


def client_address(request: Request) -> str:
    """The client's address (behind a proxy: the one it forwarded, as uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


def get_live(request: Request) -> Any:
    """The broker to live sockets (pesan.live.broker.Broker), None outside the app's lifespan."""
    return request.app.state.broker


def get_now(request: Request) -> datetime:
    """The time, from the app's clock (tests set one they control)."""
    clock: Clock = request.app.state.clock
    return clock.now()


Db = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
Throttler = Annotated[Throttle, Depends(get_throttle)]
ClientAddress = Annotated[str, Depends(client_address)]
Live = Annotated[Any, Depends(get_live)]
Now = Annotated[datetime, Depends(get_now)]


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    return credentials.credentials


Token = Annotated[str, Depends(bearer_token)]


def current_user(db: Db, token: Token) -> Caller:
    with db.reader() as session:
        return caller_for_token(session, token)


CurrentUser = Annotated[Caller, Depends(current_user)]
