"""Passwords, bearer tokens, the signed-in caller, and the one place that decides who may see what.

Rule: a conversation or booking is visible to its parties and to admins, and to nobody else;
to anyone else it does not exist (404), so ids leak nothing.
"""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
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


def token_digest(token: str) -> str:
    """What is stored of a token (and what a revocation names): its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


_digest = token_digest


def issue_token(session: Session, user_id: str) -> str:
    token = secrets.token_urlsafe(32)
    ttl = timedelta(days=get_settings().token_ttl_days)
    session.add(
        AuthToken(
            id=new_id(), user_id=user_id, token_hash=_digest(token), expires_at=utcnow() + ttl
        )
    )
    return token


def revoke_token(session: Session, token: str) -> None:
    row = session.scalar(select(AuthToken).where(AuthToken.token_hash == _digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def caller_for_token(session: Session, token: str) -> Caller:
    now = utcnow()
    row = session.execute(
        select(User, AuthToken)
        .join(AuthToken, AuthToken.user_id == User.id)
        .where(AuthToken.token_hash == _digest(token))
    ).first()
    if row is None:
        raise Unauthorized("That token is not valid.", code="invalid_token")
    user, auth = row
    if auth.revoked_at is not None or auth.expires_at <= now:
        raise Unauthorized("That token has expired or was revoked.", code="invalid_token")
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled.", code="account_disabled")
    return Caller(id=user.id, name=user.name, role=Role(user.role), email=user.email)


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
