from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from pesan.roles import Role, SelfRole
from pesan.schemas import CamelModel, InputModel, SingleLine, Timestamp, verbatim

# Taken exactly as typed: request bodies are trimmed, but a password's spaces are part of it
# (and an admin made from the command line with one must be able to sign in).
Password = Annotated[str, StringConstraints(strip_whitespace=False), AfterValidator(verbatim)]


class UserOut(CamelModel):
    """A user as they see themselves (and as admins see them): with the email."""

    id: str
    email: str
    name: str
    role: Role
    created_at: Timestamp


class RegisterIn(InputModel):
    email: EmailStr
    password: Password = Field(min_length=8, max_length=200)
    name: SingleLine = Field(min_length=1, max_length=100)
    role: SelfRole = Field(description="Any role but admin; the legacy `user` means customer.")


class LoginIn(InputModel):
    email: EmailStr
    password: Password = Field(min_length=1, max_length=200)


class TokenOut(CamelModel):
    token: str
    user: UserOut
