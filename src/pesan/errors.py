"""Problem details (RFC 9457): the one shape every error takes, and the handlers that make it.

Domain code raises `Problem` (or one of its named subclasses) with a stable `code`;
nothing else builds an error response.
"""

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pesan import metrics
from pesan.logs import request_id_var

log = logging.getLogger("pesan.errors")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        errors: Sequence[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.errors = list(errors) if errors else None
        self.headers = headers
        self.extra = extra  # further members of the problem body, documented in ProblemOut


class NotFound(Problem):
    status = 404
    code = "not_found"


class Unauthorized(Problem):
    status = 401
    code = "not_authenticated"

    def __init__(self, detail: str = "Sign in first.", *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(Problem):
    status = 403
    code = "forbidden"


class Conflict(Problem):
    status = 409
    code = "conflict"


class ValidationFailed(Problem):
    status = 422
    code = "validation_failed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[{"field": field, "message": message}])


class SlotUnavailable(Conflict):
    """The time asked for cannot be booked; the nearest free start times come with it."""

    code = "slot_unavailable"

    def __init__(self, detail: str, free_start_times: Sequence[str]) -> None:
        super().__init__(detail, extra={"freeStartTimes": list(free_start_times)})


class ServiceUnavailable(Problem):
    status = 503
    code = "service_unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class PayloadTooLarge(Problem):
    status = 413
    code = "payload_too_large"


class RateLimited(Problem):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


# The database unreachable, timed out (statement, lock, busy, pool) or unable to write: an
# outage the operator fixes, answered 503 rather than 500. Constraint refusals are not here.
DATABASE_OUTAGES: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)


def is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_OUTAGES):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def outage_summary(exc: BaseException) -> str:
    """The driver's first line, without SQL or parameters: for the one log line an outage gets."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0][:200] if text else ''}"


def database_unavailable() -> Problem:
    return ServiceUnavailable("The database is unavailable just now; try again shortly.")


def problem_body(
    status: int,
    code: str,
    detail: str,
    errors: Sequence[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "code": code,
        "requestId": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    errors: Sequence[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, errors, extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        # A body that is not JSON at all: its loc ends in a character offset, not a field.
        loc = ("body",) if err.get("type") == "json_invalid" else err.get("loc", ())
        out.append({"field": _field_name(loc), "message": message})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every known failure into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.detail, exc.errors, exc.headers, exc.extra
        )

    @app.exception_handler(IntegrityError)
    async def _refused(request: Request, exc: IntegrityError) -> JSONResponse:
        problem = refused_by_database(exc)
        return problem_response(problem.status, problem.code, problem.detail)

    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_outage(exc):
            raise exc  # another database error (a constraint): not an outage
        metrics.DATABASE_UNAVAILABLE.inc()
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            outage_summary(exc),
        )
        problem = database_unavailable()
        return problem_response(problem.status, problem.code, problem.detail, None, problem.headers)

    for outage in (*DATABASE_OUTAGES, sa_exc.DBAPIError):
        app.add_exception_handler(outage, _outage)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, "validation_failed", detail or "Invalid request.", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "not_authenticated",
            403: "forbidden",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, code, detail, headers=headers)


# What a database refusal means, by the name of the constraint that refused. Use cases catch
# the refusals they expect and answer better (with free times, say); this is the floor: a
# constraint violation is a 409 with a sentence, never a 500.
CONSTRAINT_PROBLEMS: dict[str, tuple[str, str]] = {
    "ex_bookings_no_overlap": ("slot_unavailable", "The provider is already booked then."),
    "uq_users_email": ("email_taken", "An account with that email already exists."),
    "uq_conversations_pair_key": ("conflict", "That conversation was just made; retry."),
    "uq_messages_sender_id_client_message_id": (
        "client_message_id_reused",
        "That clientMessageId was used.",
    ),
    "uq_reschedule_proposals_open": ("proposal_open", "This booking has an open proposal."),
    "pk_idempotency_keys": ("idempotency_key_reused", "That Idempotency-Key is in use."),
}


def constraint_name(exc: IntegrityError) -> str | None:
    """The refusing constraint's name: PostgreSQL says it; SQLite names it in its message."""
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    message = str(exc.orig)
    for known in CONSTRAINT_PROBLEMS:
        if known in message:
            return known
    # SQLite: "UNIQUE constraint failed: users.email" or "CHECK constraint failed: ck_..."
    if "constraint failed:" in message:
        detail = message.split("constraint failed:", 1)[1].strip()
        if detail.startswith("users.email"):
            return "uq_users_email"
        if detail.startswith("conversations.pair_key"):
            return "uq_conversations_pair_key"
        if detail.startswith("messages.sender_id"):
            return "uq_messages_sender_id_client_message_id"
        if detail.startswith("reschedule_proposals.booking_id"):
            return "uq_reschedule_proposals_open"
        if detail.startswith("idempotency_keys."):
            return "pk_idempotency_keys"
        return detail.split()[0]
    return None


def refused_by_database(exc: IntegrityError) -> Problem:
    name = constraint_name(exc)
    if name in CONSTRAINT_PROBLEMS:
        code, detail = CONSTRAINT_PROBLEMS[name]
        return Conflict(detail, code=code)
    log.warning("refused by the database (constraint %s): %s", name, exc.orig)
    return Conflict("The database refused this change; reload and try again.", code="conflict")
