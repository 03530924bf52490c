"""Throttling: how often one account, user or client address may sign in, register, send, book
or type, with the `limits` library (Redis when PESAN_REDIS_URL is set, so every server process
counts together; in memory otherwise).

Each limit is a setting, PESAN_LIMIT_<NAME>, in the library's notation ("20/minute", or several
separated by `;`). PESAN_LIMITS_ENABLED=false turns them all off (load tests, benchmarks).
If Redis is away the limits are not enforced for a moment: throttling must never take sign-in
down with it.
"""

import contextlib
import logging
import math
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from pesan import metrics
from pesan.config import Settings
from pesan.errors import RateLimited

log = logging.getLogger("pesan.throttle")


class Limit(StrEnum):
    """What is counted, and per what."""

    login_account = "login_account"  # sign-in attempts per account (the email typed)
    login_address = "login_address"  # sign-in attempts per client address
    register = "register"  # registrations per client address
    send = "send"  # chat messages per user
    book = "book"  # Book Now requests per user
    typing = "typing"  # typing frames per user


DOING = {
    Limit.login_account: "sign-in attempts for this account",
    Limit.login_address: "sign-in attempts from your address",
    Limit.register: "registrations from your address",
    Limit.send: "messages",
    Limit.book: "booking requests",
    Limit.typing: "typing notices",
}
SKIP_AFTER_FAILURE = 2.0


class Throttle:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.enabled = settings.limits_enabled
        self.limits: dict[Limit, list[RateLimitItem]] = {
            name: parse_many(getattr(settings, f"limit_{name.value}")) for name in Limit
        }
        self._clock = clock
        self._storage: Any = None
        self._strategy: MovingWindowRateLimiter | None = None
        self._uri = settings.redis_url or "memory://"
        self._skip_until = 0.0

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._strategy is None:
            options: dict[str, Any] = {}
            if self._uri.startswith("redis"):
                options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
            self._storage = storage_from_string(self._uri, key_prefix="pesan", **options)
            self._strategy = MovingWindowRateLimiter(self._storage)
        return self._strategy

    def retry_after(self, name: Limit, key: str) -> int | None:
        """Count one `name` for `key`: None if allowed, else the seconds until it would be."""
        if not self.enabled or time.monotonic() < self._skip_until:
            return None
        try:
            limiter = self._limiter()
            for item in self.limits[name]:
                if not limiter.hit(item, name.value, key):
                    reset = limiter.get_window_stats(item, name.value, key).reset_time
                    metrics.THROTTLED.labels(limit=name.value).inc()
                    return max(1, math.ceil(reset - self._clock()))
        except Exception as exc:  # the store is away: let the request through
            self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE
            metrics.BROKER_ERRORS.labels(op="throttle").inc()
            log.warning("throttle store unavailable, limits not enforced for now: %s", exc)
        return None

    def hit(self, name: Limit, key: str) -> None:
        """Count one `name` for `key`, or raise 429 rate_limited with Retry-After."""
        wait = self.retry_after(name, key)
        if wait is not None:
            raise RateLimited(f"Too many {DOING[name]}; try again in {wait} s.", retry_after=wait)

    async def check(self, name: Limit, key: str) -> None:
        """`hit`, from the event loop: counting in Redis is a round trip, made on a worker
        thread; counting in memory is not, and is made here."""
        if self._uri.startswith("redis"):
            await run_in_threadpool(self.hit, name, key)
        else:
            self.hit(name, key)

    def close(self) -> None:
        storage = self._storage
        if storage is not None and hasattr(storage, "storage"):
            with contextlib.suppress(Exception):
                storage.storage.close()
