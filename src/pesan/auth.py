"""Passwords, bearer tokens, the signed-in caller, and the one place that decides who may see what.

Rule: a conversation or booking is visible to its parties and to admins, and to nobody else;
to anyone else it does not exist (404), so ids leak nothing.
"""

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from pesan.accounts.models import AuthToken, User
from pesan.config import get_settings
from pesan.errors import Forbidden, NotFound, Unauthorized
from pesan.ids import new_id
from pesan.roles import Role
from pesan.timeutil import utcnow


@dataclass(frozen=True)
class Caller:
    """The signed-in user, detached from any session."""

    id: str
    name: str
    role: Role
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


@lru_cache
def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


# Compared against when the email is unknown, so both paths cost the same.
@lru_cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


class PasswordHashing:
    """Argon2 off the event loop, outside any transaction, and at a low CPU priority.

    One hash is about 90 ms of CPU on several threads (argon2's lanes). A flood of sign-ins
    must not starve everything else: hashing runs on its own few threads, each lowered to
    `nice` (the threads argon2 starts inherit it), so the scheduler gives the CPU to requests
    first and to hashing with what is left. Sign-ins queue here, in order.
    """

    def __init__(self, threads: int = 2, nice: int = 10) -> None:
        self._nice = nice
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="pesan-argon2", initializer=self._lower
        )

    def _lower(self) -> None:
        # Not Linux, or not allowed: hash at normal priority.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, hash_password, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, verify_password, password_hash, password
        )

    # For code already on a worker thread (the web pages): wait here, hash over there.
    def hash_blocking(self, password: str) -> str:
        return self._pool.submit(hash_password, password).result()

    def verify_blocking(self, password_hash: str | None, password: str) -> bool:
        return self._pool.submit(verify_password, password_hash, password).result()


def token_digest(token: str) -> str:
    """What is stored of a token (and what a revocation names): its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


_digest = token_digest


def issue_token(session: Session, user_id: str) -> str:
    token = secrets.token_urlsafe(32)
    ttl = timedelta(days=get_settings().token_ttl_days)
    session.add(
        AuthToken(
            id=new_id(), user_id=user_id, token_hash=token_digest(token), expires_at=utcnow() + ttl
        )
    )
    return token


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == token_digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def caller_for_token(session: Session, token: str) -> Caller:
    return lookup_token(session, token)[0]


def lookup_token(session: Session, token: str) -> tuple[Caller, datetime]:
    """The caller a token signs in, and when the token expires; 401 if it does not."""
    now = utcnow()
    row = session.execute(
        select(User, AuthToken)
        .join(AuthToken, AuthToken.user_id == User.id)
        .where(AuthToken.token_hash == token_digest(token))
    ).first()
    if row is None:
        raise Unauthorized("That token is not valid.", code="invalid_token")
    user, auth = row
    if auth.revoked_at is not None or auth.expires_at <= now:
        raise Unauthorized("That token has expired or was revoked.", code="invalid_token")
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled.", code="account_disabled")
    caller = Caller(id=user.id, name=user.name, role=Role(user.role), email=user.email)
    return caller, auth.expires_at


class TokenCache:
    """Recent successful token lookups, so a busy client is not a database read per request.

    Only positive answers are kept, each for `ttl` seconds at most (and never past the token's
    own expiry). Logout through this process forgets the token at once, and through another
    process as soon as its revocation arrives over the broker (Redis); a revocation Redis
    dropped, or an account disabled, is still accepted here for at most `ttl` seconds.
    `ttl=0` turns the cache off.
    """

    def __init__(
        self, ttl: float, max_size: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.clock = clock
        self._entries: OrderedDict[str, tuple[Caller, float, datetime]] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every forget: a lookup that began before a logout must not cache its answer.
        self.generation = 0

    def get(self, token: str) -> Caller | None:
        if self.ttl <= 0:
            return None
        key = token_digest(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            caller, until, expires_at = entry
            if self.clock() >= until or expires_at <= utcnow():
                del self._entries[key]
                return None
            return caller

    def put(self, token: str, caller: Caller, expires_at: datetime, generation: int) -> None:
        """Keep a lookup that began when `self.generation` was `generation`."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            self._entries[token_digest(token)] = (caller, self.clock() + self.ttl, expires_at)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        self.forget_digests([token_digest(token)])

    def forget_digests(self, digests: list[str]) -> None:
        """Tokens signed out (here, or in another process: the broker's revocations)."""
        with self._lock:
            self.generation += 1
            for digest in digests:
                self._entries.pop(digest, None)


def token_is_valid(session: Session, digest: str) -> bool:
    """Whether the token with this digest is still signed in (not revoked, not expired)."""
    auth = session.scalar(select(AuthToken).where(AuthToken.token_hash == digest))
    return auth is not None and auth.revoked_at is None and auth.expires_at > utcnow()


def ensure_visible(caller: Caller, parties: Iterable[str], what: str) -> None:
    """Parties and admins may see it; to anyone else it does not exist."""
    if caller.is_admin or caller.id in set(parties):
        return
    raise NotFound(f"No such {what}.")


def ensure_party(caller: Caller, parties: Iterable[str], what: str) -> None:
    """Only its parties may act in it. An admin who may see it is told so (403), others 404."""
    party_set = set(parties)
    ensure_visible(caller, party_set, what)
    if caller.id not in party_set:
        raise Forbidden(f"Only the parties of this {what} can do that.")


def ensure_role(caller: Caller, roles: Iterable[Role], doing: str) -> None:
    allowed = set(roles)
    if caller.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"Only {names} accounts can {doing}.", code="role_not_allowed")
