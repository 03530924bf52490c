"""One ASGI middleware for every request: request id, access log, metrics, and the last-resort
500 problem+json (logged with its traceback; the client sees only the request id)."""

import logging
import re
import time
import uuid

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pesan import metrics
from pesan.errors import problem_response
from pesan.logs import request_id_var

log = logging.getLogger("pesan.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def _route(self, scope: Scope) -> str:
        """The route template (`/api/v1/bookings/{booking_id}`) for metric labels."""
        if self._templates is None:
            paths = scope["app"].openapi().get("paths", {})
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
        request_id = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return

        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            where = "path" if "\x00" in scope["path"] else "query"
            response = problem_response(
                422,
                "validation_failed",
                f"{where}: must not contain NUL characters",
                [{"field": where, "message": "must not contain NUL characters"}],
                headers={"X-Request-ID": request_id},
            )
            await response(scope, receive, send)
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
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
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
            request_id_var.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
