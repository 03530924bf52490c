"""The provider's dashboard: presence, incoming requests (with a sound and a countdown), today's
bookings, and the profile and services."""

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pesan.auth import Caller
from pesan.bookings import views as booking_views
from pesan.deps import Db, Now
from pesan.errors import NotFound, Problem
from pesan.providers import service as providers
from pesan.providers.enums import Presence
from pesan.providers.models import DEFAULT_TIMEZONE
from pesan.providers.schedule import WEEKDAYS
from pesan.providers.schemas import PresenceIn, ProfileIn, ScheduleIn, ScheduleOut, ServiceIn
from pesan.roles import PROVIDERS
from pesan.timeutil import utcnow
from pesan.web import words
from pesan.web.chats import helpers_for
from pesan.web.i18n import N_
from pesan.web.pages import presence_text, see_other
from pesan.web.render import live_state, render
from pesan.web.routing import WebRoute
from pesan.web.session import SignedIn, require_role

router = APIRouter(route_class=WebRoute, include_in_schema=False)

BUSY_FOR = {"30": 30, "60": 60, "120": 120}
DAY_NAMES = {
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
}


def hours_text(schedule: ScheduleOut) -> dict[str, str]:
    """Each day's opening hours as a provider types them: "09:00-12:00, 13:00-21:00"."""
    weekly = schedule.weekly_hours
    return {
        day: ", ".join(f"{i.opens}-{i.closes}" for i in getattr(weekly, day)) for day in WEEKDAYS
    }


def parse_hours(text: str) -> list[dict[str, str]]:
    intervals = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().replace(".", ":")
        if not part:
            continue
        opens, _, closes = part.partition("-")
        intervals.append({"opens": opens.strip(), "closes": closes.strip()})
    return intervals


def _today(timezone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(timezone)
    local = utcnow().astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _work(session: Any, caller: Caller, timezone: str) -> dict[str, Any]:
    start, end = _today(timezone)
    return {
        "requests": booking_views.pending_for_provider(session, caller),
        "today": booking_views.provider_schedule(session, caller, start, end),
    }


def _provider(session: Any, caller: Caller) -> Any:
    try:
        return providers.get_provider(session, caller.id)
    except NotFound:
        return None  # no profile yet: the form below makes it


def _page(
    request: Request,
    db: Any,
    caller: Caller,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    with db.reader() as session:
        live = live_state(session, caller)
        provider = _provider(session, caller)
        zone = provider.timezone if provider else DEFAULT_TIMEZONE
        work = _work(session, caller, zone)
        schedule = providers.get_schedule(session, caller.id) if provider else None
    return render(
        request,
        "dashboard.html",
        caller=caller,
        live=live,
        provider=provider,
        zone=zone,
        problem=problem,
        presence_text=presence_text,
        presences=list(Presence),
        presence_names=words.PRESENCE,
        schedule=schedule,
        hours=hours_text(schedule) if schedule else {},
        day_names=DAY_NAMES,
        status_code=status_code,
        **work,
        **helpers_for(request, caller),
    )


@router.get("/dashboard")
def dashboard(request: Request, db: Db, caller: SignedIn) -> Response:
    require_role(caller, PROVIDERS)
    return _page(request, db, caller)


@router.get("/dashboard/work")
def work(request: Request, db: Db, caller: SignedIn) -> Response:
    """Incoming requests and today's bookings: the part the page's script refreshes live."""
    require_role(caller, PROVIDERS)
    with db.reader() as session:
        provider = _provider(session, caller)
        zone = provider.timezone if provider else DEFAULT_TIMEZONE
        found = _work(session, caller, zone)
    return render(
        request, "_work.html", caller=caller, zone=zone, **found, **helpers_for(request, caller)
    )


@router.post("/dashboard/presence")
def presence(
    request: Request,
    db: Db,
    caller: SignedIn,
    presence: Annotated[Presence, Form()],
    busy_for: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    require_role(caller, PROVIDERS)
    until = None
    if presence is Presence.busy and busy_for in BUSY_FOR:
        until = utcnow() + timedelta(minutes=BUSY_FOR[busy_for])
    with db.transaction() as session:
        providers.set_presence(session, caller, PresenceIn(presence=presence, busy_until=until))
    return see_other("/dashboard")


@router.post("/dashboard/profile")
async def profile(request: Request, db: Db, caller: SignedIn) -> Response:
    require_role(caller, PROVIDERS)
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    languages = [str(v) for v in form.getlist("languages") if isinstance(v, str)]
    return await run_in_threadpool(_save_profile, request, db, caller, values, languages)


def _save_profile(
    request: Request, db: Any, caller: Caller, values: dict[str, str], languages: list[str]
) -> Response:
    try:
        body = ProfileIn.model_validate(
            {
                "name": values.get("name") or None,
                "bio": values.get("bio", ""),
                "area": values.get("area", ""),
                "timezone": values.get("timezone") or DEFAULT_TIMEZONE,
                "languages": languages,
            }
        )
        with db.transaction() as session:
            providers.upsert_profile(session, caller, body)
    except ValidationError:
        return _page(request, db, caller, N_("Check the profile: a field is not right."), 422)
    return see_other("/dashboard")


@router.post("/dashboard/services")
def add_service(
    request: Request,
    db: Db,
    caller: SignedIn,
    name: Annotated[str, Form(max_length=100)] = "",
    duration_minutes: Annotated[str, Form(max_length=5)] = "",
    price: Annotated[str, Form(max_length=15)] = "",
) -> Response:
    require_role(caller, PROVIDERS)
    try:
        body = ServiceIn.model_validate(
            {
                "name": name,
                "durationMinutes": duration_minutes,
                "price": {"amount": price.replace(".", "").replace(",", ""), "currency": "IDR"},
            }
        )
        with db.transaction() as session:
            providers.add_service(session, caller, body)
    except (ValidationError, Problem):
        return _page(
            request,
            db,
            caller,
            N_("Check the service: a name, 5 to 720 minutes, and a price in rupiah."),
            422,
        )
    return see_other("/dashboard")


@router.post("/dashboard/hours")
async def working_hours(request: Request, db: Db, caller: SignedIn, now: Now) -> Response:
    require_role(caller, PROVIDERS)
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_save_hours, request, db, caller, values, now)


def _save_hours(
    request: Request, db: Any, caller: Caller, values: dict[str, str], now: datetime
) -> Response:
    try:
        body = ScheduleIn.model_validate(
            {
                "weeklyHours": {day: parse_hours(values.get(day, "")) for day in WEEKDAYS},
                "bufferAfterMinutes": values.get("buffer_after_minutes") or 15,
                "minNoticeMinutes": values.get("min_notice_minutes") or 60,
            }
        )
        with db.transaction() as session:
            providers.put_schedule(session, caller, body, now)
    except (ValidationError, Problem):
        return _page(
            request,
            db,
            caller,
            N_(
                "Check the working hours: write them like 09:00-21:00, or 09:00-12:00, 13:00-21:00."
            ),
            422,
        )
    return see_other("/dashboard")
