"""The directory, a provider's profile, Book Now and Schedule, accounts, and the language.

Each page parses, calls one service function inside one transaction (or reader), renders.
"""

import secrets
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pesan.accounts import service as accounts
from pesan.accounts.schemas import RegisterIn
from pesan.auth import token_digest
from pesan.bookings import availability
from pesan.bookings import service as bookings
from pesan.bookings.rules import Policy
from pesan.bookings.schemas import BookNowIn, SlotOut
from pesan.chat import service as chat
from pesan.config import Settings
from pesan.deps import AppSettings, ClientAddress, Db, Live, Now, Throttler, client_address
from pesan.errors import Problem
from pesan.providers import service as providers
from pesan.providers.enums import Presence, ProviderType
from pesan.providers.schemas import ProviderOut
from pesan.roles import BOOKERS, SELF_REGISTERED, Role
from pesan.throttle import Limit
from pesan.web import words
from pesan.web.i18n import LANGUAGES, N_, gettext
from pesan.web.render import live_state, render
from pesan.web.routing import WebRoute
from pesan.web.session import (
    SignedIn,
    Visitor,
    clear_session,
    require_role,
    session_token,
    set_language,
    set_session,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def presence_text(provider: ProviderOut, language_clock: Any) -> str:
    if provider.presence == Presence.busy and provider.busy_until is not None:
        return gettext(words.BUSY_UNTIL) % {
            "time": language_clock(provider.busy_until, provider.timezone)
        }
    return gettext(words.PRESENCE[provider.presence])


# -- the directory and profiles ---------------------------------------------------------------


@router.get("/")
def directory(
    request: Request,
    db: Db,
    caller: Visitor,
    q: Annotated[str | None, Query(max_length=100)] = None,
    area: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[str | None, Query(max_length=20)] = None,
    now: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    kind = type if type in {t.value for t in ProviderType} else None
    with db.reader() as session:
        live = live_state(session, caller)
        items, _ = providers.list_providers(
            session,
            type=kind,
            q=q or None,
            area=area or None,
            presence=Presence.available if now else None,
            limit=100,
            after_id=None,
        )
        areas = providers.areas(session)
    by_area: dict[str, list[ProviderOut]] = {}
    order = {Presence.available: 0, Presence.busy: 1, Presence.offline: 2}
    for provider in sorted(items, key=lambda p: (p.area.lower(), order[p.presence], p.name)):
        by_area.setdefault(provider.area or "—", []).append(provider)
    return render(
        request,
        "directory.html",
        caller=caller,
        live=live,
        by_area=by_area,
        areas=areas,
        q=q or "",
        area=area or "",
        kind=kind or "",
        only_now=bool(now),
        presence_text=presence_text,
    )


@router.get("/providers/{provider_id}")
def profile(request: Request, provider_id: str, db: Db, caller: Visitor) -> Response:
    with db.reader() as session:
        live = live_state(session, caller)
        provider = providers.get_provider(session, provider_id)
    return render(
        request,
        "profile.html",
        caller=caller,
        live=live,
        provider=provider,
        presence_text=presence_text,
        can_book=caller is None or caller.role in BOOKERS,
    )


# -- Book Now and Schedule ---------------------------------------------------------------------


SLOT_DAYS = 7


def free_slots(session: Any, provider: ProviderOut, service_id: str, now: datetime) -> Any:
    """The service's free start times for the next days, grouped by the provider's day."""
    if not any(s.id == service_id for s in provider.services):
        return {}
    found = availability.availability(
        session, provider.id, service_id, now, now + timedelta(days=SLOT_DAYS), now
    )
    zone = ZoneInfo(provider.timezone)
    days: dict[date, list[SlotOut]] = {}
    for slot in found.items:
        days.setdefault(slot.start_at.astimezone(zone).date(), []).append(slot)
    return days


def _book_form(
    request: Request,
    provider: ProviderOut,
    caller: Any,
    live: Any,
    mode: str,
    values: dict[str, str],
    errors: dict[str, str],
    problem: str | None = None,
    status_code: int = 200,
    slots: Any = None,
) -> Response:
    return render(
        request,
        "book.html",
        caller=caller,
        live=live,
        provider=provider,
        mode=mode,
        values=values,
        errors=errors,
        problem=problem,
        # A new key for each form shown: a double click or a retry of this form books once.
        idempotency_key=values.get("idempotency_key") or secrets.token_urlsafe(18),
        presence_text=presence_text,
        status_code=status_code,
        slots=slots or {},
        zone_info=ZoneInfo(provider.timezone),
    )


@router.get("/providers/{provider_id}/book")
def book_form(
    request: Request,
    provider_id: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    mode: Annotated[str, Query(max_length=10)] = "now",
    service: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    require_role(caller, BOOKERS)
    mode = "scheduled" if mode == "scheduled" else "now"
    with db.reader() as session:
        live = live_state(session, caller)
        provider = providers.get_provider(session, provider_id)
        first = service or (provider.services[0].id if provider.services else "")
        slots = free_slots(session, provider, first, now) if mode == "scheduled" else {}
    kind = "place" if provider.type == ProviderType.place else "villa"
    values = {"service_id": first, "location_kind": kind}
    return _book_form(request, provider, caller, live, mode, values, {}, slots=slots)


def _booking_request(values: dict[str, str], provider: ProviderOut, mode: str) -> dict[str, Any]:
    kind = values.get("location_kind", "")
    location: dict[str, Any] = {"kind": kind}
    if kind in ("hotel", "villa"):
        location["room"] = values.get("room") or None
    if kind == "home":
        location["address"] = values.get("address") or None
    body: dict[str, Any] = {
        "providerId": provider.id,
        "serviceId": values.get("service_id", ""),
        "mode": mode,
        "location": location,
        "note": values.get("note") or None,
        "guestName": values.get("guest_name") or None,
    }
    if mode == "scheduled":
        body["startAt"] = values.get("start_at") or None  # a free time the form offered
    return body


FIELD_NAMES = {
    "serviceId": "service_id",
    "startAt": "start_at",
    "location": "location_kind",
    "location.kind": "location_kind",
    "location.room": "room",
    "location.address": "address",
    "note": "note",
    "guestName": "guest_name",
}
FIELD_HINTS = {
    "service_id": N_("Choose a treatment."),
    "start_at": N_("Choose one of the free times."),
    "location_kind": N_("Choose where the treatment happens."),
    "room": N_("Write the room or villa number."),
    "address": N_("Write the address."),
    "note": N_("The note is too long."),
    "guest_name": N_("The guest's name is too long."),
}


def _field_errors(fields: list[str]) -> dict[str, str]:
    errors = {}
    for field in fields:
        name = FIELD_NAMES.get(field, FIELD_NAMES.get(field.split(".")[0], "service_id"))
        errors[name] = FIELD_HINTS[name]
    return errors


def with_headers(problem: Problem, page: Response) -> Response:
    """A page answering a problem carries its headers (Retry-After on 429 and 503)."""
    page.headers.update(problem.headers or {})
    return page


@router.post("/providers/{provider_id}/book")
async def book(
    request: Request,
    provider_id: str,
    db: Db,
    caller: SignedIn,
    now: Now,
    settings: AppSettings,
) -> Response:
    require_role(caller, BOOKERS)
    form = await request.form()
    values = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
    mode = "scheduled" if values.get("mode") == "scheduled" else "now"
    policy = Policy.from_settings(settings)
    return await run_in_threadpool(
        _book, request, provider_id, db, caller, values, mode, now, policy
    )


def _book(
    request: Request,
    provider_id: str,
    db: Any,
    caller: Any,
    values: dict[str, str],
    mode: str,
    now: datetime,
    policy: Policy,
) -> Response:
    with db.reader() as session:
        live = live_state(session, caller)
        provider = providers.get_provider(session, provider_id)

    def again(errors: dict[str, str], problem: str | None, status: int) -> Response:
        """The form again, with what was typed, the hints, and the free times as they are now."""
        slots = {}
        if mode == "scheduled":
            with db.reader() as session:
                slots = free_slots(session, provider, values.get("service_id", ""), now)
        return _book_form(
            request, provider, caller, live, mode, values, errors, problem, status, slots=slots
        )

    try:
        body = BookNowIn.model_validate(_booking_request(values, provider, mode))
    except ValidationError as exc:
        fields = [".".join(str(p) for p in e["loc"]) for e in exc.errors()]
        return again(_field_errors(fields), None, 422)
    key = values.get("idempotency_key") or None
    try:
        request.app.state.throttle.hit(Limit.book, caller.id)
        with db.transaction() as session:
            result = bookings.book_now(
                session, caller, body, key[:255] if key else None, now, policy
            )
    except Problem as problem:
        errors = _field_errors([e["field"] for e in problem.errors or []])
        page = again(errors, words.problem_text(problem.code), problem.status)
        page.headers.update(problem.headers or {})  # Retry-After
        return page
    answer = result.answer
    return see_other(f"/chat/{answer.conversation.id}#booking-{answer.booking.id}")


@router.post("/providers/{provider_id}/chat")
def open_chat(provider_id: str, db: Db, caller: SignedIn) -> Response:
    with db.transaction() as session:
        conversation = chat.open_conversation(session, caller, provider_id)
    return see_other(f"/chat/{conversation.id}")


# -- accounts ----------------------------------------------------------------------------------


@router.get("/signin")
def signin_form(
    request: Request, caller: Visitor, next: Annotated[str | None, Query()] = None
) -> Response:
    return render(
        request, "signin.html", caller=caller, next=safe_next(next), email="", problem=None
    )


def _token_max_age(settings: Settings) -> int:
    return settings.token_ttl_days * 24 * 3600


@router.post("/signin")
def signin(
    request: Request,
    db: Db,
    settings: AppSettings,
    throttle: Throttler,
    address: ClientAddress,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    try:
        throttle.hit(Limit.login_address, address)
        throttle.hit(Limit.login_account, accounts.normalise_email(email))
        # The password is checked with no transaction open, on the low-priority hashing
        # threads (issue #13: a sign-in must not hold SQLite's write lock while hashing).
        token, user = accounts.sign_in(
            db, request.app.state.passwords.verify_blocking, email=email, password=password
        )
    except Problem as problem:
        return with_headers(
            problem,
            render(
                request,
                "signin.html",
                caller=None,
                next=safe_next(next),
                email=email,
                problem=words.problem_text(problem.code),
                status_code=problem.status,
            ),
        )
    default = "/dashboard" if user.role in ("therapist", "place") else "/"
    if user.role == "admin":
        default = "/admin"
    response = see_other(safe_next(next, default) if next != "/" else default)
    set_session(request, response, token, _token_max_age(settings))
    return response


SIGNUP_ROLES = [r for r in SELF_REGISTERED]


@router.get("/signup")
def signup_form(request: Request, caller: Visitor) -> Response:
    return render(
        request,
        "signup.html",
        caller=caller,
        roles=SIGNUP_ROLES,
        role_names=words.ROLE,
        values={"role": "customer"},
        errors={},
        problem=None,
    )


@router.post("/signup")
async def signup(request: Request, db: Db, settings: AppSettings) -> Response:
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_signup, request, db, settings, values)


def _signup(request: Request, db: Any, settings: Settings, values: dict[str, str]) -> Response:
    try:
        body = RegisterIn.model_validate(
            {
                "email": values.get("email", ""),
                "password": values.get("password", ""),
                "name": values.get("name", ""),
                "role": values.get("role", ""),
            }
        )
    except ValidationError as exc:
        hints = {
            "email": N_("Write a valid email address."),
            "password": N_("A password has at least 8 characters."),
            "name": N_("Write your name (or your business's)."),
            "role": N_("Choose what kind of account you need."),
        }
        errors = {str(e["loc"][0]): hints.get(str(e["loc"][0]), "") for e in exc.errors()}
        return render(
            request,
            "signup.html",
            caller=None,
            roles=SIGNUP_ROLES,
            role_names=words.ROLE,
            values=values,
            errors=errors,
            problem=words.problem_text("validation_failed"),
            status_code=422,
        )
    try:
        request.app.state.throttle.hit(Limit.register, client_address(request))
        # Hashed before any transaction, on the low-priority hashing threads.
        password_hash = request.app.state.passwords.hash_blocking(body.password)
        with db.transaction() as session:
            token, user = accounts.register(
                session,
                email=str(body.email),
                password_hash=password_hash,
                name=body.name,
                role=Role(body.role),
            )
    except Problem as problem:
        return with_headers(
            problem,
            render(
                request,
                "signup.html",
                caller=None,
                roles=SIGNUP_ROLES,
                role_names=words.ROLE,
                values=values,
                errors={},
                problem=words.problem_text(problem.code),
                status_code=problem.status,
            ),
        )
    response = see_other("/dashboard" if user.role in ("therapist", "place") else "/")
    set_session(request, response, token, _token_max_age(settings))
    return response


@router.post("/signout")
def signout(request: Request, db: Db, live: Live) -> Response:
    """Signs out, and closes (4401) the sockets this session opened, on every process."""
    token = session_token(request)
    if token:
        with db.transaction() as session:
            accounts.logout(session, token)
        request.app.state.tokens.forget(token)  # the API's token cache, at once
        if live is not None:
            live.publish_revocation([token_digest(token)])
    response = see_other("/")
    clear_session(request, response)
    return response


@router.post("/lang")
def choose_language(
    request: Request,
    lang: Annotated[str, Form(max_length=5)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    response = see_other(safe_next(next))
    if lang in LANGUAGES:
        set_language(request, response, lang)
    return response
