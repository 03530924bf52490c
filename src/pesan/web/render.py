"""Templates: one Jinja2 environment (autoescaped, gettext from the visitor's language). The
headers every page carries (a Content-Security-Policy that allows nothing from elsewhere, no
caching) come from the one request middleware, as for every other answer."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from pesan.auth import Caller
from pesan.chat import views as chat_views
from pesan.live import events
from pesan.roles import BOOKERS, PROVIDERS, Role
from pesan.web import i18n
from pesan.web.session import language_of
from pesan.web.system_lines import system_text
from pesan.web.words import js_strings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def live_state(session: Session, caller: Caller | None) -> dict[str, Any] | None:
    """What the page's live client starts from; read before the page's data, so that every
    change after it reaches the page (twice at worst, and the client drops repeats)."""
    if caller is None:
        return None
    return {
        "userId": caller.id,
        "lastEventId": events.newest_event_id(session, caller.id),
        "unread": chat_views.unread_by_conversation(session, caller.id),
    }


def render(
    request: Request,
    template: str,
    *,
    caller: Caller | None,
    live: dict[str, Any] | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = language_of(request)
    token = i18n.use(language)
    try:
        csrf = request.scope.get("csrftoken")
        html = environment.get_template(template).render(
            request=request,
            caller=caller,
            live=live,
            unread_total=sum((live or {}).get("unread", {}).values()),
            lang=language,
            languages=i18n.LANGUAGE_NAMES,
            csrf_token=csrf() if callable(csrf) else "",
            is_booker=caller is not None and caller.role in BOOKERS,
            is_provider=caller is not None and caller.role in PROVIDERS,
            is_admin=caller is not None and caller.role is Role.admin,
            money=lambda price: i18n.money(price.amount, price.currency, language),
            clock=lambda moment, zone: i18n.clock(moment, zone, language),
            day_and_clock=lambda moment, zone: i18n.day_and_clock(moment, zone, language),
            day_name=lambda moment, zone: i18n.day_name(moment, zone, language),
            zone_label=i18n.zone_label,
            js_strings=js_strings,
            system_text=system_text,
            language_name=lambda tag: i18n.language_name(tag, language),
            **context,
        )
    finally:
        i18n.reset(token)
    return HTMLResponse(html, status_code=status_code)  # headers: pesan.middleware
