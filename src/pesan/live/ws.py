"""`GET /api/v1/ws`: live events over a WebSocket, resumable from the last event a client saw.

Protocol (see docs/live-events.md): the client's first frame is
`{"type": "auth", "token": ..., "lastEventId": ...}`; the server sends every durable event the
client missed, in order, then `{"type": "ready", "lastEventId": ...}`, then live events.

Each socket has one pump task and is the only one to send on it. Live events are offered
to the pump; it sends them strictly in per-user sequence order, and whenever it sees a gap
(an event it was not offered, e.g. Redis was away) it reads the missing ones from the
outbox. So a client never sees a gap or an event twice, and a repeated event has its id.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from pesan import metrics
from pesan.auth import Caller, caller_for_token, token_digest, token_is_valid
from pesan.config import Settings
from pesan.db import Database
from pesan.errors import Problem, is_database_outage, outage_summary
from pesan.live import events
from pesan.live.events import Event
from pesan.live.models import UserEvent, UserEventCounter
from pesan.throttle import Limit, Throttle

log = logging.getLogger("pesan.ws")
router = APIRouter(tags=["live"])

CLOSE_AUTH_FAILED = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_TOO_SLOW = 1013
CLOSE_TRY_AGAIN = 1013  # the database is unavailable: reconnect and resume shortly
CLOSE_SERVER_ERROR = 1011
CLOSE_TOO_BIG = 1009
SESSION_COOKIE = "pesan_session"
REPLAY_PAGE = 500
TYPING_EVERY_SECONDS = 1.0


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        caller: Caller,
        db: Database,
        settings: Settings,
        token_digest: str = "",
        throttle: Throttle | None = None,
    ):
        self.websocket = websocket
        self.caller = caller
        self.db = db
        self.token_digest = token_digest
        self.throttle = throttle
        self.max_frame = settings.ws_max_frame_bytes
        self.max_pending = settings.ws_send_queue_max
        self.last_seq = 0
        self.pending: dict[int, tuple[Event, float]] = {}
        self.ephemeral: deque[dict[str, Any]] = deque(maxlen=100)
        self.need_outbox = False
        self.wake = asyncio.Event()
        self.closing: tuple[int, str, str] | None = None  # code, reason, metric label
        self.throttled = False
        self.parties: dict[str, list[str]] = {}
        self.typing_sent: dict[str, float] = {}

    # -- called by the hub, on the event loop --------------------------------------------
    def offer(self, batch: list[Event], published_at: float) -> None:
        for event in batch:
            if event.seq > self.last_seq:
                self.pending[event.seq] = (event, published_at)
        if len(self.pending) > self.max_pending:
            # A slow client: drop it; it resumes from its last id.
            self.close_soon(CLOSE_TOO_SLOW, "too slow; resume", "slow_client")
        self.wake.set()

    def close_soon(self, code: int, reason: str, label: str) -> None:
        if self.closing is None:
            self.closing = (code, reason, label)
        self.wake.set()

    def offer_ephemeral(self, frame: dict[str, Any]) -> None:
        self.ephemeral.append(frame)
        self.wake.set()

    def catch_up(self) -> None:
        self.need_outbox = True
        self.wake.set()

    # -- the pump: the only sender ---------------------------------------------------------
    async def pump(self, client_last: int | None, client_sent_id: bool) -> None:
        newest, resync = await run_in_threadpool(self._replay_plan, client_last, client_sent_id)
        if resync:
            await self._send({"type": "resync"})
            self.last_seq = newest
        elif client_last is None:
            self.last_seq = newest
        else:
            self.last_seq = client_last
            self.need_outbox = True
            await self._drain()
        await self._send({"type": "ready", "lastEventId": events.format_event_id(self.last_seq)})
        await self.forward()

    async def forward(self) -> None:
        """Send live events as they are offered, until the socket is closed or too slow."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.closing is not None:
                code, reason, label = self.closing
                metrics.WS_DROPPED.labels(reason=label).inc()
                await self.websocket.close(code=code, reason=reason)
                return
            while self.ephemeral:
                await self._send(self.ephemeral.popleft())
            await self._drain()

    def _replay_plan(self, client_last: int | None, client_sent_id: bool) -> tuple[int, bool]:
        """The user's newest event number, and whether the client must reload over REST."""
        with self.db.reader() as session:
            newest = session.scalar(
                select(UserEventCounter.last_seq).where(UserEventCounter.user_id == self.caller.id)
            )
            newest = int(newest or 0)
            if client_last is None:
                return newest, client_sent_id  # an id we cannot read: start over
            if client_last > newest:
                return newest, True  # not an id of ours (another database?)
            if client_last == newest:
                return newest, False
            oldest = session.scalar(
                select(func.min(UserEvent.seq)).where(UserEvent.user_id == self.caller.id)
            )
            gone = oldest is None or int(oldest) > client_last + 1
            return newest, gone

    async def _drain(self) -> None:
        while True:
            for seq in [s for s in self.pending if s <= self.last_seq]:
                del self.pending[seq]
            following = self.pending.pop(self.last_seq + 1, None)
            if following is not None:
                event, published_at = following
                await self._send_event(event)
                metrics.EVENT_LAG.observe(max(0.0, time.time() - published_at))
                continue
            if not (self.pending or self.need_outbox):
                return
            # A gap, or asked to look: read what we have not sent from the outbox.
            self.need_outbox = False
            missed = await run_in_threadpool(self._outbox_after, self.last_seq)
            if not missed:
                return
            for event in missed:
                if event.seq == self.last_seq + 1:
                    await self._send_event(event)
            if len(missed) == REPLAY_PAGE:
                self.need_outbox = True

    def _outbox_after(self, seq: int) -> list[Event]:
        with self.db.reader() as session:
            return events.events_after(session, self.caller.id, seq, REPLAY_PAGE)

    async def _send_event(self, event: Event) -> None:
        await self._send(event.frame())
        self.last_seq = event.seq
        metrics.EVENTS_DELIVERED.labels(type=event.type).inc()

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.websocket.send_text(orjson.dumps(frame).decode())

    # -- what the client sends ---------------------------------------------------------------
    async def read(self, hub: "Hub") -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if len(message.get("text") or message.get("bytes") or b"") > self.max_frame:
                self.close_soon(CLOSE_TOO_BIG, "frame too large", "frame_too_large")
                return
            try:
                frame = json.loads(message.get("text") or "")
            except (ValueError, TypeError):
                continue  # binary or not JSON: not ours to answer
            if not isinstance(frame, dict):
                continue
            kind = frame.get("type")
            if kind == "typing" and isinstance(frame.get("conversationId"), str):
                await self._typing(hub, frame["conversationId"])
            elif kind == "ping":
                self.offer_ephemeral({"type": "pong"})

    async def _typing(self, hub: "Hub", conversation_id: str) -> None:
        now = time.monotonic()
        if now - self.typing_sent.get(conversation_id, 0.0) < TYPING_EVERY_SECONDS:
            return
        if self.throttle is not None:
            wait = await run_in_threadpool(self.throttle.retry_after, Limit.typing, self.caller.id)
            if wait is not None:
                # Over the limit: dropped before any lookup; told once per stretch.
                if not self.throttled:
                    self.offer_ephemeral(
                        {"type": "error", "code": "rate_limited", "retryAfter": wait}
                    )
                self.throttled = True
                return
            self.throttled = False
        parties = self.parties.get(conversation_id)
        if parties is None:
            parties = await run_in_threadpool(self._parties_of, hub.audience, conversation_id)
            if len(self.parties) < 1000:
                self.parties[conversation_id] = parties
        if self.caller.id not in parties:
            return  # not a party: typing into someone else's conversation goes nowhere
        self.typing_sent[conversation_id] = now
        others = [p for p in parties if p != self.caller.id]
        frame = {
            "type": "typing",
            "data": {"conversationId": conversation_id, "userId": self.caller.id},
        }
        hub.broker.publish_ephemeral(others, frame)

    def token_still_valid(self) -> bool:
        """False once the token was revoked or expired (the database away: not our call)."""
        try:
            with self.db.reader() as session:
                return token_is_valid(session, self.token_digest)
        except Exception:
            return True

    def _parties_of(self, audience: "Audience", conversation_id: str) -> list[str]:
        with self.db.reader() as session:
            return audience(session, conversation_id)


# Who hears a typing frame for a conversation: its parties (the chat feature answers).
Audience = Callable[[Session, str], list[str]]


class Hub:
    """This process's open sockets, by user. Lives on the event loop."""

    def __init__(
        self,
        broker: Any,
        audience: Audience,
        forget_tokens: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.broker = broker
        self.audience = audience
        # Told of every revocation, from this process or another (the token cache).
        self.forget_tokens = forget_tokens
        self.by_user: dict[str, set[Connection]] = {}

    def add(self, connection: Connection) -> None:
        self.by_user.setdefault(connection.caller.id, set()).add(connection)
        metrics.WS_OPEN.inc()

    def remove(self, connection: Connection) -> None:
        connections = self.by_user.get(connection.caller.id)
        if connections and connection in connections:
            connections.discard(connection)
            metrics.WS_OPEN.dec()
            if not connections:
                del self.by_user[connection.caller.id]

    def listening(self, user_ids: set[str]) -> bool:
        """Whether a socket here follows any of these users (safe from any thread)."""
        return any(user_id in self.by_user for user_id in user_ids)

    def deliver(self, batch: list[Event], published_at: float) -> None:
        by_user: dict[str, list[Event]] = {}
        for event in batch:
            by_user.setdefault(event.user_id, []).append(event)
        for user_id, user_events in by_user.items():
            for connection in self.by_user.get(user_id, ()):
                connection.offer(user_events, published_at)

    def deliver_ephemeral(self, user_ids: list[str], frame: dict[str, Any]) -> None:
        for user_id in user_ids:
            for connection in self.by_user.get(user_id, ()):
                connection.offer_ephemeral(frame)

    def catch_up_all(self) -> None:
        for connections in self.by_user.values():
            for connection in connections:
                connection.catch_up()

    def revoke(self, token_digests: list[str]) -> None:
        """Close (4401) every socket opened with one of these tokens: they were signed out."""
        revoked = set(token_digests)
        if self.forget_tokens is not None:
            self.forget_tokens(token_digests)
        for connections in self.by_user.values():
            for connection in connections:
                if connection.token_digest in revoked:
                    connection.close_soon(CLOSE_AUTH_FAILED, "signed out", "revoked")


async def _authenticate(
    websocket: WebSocket, db: Database, settings: Settings
) -> tuple[Caller, Any, str]:
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), settings.ws_auth_timeout_seconds)
    except TimeoutError:
        await websocket.close(code=CLOSE_AUTH_TIMEOUT, reason="auth timeout")
        raise
    try:
        frame = json.loads(raw) if len(raw) <= settings.ws_max_frame_bytes else None
    except ValueError:
        frame = None
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        await websocket.close(code=CLOSE_AUTH_FAILED, reason="first frame must be auth")
        raise PermissionError("no auth frame")
    token = frame.get("token")
    if not token:
        token = websocket.cookies.get(SESSION_COOKIE) if _same_origin(websocket) else None
    if not isinstance(token, str) or not token:
        await websocket.close(code=CLOSE_AUTH_FAILED, reason="no credentials")
        raise PermissionError("no token")

    def lookup() -> Caller:
        with db.reader() as session:
            return caller_for_token(session, token)

    try:
        caller = await run_in_threadpool(lookup)
    except Problem:
        await websocket.close(code=CLOSE_AUTH_FAILED, reason="invalid token")
        raise PermissionError("bad token") from None
    except Exception as exc:
        code, reason = _close_for(exc)
        await websocket.close(code=code, reason=reason)
        raise PermissionError("no answer from the database") from None
    return caller, frame.get("lastEventId"), token_digest(token)


def _close_for(exc: BaseException) -> tuple[int, str]:
    """The close code for a failure on our side, with its one log line."""
    if is_database_outage(exc):
        log.warning("websocket closed, database unavailable: %s", outage_summary(exc))
        return CLOSE_TRY_AGAIN, "database unavailable; reconnect and resume"
    log.error("websocket failed", exc_info=exc)
    return CLOSE_SERVER_ERROR, "server error; reconnect and resume"


def _same_origin(websocket: WebSocket) -> bool:
    """Cookie auth only from our own pages (no cross-site WebSocket hijacking)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    state = websocket.app.state
    db: Database = state.db
    settings: Settings = state.settings
    hub: Hub = state.hub
    await websocket.accept()
    try:
        caller, last_event_id, digest = await _authenticate(websocket, db, settings)
    except (TimeoutError, PermissionError, WebSocketDisconnect):
        return
    client_last = events.parse_event_id(last_event_id) if last_event_id is not None else None
    connection = Connection(websocket, caller, db, settings, digest, state.throttle)
    hub.add(connection)
    pump = asyncio.create_task(
        connection.pump(client_last, client_sent_id=last_event_id is not None)
    )
    reader = asyncio.create_task(connection.read(hub))
    poller = asyncio.create_task(_poll(connection, settings.ws_poll_seconds))
    close = (1000, "")
    try:
        done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                close = _close_for(exc)
        if connection.closing is not None:
            close = connection.closing[:2]
    finally:
        hub.remove(connection)
        for task in (pump, reader, poller):
            task.cancel()
        for task in (pump, reader, poller):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await websocket.close(code=close[0], reason=close[1])


async def _poll(connection: Connection, every: float) -> None:
    """A safety net under pub/sub (which may drop messages): look at the outbox now and then,
    and whether the socket's token is still good (a revocation may have missed this process)."""
    while True:
        await asyncio.sleep(every)
        connection.catch_up()
        if not await run_in_threadpool(connection.token_still_valid):
            connection.close_soon(CLOSE_AUTH_FAILED, "signed out", "revoked")
            return
