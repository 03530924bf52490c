from typing import Literal

from pydantic import EmailStr, Field

from pesan.api import CamelModel, InputModel, Timestamp

SelfRole = Literal["customer", "therapist", "place", "hotel", "villa", "agent", "user"]


class UserOut(CamelModel):
    """A user as they see themselves (and as admins see them): with the email."""

    id: str
    email: str
    name: str
    role: str
    created_at: Timestamp


class RegisterIn(InputModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=200)
    name: str = Field(min_length=1, max_length=100)
    role: SelfRole = Field(description="Any role but admin; the legacy `user` means customer.")


class LoginIn(InputModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=200)


class TokenOut(CamelModel):
    token: str
    user: UserOut
