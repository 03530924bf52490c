"""Admin pages: the notification inbox, every booking, conversations (read-only), and the
system status (the /readyz checks, as sentences)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from pesan import ops
from pesan.admin import service as admin
from pesan.bookings import views as booking_views
from pesan.bookings.enums import BookingStatus
from pesan.chat import views as chat_views
from pesan.deps import AppSettings, Db
from pesan.roles import Role
from pesan.web.chats import helpers_for, other_party
from pesan.web.i18n import N_
from pesan.web.render import live_state, render
from pesan.web.routing import WebRoute
from pesan.web.session import SignedIn, require_role

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ADMINS = {Role.admin}

# Each /readyz check, as a sentence when it passes and when it fails.
CHECK_SENTENCES = {
    "database": (N_("The database answers."), N_("The database does not answer.")),
    "schema": (
        N_("The database schema is up to date."),
        N_("The database schema is not up to date: run `pesan db upgrade`."),
    ),
    "write": (N_("Bookings and messages can be saved."), N_("Nothing can be saved right now.")),
    "broker": (
        N_("Live updates reach every server process."),
        N_("Live updates are not reaching other server processes (Redis)."),
    ),
}


@router.get("/admin")
def inbox(request: Request, db: Db, caller: SignedIn) -> Response:
    require_role(caller, ADMINS)
    with db.reader() as session:
        live = live_state(session, caller)
        items, _ = admin.list_messages(session, caller, 100, None)
    return render(request, "admin_inbox.html", caller=caller, live=live, items=items)


@router.get("/admin/bookings")
def all_bookings(
    request: Request,
    db: Db,
    caller: SignedIn,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    require_role(caller, ADMINS)
    chosen = BookingStatus(status) if status in {s.value for s in BookingStatus} else None
    with db.reader() as session:
        live = live_state(session, caller)
        items, _ = booking_views.list_bookings(session, caller, chosen, 100, None)
    return render(
        request,
        "admin_bookings.html",
        caller=caller,
        live=live,
        items=items,
        statuses=list(BookingStatus),
        chosen=chosen or "",
        **helpers_for(request, caller),
    )


@router.get("/admin/conversations")
def conversations(request: Request, db: Db, caller: SignedIn) -> Response:
    require_role(caller, ADMINS)
    with db.reader() as session:
        live = live_state(session, caller)
        items = chat_views.all_conversations(session, caller, 100)
    return render(
        request,
        "admin_conversations.html",
        caller=caller,
        live=live,
        conversations=items,
        other_party=lambda c: other_party(c, caller),
    )


@router.get("/admin/status")
def status(request: Request, db: Db, caller: SignedIn, settings: AppSettings) -> Response:
    require_role(caller, ADMINS)
    ctx = ops.Context(settings, db, request.app.state.broker)
    results = ops.run_checks(ctx, ops.READY_CHECKS)
    lines = []
    for result in results:
        good, bad = CHECK_SENTENCES.get(result.name, (result.name, result.name))
        lines.append(
            {"ok": result.ok, "sentence": good if result.ok else bad, "detail": result.detail}
        )
    with db.reader() as session:
        live = live_state(session, caller)
    return render(
        request,
        "admin_status.html",
        caller=caller,
        live=live,
        lines=lines,
        all_ok=all(r.ok for r in results),
    )
