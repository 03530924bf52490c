import re
from datetime import date
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import Field, field_validator

from pesan.providers.enums import Presence, ProviderType
from pesan.providers.models import DEFAULT_TIMEZONE
from pesan.schemas import (
    CamelModel,
    Day,
    InputModel,
    Money,
    MultiLine,
    SingleLine,
    Timestamp,
)

LANGUAGE_TAG = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"


class ServiceOut(CamelModel):
    id: str
    name: str
    duration_minutes: int
    price: Money


class ProviderOut(CamelModel):
    id: str
    type: ProviderType
    name: str
    bio: str
    languages: list[str]
    timezone: str
    area: str
    presence: Presence
    busy_until: Timestamp | None
    services: list[ServiceOut]


class ProfileIn(InputModel):
    name: SingleLine | None = Field(
        None, min_length=1, max_length=100, description="Default: account name."
    )
    bio: MultiLine = Field("", max_length=2000)
    languages: list[SingleLine] = Field(default_factory=list, max_length=20)
    timezone: SingleLine = Field(
        DEFAULT_TIMEZONE, description="IANA zone, e.g. Asia/Makassar (Bali)."
    )
    area: SingleLine = Field("", max_length=100, description="e.g. Ubud, Seminyak, Canggu.")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not re.match(LANGUAGE_TAG, tag):
                raise ValueError(f"{tag!r} is not a BCP 47 language tag")
        return list(dict.fromkeys(value))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"{value!r} is not an IANA time zone")
        return value


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class PresenceIn(InputModel):
    presence: Presence
    busy_until: Timestamp | None = Field(
        None, description="Only with `busy`: a hint of when the provider is free again."
    )


class ServiceIn(InputModel):
    name: SingleLine = Field(min_length=1, max_length=100)
    duration_minutes: int = Field(ge=5, le=720)
    price: Money


class OpeningInterval(CamelModel):
    opens: str = Field(pattern=r"^\d\d:\d\d$", examples=["09:00"])
    closes: str = Field(pattern=r"^\d\d:\d\d$", examples=["21:00"], description="Up to 24:00.")


def _day(description: str) -> Any:
    return Field(default_factory=list, max_length=6, description=description)


class WeeklyHours(CamelModel):
    """Opening intervals per weekday, wall-clock in the provider's zone. A gap between two
    intervals is a break; a day with no interval is closed. "24:00" runs into the next day's
    "00:00"."""

    mon: list[OpeningInterval] = _day("Monday")
    tue: list[OpeningInterval] = _day("Tuesday")
    wed: list[OpeningInterval] = _day("Wednesday")
    thu: list[OpeningInterval] = _day("Thursday")
    fri: list[OpeningInterval] = _day("Friday")
    sat: list[OpeningInterval] = _day("Saturday")
    sun: list[OpeningInterval] = _day("Sunday")


class ScheduleOut(CamelModel):
    timezone: str = Field(description="The provider's IANA zone (set on the profile).")
    weekly_hours: WeeklyHours
    days_off: list[date] = Field(description="Local dates on which nothing opens.")
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    horizon_days: int
    slot_step_minutes: int


class ScheduleIn(InputModel):
    """The whole schedule, replaced at once. Omitted settings keep the defaults."""

    weekly_hours: WeeklyHours
    days_off: list[Day] = Field(default_factory=list, max_length=366)
    buffer_before_minutes: int = Field(0, ge=0, le=240)
    buffer_after_minutes: int = Field(15, ge=0, le=240)
    min_notice_minutes: int = Field(60, ge=0, le=43200)
    horizon_days: int = Field(30, ge=1, le=366)
    slot_step_minutes: int = Field(15, ge=5, le=240)
