"""Operations: /healthz, /readyz, /metrics, and the checks `pesan doctor` prints.

One list of checks serves both /readyz and `pesan doctor`, so they never disagree.
"""

import hmac
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import delete, insert, inspect, select, text

from pesan import migrate
from pesan.config import Settings
from pesan.db import Database, in_memory
from pesan.errors import Unauthorized
from pesan.ids import new_id
from pesan.probes import WriteProbe


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok, but an operator should act (doctor prints WARN)


@dataclass
class Context:
    settings: Settings
    db: Database
    broker: Any = None  # pesan.live.broker.Broker, when the app runs one


def check_config(ctx: Context) -> CheckResult:
    url = ctx.settings.resolved_database_url
    kind = "embedded SQLite" if ctx.settings.is_embedded else url.split(":", 1)[0]
    broker = "Redis" if ctx.settings.redis_url else "in-process"
    return CheckResult("config", True, f"database: {kind}; live events: {broker} broker")


def check_database(ctx: Context) -> CheckResult:
    try:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return CheckResult(
            "database", False, _short(exc), "check PESAN_DATABASE_URL and that the server is up"
        )
    return CheckResult("database", True, "reachable")


def check_schema_quick(ctx: Context) -> CheckResult:
    """Revision at head and every table present: cheap enough for every /readyz."""
    try:
        with ctx.db.engine.connect() as conn:
            current = migrate.current_revision(conn)
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:
        return CheckResult("schema", False, _short(exc), f"run `{migrate.FIX_COMMAND}`")
    head = migrate.head_revision()
    missing = [t for t in migrate.metadata.tables if t not in tables]
    if current != head or missing:
        state = migrate.SchemaState(current, head, [f"table '{t}' is missing" for t in missing])
        return CheckResult("schema", False, state.explain(), f"run `{migrate.FIX_COMMAND}`")
    return CheckResult("schema", True, f"at revision {head}")


def check_schema_full(ctx: Context) -> CheckResult:
    try:
        state = migrate.inspect_schema(ctx.db.engine)
    except Exception as exc:
        return CheckResult("schema", False, _short(exc), f"run `{migrate.FIX_COMMAND}`")
    if not state.ok:
        return CheckResult("schema", False, state.explain(), f"run `{migrate.FIX_COMMAND}`")
    return CheckResult("schema", True, f"at revision {state.head}, matches the models")


def check_write(ctx: Context) -> CheckResult:
    """A real write, committed and then removed: a database that cannot commit (disk full,
    files read-only) is not ready, even if it still answers reads and takes an insert."""
    probe = new_id()
    try:
        with ctx.db.engine.execution_options(pesan_write=True).connect() as conn:
            with conn.begin():
                conn.execute(insert(WriteProbe).values(id=probe))
            with conn.begin():
                conn.execute(delete(WriteProbe).where(WriteProbe.id == probe))
    except Exception as exc:
        return CheckResult("write", False, _short(exc), _write_fix(ctx, exc))
    room = _sqlite_room(ctx.db)
    if room is not None and room < SQLITE_MIN_ROOM:
        # The probe fitted in pages SQLite reuses (its WAL, once checkpointed); a message
        # that needs a page more would not.
        return CheckResult(
            "write",
            False,
            f"{room} bytes free beside the database file",
            _write_fix(ctx, OSError("disk full")),
        )
    return CheckResult("write", True, "a write was committed (and removed)")


# Below this much free space beside the SQLite file, the write path is not ready.
SQLITE_MIN_ROOM = 1 << 20


def _sqlite_room(db: Database) -> int | None:
    """Free bytes on the SQLite file's disk (None: not a SQLite file)."""
    database = db.engine.url.database
    if db.dialect != "sqlite" or not database or in_memory(db.url):
        return None
    return shutil.disk_usage(Path(database).parent).free


def _write_fix(ctx: Context, exc: Exception) -> str:
    text_ = str(exc).lower()
    where = ctx.settings.data_dir if ctx.settings.is_embedded else "the database server"
    if "full" in text_ or "no space" in text_:
        return f"free disk space at {where}"
    if "readonly" in text_ or "read-only" in text_ or "permission" in text_:
        return f"make {where} writable by the server (files, directory and mount)"
    if "locked" in text_ or "timeout" in text_ or "lock" in text_:
        return "find what holds the database lock (a long transaction or another process)"
    return "check database permissions and disk"


def check_demo(ctx: Context) -> CheckResult:
    """A warning while the demo's accounts (with their published password) exist."""
    from pesan.accounts.models import User
    from pesan.demo import account_emails

    try:
        with ctx.db.reader() as session:
            emails = account_emails()
            found = list(session.scalars(select(User.email).where(User.email.in_(emails))))
    except Exception as exc:
        return CheckResult("demo", True, f"not checked: {_short(exc)}")
    if found:
        return CheckResult(
            "demo",
            True,
            f"demo accounts exist ({', '.join(sorted(found))}); their password is public",
            "delete the demo accounts, or use a fresh database, before real users come",
            warning=True,
        )
    return CheckResult("demo", True, "no demo accounts")


def check_disk(ctx: Context) -> CheckResult:
    path = ctx.settings.data_dir if ctx.settings.is_embedded else Path.cwd()
    probe = path if path.exists() else Path.cwd()
    free_mb = shutil.disk_usage(probe).free // (1024 * 1024)
    need = ctx.settings.min_free_disk_mb
    if free_mb < need:
        return CheckResult(
            "disk", False, f"{free_mb} MiB free at {probe}, below {need} MiB", "free disk space"
        )
    return CheckResult("disk", True, f"{free_mb} MiB free at {probe}")


def check_broker(ctx: Context) -> CheckResult:
    if ctx.broker is None:
        return CheckResult("broker", True, "in-process (single server process)")
    ok, detail = ctx.broker.check()
    fix = "check PESAN_REDIS_URL and that Redis is up" if not ok else ""
    return CheckResult("broker", ok, detail, fix)


Check = Callable[[Context], CheckResult]
READY_CHECKS: list[Check] = [check_database, check_schema_quick, check_write, check_broker]
DOCTOR_CHECKS: list[Check] = [
    check_config,
    check_database,
    check_schema_full,
    check_write,
    check_disk,
    check_broker,
    check_demo,
]


def run_checks(ctx: Context, checks: list[Check]) -> list[CheckResult]:
    results = []
    for check in checks:
        result = check(ctx)
        results.append(result)
        if result.name == "database" and not result.ok:
            break  # everything after needs the database
    return results


def _short(exc: Exception) -> str:
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text_[:300]


class CheckOut(BaseModel):
    ok: bool
    detail: str
    fix: str | None = None


class ReadyOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckOut] | None = Field(
        None, description="Each check's detail: only with the metrics token as bearer."
    )


router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive. On the event loop and touching nothing, so it answers at once
    even while every worker thread waits for the database."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "A dependency is down: see `checks`."}},
)
def readyz(
    request: Request, authorization: str | None = Header(None, include_in_schema=False)
) -> JSONResponse:
    """Every dependency checked: database, schema revision, a committed write, the broker.
    Everyone gets the status; operators (PESAN_METRICS_TOKEN as bearer) each check's detail."""
    settings: Settings = request.app.state.settings
    ctx = Context(settings, request.app.state.db, request.app.state.broker)
    results = run_checks(ctx, READY_CHECKS)
    ok = all(r.ok for r in results)
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
    if is_operator(settings, authorization):
        body["checks"] = {
            r.name: {"ok": r.ok, "detail": r.detail, "fix": r.fix or None} for r in results
        }
    return JSONResponse(body, status_code=200 if ok else 503)


def is_operator(settings: Settings, authorization: str | None) -> bool:
    """The bearer is the metrics token (there is no operator over HTTP without one)."""
    token = settings.metrics_token
    if not token or not authorization:
        return False
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics_endpoint(
    request: Request, authorization: str | None = Header(None, include_in_schema=False)
) -> Response:
    """Prometheus text format. If PESAN_METRICS_TOKEN is set, send it as a bearer token."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token and not is_operator(settings, authorization):
        raise Unauthorized("This endpoint needs the metrics token.")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
