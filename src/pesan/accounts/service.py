"""Accounts: register, sign in, sign out, and admins made from the command line."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pesan.accounts.models import User
from pesan.auth import hash_password, issue_token, revoke_token, verify_password
from pesan.errors import Conflict, NotFound, Unauthorized
from pesan.ids import new_id
from pesan.live.events import create_counter
from pesan.roles import Role


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(session: Session, *, email: str, password: str, name: str, role: Role) -> User:
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with that email already exists.", code="email_taken")
    user = User(
        id=new_id(), email=email, password_hash=hash_password(password), name=name, role=role
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("An account with that email already exists.", code="email_taken") from exc
    create_counter(session, user.id)
    return user


def register(
    session: Session, *, email: str, password: str, name: str, role: Role
) -> tuple[str, User]:
    user = create_user(session, email=email, password=password, name=name, role=role)
    return issue_token(session, user.id), user


def login(session: Session, *, email: str, password: str) -> tuple[str, User]:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled.", code="account_disabled")
    return issue_token(session, user.id), user


def logout(session: Session, token: str) -> None:
    revoke_token(session, token)


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user
