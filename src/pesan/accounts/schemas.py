from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints

from pesan.api import CamelModel, InputModel, Timestamp

SelfRole = Literal["customer", "therapist", "place", "hotel", "villa", "agent", "user"]
# Taken exactly as typed: request bodies are trimmed, but a password's spaces are part of it
# (and an admin made from the command line with one must be able to sign in).
Password = Annotated[str, StringConstraints(strip_whitespace=False)]


class UserOut(CamelModel):
    """A user as they see themselves (and as admins see them): with the email."""

    id: str
    email: str
    name: str
    role: str
    created_at: Timestamp


class RegisterIn(InputModel):
    email: EmailStr
    password: Password = Field(min_length=8, max_length=200)
    name: str = Field(min_length=1, max_length=100)
    role: SelfRole = Field(description="Any role but admin; the legacy `user` means customer.")


class LoginIn(InputModel):
    email: EmailStr
    password: Password = Field(min_length=1, max_length=200)


class TokenOut(CamelModel):
    token: str
    user: UserOut
