"""Fan-out of live events to the WebSockets of every server process.

Live delivery is a fast path over durable storage: every durable event is already in the
outbox when it is published, and a socket that misses a publication (a Redis outage, a
lost pub/sub message, a restart) fills the gap from the outbox. So a broker may drop
things; it must never block or fail a request.

- `InProcessBroker`: one server process, no Redis.
- `RedisBroker`: Redis pub/sub, so a message sent through process A reaches a socket held
  by process B. Events are handed to local sockets directly as well, so one process keeps
  working live while Redis is away.
"""

import asyncio
import contextlib
import logging
import os
import time
import uuid
from typing import Any, Protocol

import orjson

from pesan import metrics
from pesan.live.events import Event

log = logging.getLogger("pesan.broker")
CHANNEL = "pesan:events"


class Sink(Protocol):
    """What a broker delivers to: the process's hub of sockets."""

    def deliver(self, events: list[Event], published_at: float) -> None: ...

    def listening(self, user_ids: set[str]) -> bool: ...

    def deliver_ephemeral(self, user_ids: list[str], frame: dict[str, Any]) -> None: ...

    def catch_up_all(self) -> None: ...

    def revoke(self, token_digests: list[str]) -> None: ...


class Broker(Protocol):
    # Whether publish() waits on the network: if so, never called on the event loop.
    publish_blocks: bool

    async def start(self, sink: Sink) -> None: ...

    async def stop(self) -> None: ...

    def publish(self, events: list[Event]) -> None: ...

    def publish_ephemeral(self, user_ids: list[str], frame: dict[str, Any]) -> None: ...

    def publish_revocation(self, token_digests: list[str]) -> None: ...

    def check(self) -> tuple[bool, str]: ...


class InProcessBroker:
    """Hands events to this process's sockets. Safe to call from any thread."""

    publish_blocks = False

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: Sink | None = None

    async def start(self, sink: Sink) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    def publish(self, events: list[Event]) -> None:
        # Waking the event loop from a worker thread costs a syscall and a GIL hand-over;
        # skip it when no socket of this process follows these users. A socket that opens
        # meanwhile reads the outbox after joining the hub, so it misses nothing.
        sink = self._sink
        if events and sink is not None and sink.listening({e.user_id for e in events}):
            self._call(lambda sink: sink.deliver(events, time.time()))

    def publish_ephemeral(self, user_ids: list[str], frame: dict[str, Any]) -> None:
        self._call(lambda sink: sink.deliver_ephemeral(user_ids, frame))

    def publish_revocation(self, token_digests: list[str]) -> None:
        """Close the sockets these tokens opened (signed out)."""
        self._call(lambda sink: sink.revoke(token_digests))

    def _call(self, fn: Any) -> None:
        loop, sink = self._loop, self._sink
        if loop is None or sink is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(sink)
        else:
            loop.call_soon_threadsafe(fn, sink)

    def check(self) -> tuple[bool, str]:
        return True, "in-process (single server process)"


class RedisBroker(InProcessBroker):
    """Redis pub/sub across processes, plus direct delivery to this process's sockets."""

    publish_blocks = True

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        super().__init__()
        import redis

        self.url = url
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._timeout = timeout
        self._sync = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False
        # After a failed publish, skip Redis briefly so an outage does not slow every send.
        self._skip_until = 0.0

    async def start(self, sink: Sink) -> None:
        await super().start(sink)
        self._task = asyncio.create_task(self._listen(), name="pesan-redis-subscriber")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await super().stop()
        self.close_sync()

    def close_sync(self) -> None:
        with contextlib.suppress(Exception):
            self._sync.close()

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        super().publish(events)
        message = {
            "origin": self.origin,
            "at": time.time(),
            "events": [[e.user_id, e.seq, e.type, e.data] for e in events],
        }
        self._send(message)

    def publish_ephemeral(self, user_ids: list[str], frame: dict[str, Any]) -> None:
        super().publish_ephemeral(user_ids, frame)
        self._send({"origin": self.origin, "ephemeral": {"userIds": user_ids, "frame": frame}})

    def publish_revocation(self, token_digests: list[str]) -> None:
        super().publish_revocation(token_digests)
        # Not skipped after a failure: a signed-out token's sockets must close everywhere.
        self._send({"origin": self.origin, "revoked": token_digests}, always=True)

    def _send(self, message: dict[str, Any], *, always: bool = False) -> None:
        if not always and time.monotonic() < self._skip_until:
            metrics.BROKER_ERRORS.labels(op="publish_skipped").inc()
            return
        try:
            self._sync.publish(CHANNEL, orjson.dumps(message))
        except Exception as exc:  # stored already; other processes catch up from the outbox
            self._skip_until = time.monotonic() + 2.0
            metrics.BROKER_ERRORS.labels(op="publish").inc()
            log.warning("redis publish failed: %s", exc)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        backoff = 0.2
        while True:
            client = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=self._timeout, health_check_interval=5
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.subscribed = True
                backoff = 0.2
                log.info("subscribed to redis channel %s", CHANNEL)
                # Whatever was published while we were away is in the outbox.
                self._call(lambda sink: sink.catch_up_all())
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        await pubsub.ping()
                        continue
                    self._receive(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed:
                    log.warning("redis subscription lost: %s", exc)
                metrics.BROKER_ERRORS.labels(op="subscribe").inc()
                self.subscribed = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.subscribed = False
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass

    def _receive(self, data: Any) -> None:
        try:
            message = orjson.loads(data)
        except (TypeError, ValueError):
            return
        if not isinstance(message, dict) or message.get("origin") == self.origin:
            return
        sink = self._sink
        if sink is None:
            return
        if "events" in message:
            events = [Event(u, int(s), t, d) for u, s, t, d in message["events"]]
            sink.deliver(events, float(message.get("at", time.time())))
        elif "ephemeral" in message:
            eph = message["ephemeral"]
            sink.deliver_ephemeral(list(eph["userIds"]), dict(eph["frame"]))
        elif "revoked" in message:
            sink.revoke([str(d) for d in message["revoked"]])

    def check(self) -> tuple[bool, str]:
        try:
            self._sync.ping()
        except Exception as exc:
            return False, f"Redis unreachable: {exc}"
        if self._task is not None and not self.subscribed:
            return False, "Redis answers, but this process is not subscribed yet"
        return True, "Redis reachable" + (", subscribed" if self._task is not None else "")


def make_broker(redis_url: str | None) -> Broker:
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
