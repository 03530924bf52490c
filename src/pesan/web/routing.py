"""How web pages answer when something goes wrong: a page with a sentence and a way forward,
in the visitor's language (the API under /api/v1 keeps problem+json)."""

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from pesan import metrics
from pesan.errors import Problem, database_unavailable, is_database_outage, outage_summary
from pesan.logs import request_id_var
from pesan.web.render import render
from pesan.web.session import NotForYou, SignInFirst, optional_caller
from pesan.web.words import problem_text

log = logging.getLogger("pesan.web")


def error_page(request: Request, status: int, code: str) -> Response:
    caller = None
    try:
        caller = optional_caller(request, request.app.state.db)
    except Exception:  # the database may be what failed
        caller = None
    return render(
        request,
        "error.html",
        caller=caller,
        status_code=status,
        sentence=problem_text(code),
        code=code,
        status=status,
        request_id=request_id_var.get(),
    )


def wants_fragment(request: Request) -> bool:
    """A request from the page's own script (it swaps HTML in place instead of navigating)."""
    return request.headers.get("x-requested-with") == "pesan"


class WebRoute(APIRoute):
    """Every failure of a page becomes a page (or a short fragment for the page's script)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInFirst as redirect:
                return RedirectResponse(redirect.location, status_code=303)
            except NotForYou:
                return error_page(request, 403, "not_for_you")
            except Problem as problem:
                page = error_page(request, problem.status, problem.code)
                page.headers.update(problem.headers or {})  # Retry-After on 429 and 503
                return page
            except RequestValidationError:
                return error_page(request, 422, "validation_failed")
            except Exception as exc:
                if is_database_outage(exc):  # expected: a 503 page and one log line
                    metrics.DATABASE_UNAVAILABLE.inc()
                    log.warning(
                        "database unavailable on %s %s: %s",
                        request.method,
                        request.url.path,
                        outage_summary(exc),
                    )
                    outage = database_unavailable()
                    page = error_page(request, outage.status, outage.code)
                    page.headers.update(outage.headers or {})
                    return page
                metrics.UNHANDLED_ERRORS.inc()
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return error_page(request, 500, "internal_error")

        return answer
