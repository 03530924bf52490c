"""Accounts: register, sign in, sign out, and admins made from the command line."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts.models import User
from pesan.auth import hash_password, issue_token, revoke_token
from pesan.db import Database, Prepared, table_of
from pesan.errors import Conflict, NotFound, Unauthorized
from pesan.ids import new_id
from pesan.live.events import create_counter
from pesan.roles import Role


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: Role,
    password: str | None = None,
    password_hash: str | None = None,
) -> User:
    """A new account. Give `password_hash` (hashed before the transaction began) on hot paths;
    `password` is hashed here, inside the transaction (the CLI, the demo)."""
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with that email already exists.", code="email_taken")
    if password_hash is None:
        assert password is not None, "a password or its hash"
        password_hash = hash_password(password)
    user = User(id=new_id(), email=email, password_hash=password_hash, name=name, role=role)
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("An account with that email already exists.", code="email_taken") from exc
    create_counter(session, user.id)
    return user


def register(
    session: Session, *, email: str, password_hash: str, name: str, role: Role
) -> tuple[str, User]:
    """The account and its first token; the password was hashed before (see PasswordHashing)."""
    user = create_user(session, email=email, password_hash=password_hash, name=name, role=role)
    return issue_token(session, user.id), user


@dataclass(frozen=True)
class SignInCandidate:
    """What sign-in needs to know about an account before checking the password."""

    user_id: str
    password_hash: str
    disabled: bool


def sign_in_candidate(session: Session, email: str) -> SignInCandidate | None:
    """Step 1 of sign-in, a read: the account of this email, if any."""
    row = session.execute(
        select(User.id, User.password_hash, User.disabled_at).where(
            User.email == normalise_email(email)
        )
    ).first()
    if row is None:
        return None
    return SignInCandidate(row[0], row[1], row[2] is not None)


def check_sign_in(candidate: SignInCandidate | None, password_ok: bool) -> SignInCandidate:
    """Step 2, after the password was checked (outside any transaction): may they sign in?"""
    if candidate is None or not password_ok:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if candidate.disabled:
        raise Unauthorized("This account is disabled.", code="account_disabled")
    return candidate


def start_session(session: Session, user_id: str) -> tuple[str, User]:
    """Step 3, a short write: a new token for a user whose password was right."""
    user = get_user(session, user_id)
    if user.disabled_at is not None:  # disabled while the password was being checked
        raise Unauthorized("This account is disabled.", code="account_disabled")
    return issue_token(session, user.id), user


def sign_in(
    db: Database, check_password: Callable[[str | None, str], bool], *, email: str, password: str
) -> tuple[str, User]:
    """Sign-in from a worker thread: a read, the password check with no transaction open (see
    PasswordHashing), then a short write. The API's route does the same steps, awaiting."""
    with db.reader() as session:
        candidate = sign_in_candidate(session, email)
    ok = check_password(candidate.password_hash if candidate else None, password)
    user_id = check_sign_in(candidate, ok).user_id
    with db.transaction() as session:
        return start_session(session, user_id)


def logout(session: Session, token: str) -> None:
    revoke_token(session, token)


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


_users = table_of(User)
_NAMES_AND_ROLES = Prepared(
    select(_users.c.id, _users.c.name, _users.c.role).where(
        _users.c.id.in_([bindparam("a"), bindparam("b")])
    )
)


def names_and_roles(connection: Connection, a: str, b: str) -> dict[str, tuple[str, ...]]:
    """The id, name and role of two users (what a message says of its sender and recipient),
    in one prebuilt statement; a user not found is left out."""
    rows = _NAMES_AND_ROLES.rows(connection, {"a": a, "b": b})
    return {row[0]: tuple(row) for row in rows}
