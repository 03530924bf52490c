"""Builds the ASGI app: routers, middleware, error handlers, and the lifespan that refuses to
start on a database whose schema is not right."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI

from pesan import __version__, errors, migrate, ops, scheduled, web
from pesan.accounts.routes import router as accounts_router
from pesan.admin.routes import router as admin_router
from pesan.auth import PasswordHashing, TokenCache
from pesan.bookings.routes import provider_router as availability_router
from pesan.bookings.routes import router as bookings_router
from pesan.chat import views as chat_views
from pesan.chat.routes import router as chat_router
from pesan.clock import SystemClock
from pesan.config import Settings, get_settings
from pesan.db import Database
from pesan.live.broker import make_broker
from pesan.live.ws import Hub
from pesan.live.ws import router as ws_router
from pesan.middleware import RequestMiddleware
from pesan.providers.routes import router as providers_router
from pesan.routing import include_flat
from pesan.schemas import ProblemOut, problem_responses
from pesan.throttle import Throttle

log = logging.getLogger("pesan.app")

API_PREFIX = "/api/v1"


# The collector's first generation runs once this many more objects were made than freed
# (the default, 700, is passed by a few requests in flight; each pass costs ~1 ms).
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    """For a server process that runs one app (`pesan serve`), once it has started.

    What start-up made (modules, routes, the schema, compiled statements) lives as long as the
    process: frozen, no collection walks it again, where a full one took ~120 ms of one
    event loop under load (measured) and stalled every request in flight. And the first
    generation is collected less often (`GC_THRESHOLDS`). Not for tests, which build many
    apps in one process: a frozen app would never be collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_served_app() -> FastAPI:
    """The app as `pesan serve` runs it: one per process, the collector tuned (`tune_gc`)."""
    return create_app(own_process=True)


def create_app(
    settings: Settings | None = None, *, check_schema: bool = True, own_process: bool = False
) -> FastAPI:
    settings = settings or get_settings()
    db = Database(
        settings.resolved_database_url, settings.db_timeouts, pool_size=settings.worker_threads
    )
    tokens = TokenCache(settings.token_cache_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        if check_schema:
            state = migrate.ensure_ready(db.engine, embedded=settings.is_embedded)
            log.info("schema ready at revision %s", state.head)
        broker = make_broker(settings.redis_url)
        hub = Hub(broker, audience=chat_views.party_ids, forget_tokens=tokens.forget_digests)
        await broker.start(hub)
        app.state.broker, app.state.hub = broker, hub
        db.publisher = broker.publish
        db.publisher_blocks = broker.publish_blocks
        ticker = None
        if settings.run_jobs:
            ticker = asyncio.create_task(scheduled.run_forever(db, app.state.clock, settings))
        if own_process:
            tune_gc()
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
            db.publisher = None
            await broker.stop()
            app.state.throttle.close()
            db.dispose()

    app = FastAPI(
        title="pesan",
        version=__version__,
        summary="Chat booking for wellness marketplaces.",
        description=(
            "Book Now creates the booking, its conversation, the booking message and the admin "
            "notification in one transaction. Every error is application/problem+json with a "
            "stable `code` and the `requestId`."
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by pesan.web with Swagger UI from a package, not a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.tokens = tokens
    app.state.passwords = PasswordHashing(settings.password_hash_threads)
    app.state.clock = SystemClock()
    app.state.throttle = Throttle(settings)
    app.state.broker = None
    app.state.hub = None

    # Any route may meet a body over the limit (413) or a database outage (503). Routes are
    # copied into one flat table (pesan.routing): FastAPI's included routers cost more per
    # request than a chat send. Routes are tried in order: the busiest come first (no path of
    # one router is also a path of another).
    common = problem_responses(400, 401, 403, 404, 409, 413, 422, 503)
    for router in (
        chat_router,
        bookings_router,
        accounts_router,
        providers_router,
        availability_router,
        admin_router,
        ws_router,
    ):
        include_flat(app.router, router, prefix=API_PREFIX, responses=common)
    include_flat(app.router, ops.router, responses=problem_responses(401, 422))
    errors.install(app)
    web.install(app, settings, API_PREFIX)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.max_body_bytes)
    _publish_problem_schema(app)
    return app


def _publish_problem_schema(app: FastAPI) -> None:
    """Add the problem+json shape to the OpenAPI components that error responses refer to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            extra = ProblemOut.model_json_schema(
                by_alias=True, ref_template="#/components/schemas/{model}"
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(extra.pop("$defs", {}))
            schemas["ProblemOut"] = extra
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
