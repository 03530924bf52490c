"""One ASGI middleware for every request: request id, access log, metrics, security headers, the
body size limit, and the last-resort 500 problem+json (logged with its traceback; the client
sees only the request id)."""

import logging
import re
import time

from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pesan import metrics
from pesan.errors import problem_response
from pesan.ids import random_bytes
from pesan.logs import request_id_var

log = logging.getLogger("pesan.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


API_PREFIX = "/api/v1"
DOCS_PATH = f"{API_PREFIX}/docs"

# Pages and API answers may only use this origin's own files (scripts, styles, sockets, the
# ring sound), are never framed, and send no Referer to other sites. The interactive API docs
# (Swagger UI, served locally) run an inline start-up script and set inline styles: that path
# alone allows them.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
CACHEABLE = "/static/"  # the web app's own files; every other answer may be private


def security_headers(path: str, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers every answer gets. Pages and API answers (tokens, private data) are never
    stored; the web app's static files may be."""
    present = {key.lower() for key, _ in headers}
    out = list(headers) + [h for h in SECURITY_HEADERS if h[0] not in present]
    if b"content-security-policy" not in present:
        out.append((b"content-security-policy", (DOCS_CSP if path == DOCS_PATH else CSP).encode()))
    if not path.startswith(CACHEABLE) and b"cache-control" not in present:
        out.append((b"cache-control", b"no-store"))
    return out


class RequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = 1024 * 1024) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def _route(self, scope: Scope) -> str:
        """The route template (`/api/v1/bookings/{booking_id}`) for metric labels."""
        if self._templates is None:
            # Every route's full template, API and web pages alike, in routing order.
            paths = dict.fromkeys(
                c.path for c in iter_route_contexts(scope["app"].routes) if c.path
            )
            self._templates = [(compile_path(path)[0], path) for path in paths]
        for pattern, template in self._templates:
            if pattern.match(scope["path"]):
                return template
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else random_bytes(16).hex()
        token = request_id_var.set(request_id)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return

        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = security_headers(scope["path"], list(message.get("headers", [])))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        refusal = self._refuse_early(scope)
        if refusal is not None:
            await refusal(scope, receive, send_wrapper)
            self._log(scope, started, refusal.status_code)
            request_id_var.reset(token)
            return
        received = 0

        async def receive_limited() -> Message:
            """Counts what arrives without a (truthful) Content-Length: stops past the limit."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large_detail())
            return message

        try:
            await self.app(scope, receive_limited, send_wrapper)
        except Exception:
            metrics.UNHANDLED_ERRORS.inc()
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if response_started:
                raise
            response = problem_response(
                500,
                "internal_error",
                f"Something went wrong on our side. Quote request id {request_id}.",
            )
            status = 500
            await response(scope, receive, send_wrapper)
        finally:
            self._log(scope, started, status)
            request_id_var.reset(token)

    def _too_large_detail(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes."

    def _refuse_early(self, scope: Scope) -> Response | None:
        """A request refused before anything reads it: NUL characters, a declared body too big."""
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            where = "path" if "\x00" in scope["path"] else "query"
            return problem_response(
                422,
                "validation_failed",
                f"{where}: must not contain NUL characters",
                [{"field": where, "message": "must not contain NUL characters"}],
            )
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return problem_response(413, "payload_too_large", self._too_large_detail())
        return None

    def _log(self, scope: Scope, started: float, status: int) -> None:
        elapsed = time.perf_counter() - started
        route = self._route(scope)
        method = scope["method"]
        metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
        metrics.HTTP_LATENCY.labels(method=method, route=route).observe(elapsed)
        log.info(
            "%s %s %s %.1fms",
            method,
            scope["path"],
            status,
            elapsed * 1000,
            extra={"status": status, "route": route, "duration_ms": round(elapsed * 1000, 1)},
        )


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
