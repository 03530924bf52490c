"""The `pesan` command: serve, db, doctor, demo, admin. Configuration comes from PESAN_*."""

import ipaddress
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from pesan import __version__, migrate, ops
from pesan.config import get_settings
from pesan.db import Database
from pesan.logs import configure as configure_logging

app = typer.Typer(
    help="pesan: chat booking for wellness marketplaces.\n\n"
    "Configuration (environment): PESAN_DATABASE_URL (default: SQLite in ./pesan-data/), "
    "PESAN_REDIS_URL (optional), PESAN_HOST, PESAN_PORT, PESAN_LOG_LEVEL, PESAN_LOG_FORMAT, "
    "PESAN_METRICS_TOKEN, PESAN_TOKEN_TTL_DAYS. See the README for all of them.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(
    help="The database: upgrade, check, current, backup, restore.", no_args_is_help=True
)
admin_app = typer.Typer(help="Admin accounts.", no_args_is_help=True)
bookings_app = typer.Typer(
    help="Run the bookings' periodic work once (the server runs it every second itself).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(bookings_app, name="bookings")


def _database() -> Database:
    return Database(get_settings().resolved_database_url)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _ready_database(action: str) -> Database:
    """The database, upgraded first if embedded; a schema that is not right stops `action`."""
    db = _database()
    try:
        if get_settings().is_embedded:
            migrate.upgrade(db.engine)
        state = migrate.inspect_schema(db.engine)
    except BaseException:
        db.dispose()
        raise
    if not state.ok:
        db.dispose()
        _fail(f"cannot {action}: {state.explain()}", code=2)
    return db


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: PESAN_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: PESAN_PORT or 8000.")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (PostgreSQL + Redis).")] = 1,
) -> None:
    """Run the HTTP server. On the embedded SQLite database the schema is upgraded first;
    on any other database a schema that is behind or differs stops the start."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    if workers > 1 and not settings.redis_url:
        _fail("--workers above 1 needs PESAN_REDIS_URL, so that live events reach every process")
    db = _database()
    try:
        migrate.ensure_ready(db.engine, embedded=settings.is_embedded)
    except migrate.SchemaNotReady as exc:
        _fail(str(exc), code=2)
    except Exception as exc:
        _fail(f"pesan cannot start: the database is not reachable: {exc}", code=2)
    finally:
        db.dispose()
    uvicorn.run(
        "pesan.app:create_served_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        ws_ping_interval=settings.ws_ping_interval_seconds,
        ws_ping_timeout=settings.ws_ping_interval_seconds,
        ws_max_size=settings.ws_max_frame_bytes,
        server_header=False,  # no "Server: uvicorn": nothing to tell an attacker
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (safe to run from several processes at once), and
    recreate any table the schema defines that was dropped."""
    db = _database()
    try:
        repaired = migrate.upgrade(db.engine)
        state = migrate.inspect_schema(db.engine)
    finally:
        db.dispose()
    for repair in repaired:
        typer.echo(repair)
    if not state.ok:
        _fail("schema still differs from the models: " + "; ".join(state.differences))
    typer.echo(f"schema at revision {state.head}")


@db_app.command("check")
def db_check() -> None:
    """List every difference between the live schema and the models; exit 1 if any."""
    db = _database()
    try:
        state = migrate.inspect_schema(db.engine)
    except Exception as exc:
        _fail(f"cannot read the schema: {exc}", code=2)
        return
    finally:
        db.dispose()
    if state.ok:
        typer.echo(f"OK: schema at revision {state.head} matches the models")
        return
    if not state.at_head:
        typer.echo(f"revision: {state.current or 'none'} (needs {state.head})")
    for difference in state.differences:
        typer.echo(f"- {difference}")
    _fail(f"FAIL: run `{migrate.FIX_COMMAND}`")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the code's."""
    db = _database()
    try:
        with db.engine.connect() as conn:
            current = migrate.current_revision(conn)
    finally:
        db.dispose()
    typer.echo(f"database: {current or 'none'}; code: {migrate.head_revision()}")


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="A new file to write the backup to.")],
) -> None:
    """A consistent copy of the database while the server runs (SQLite online backup;
    PostgreSQL pg_dump, or the command to run where it is not installed)."""
    from pesan import backup

    try:
        outcome = backup.backup(get_settings().resolved_database_url, path)
    except backup.BackupError as exc:
        _fail(f"backup failed: {exc}")
        return
    typer.echo(outcome.message)
    if not outcome.done:
        raise typer.Exit(1)


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A backup made by `pesan db backup`.")],
) -> None:
    """Restore a backup into an empty database (PESAN_DATABASE_URL), then check its schema."""
    from pesan import backup

    db = _database()
    try:
        outcome = backup.restore(db, path)
        if outcome.done:
            state = migrate.inspect_schema(db.engine)
            outcome.message += f"; schema at revision {state.current}"
            if not state.at_head:
                outcome.message += f" (run `{migrate.FIX_COMMAND}` to reach {state.head})"
    except backup.BackupError as exc:
        _fail(f"restore failed: {exc}")
        return
    finally:
        db.dispose()
    typer.echo(outcome.message)
    if not outcome.done:
        raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Check config, database, schema, disk space and broker: one line each, with the fix."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        typer.echo(f"FAIL config   {_config_problem(exc)}  -> fix: correct the PESAN_* variable")
        raise typer.Exit(1) from None
    db = _database()
    broker = None
    if settings.redis_url:
        from pesan.live.broker import RedisBroker

        broker = RedisBroker(settings.redis_url)
    try:
        results = ops.run_checks(ops.Context(settings, db, broker), ops.DOCTOR_CHECKS)
    finally:
        db.dispose()
        if broker is not None:
            broker.close_sync()
    for r in results:
        level = "FAIL" if not r.ok else "WARN" if r.warning else "OK  "
        line = f"{level} {r.name:<8} {r.detail}"
        if (not r.ok or r.warning) and r.fix:
            line += f"  -> fix: {r.fix}"
        typer.echo(line)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def demo(
    force: Annotated[
        bool, typer.Option("--force", help="Load it even if the server listens beyond loopback.")
    ] = False,
) -> None:
    """Load a small Bali marketplace to click through (running it again changes nothing).
    Its accounts share a published password, so it refuses a server reachable from outside."""
    from pesan import demo as demo_data

    host = get_settings().host
    if not force and not is_loopback(host):
        _fail(
            f"refusing to load the demo: PESAN_HOST={host} listens beyond this machine and every "
            "demo account's password is public. Use PESAN_HOST=127.0.0.1, or --force on a "
            "server nobody else can reach.",
            code=2,
        )
    db = _ready_database("load the demo")
    try:
        created = demo_data.load(db)
    finally:
        db.dispose()
    settings = get_settings()
    typer.echo(demo_data.sign_in_text(created, f"http://{settings.host}:{settings.port}"))


def _run_job(name: str) -> None:
    from pesan import scheduled
    from pesan.timeutil import utcnow

    job = next(j for j in scheduled.JOBS if j.name == name)
    db = _ready_database(f"run {name}")
    try:
        done = job.run(db, utcnow(), get_settings())
    finally:
        db.dispose()
    typer.echo(f"{name}: {done}")


@bookings_app.command("expire")
def bookings_expire() -> None:
    """Expire every pending request whose answer window has closed (safe beside running
    servers: each request expires once)."""
    _run_job("expire-requests")


@bookings_app.command("remind")
def bookings_remind() -> None:
    """Post the reminders now due before accepted bookings (each one once)."""
    _run_job("send-reminders")


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option(help="The admin's email.")],
    name: Annotated[str, typer.Option(help="The admin's name.")] = "Admin",
    password: Annotated[
        str | None,
        typer.Option(help="Default: read from PESAN_ADMIN_PASSWORD or asked for."),
    ] = None,
) -> None:
    """Make an admin account (admins are made only here)."""
    from pydantic import EmailStr, TypeAdapter, ValidationError

    from pesan.accounts.service import create_user
    from pesan.errors import Problem
    from pesan.roles import Role

    try:
        TypeAdapter(EmailStr).validate_python(email)
    except ValidationError:
        _fail(f"not an email address: {email}")
    password = password or get_settings().admin_password
    if not password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    # The bounds sign-in accepts (accounts.schemas), so the admin made here can always sign in.
    if not 8 <= len(password) <= 200:
        _fail("the password needs 8 to 200 characters")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        _fail("the name needs 1 to 100 characters")
    db = _ready_database("create the admin")
    try:
        with db.transaction() as session:
            user = create_user(session, email=email, password=password, name=name, role=Role.admin)
            user_id = user.id
    except Problem as problem:
        _fail(problem.detail)
        return
    finally:
        db.dispose()
    typer.echo(f"admin {email} created (id {user_id})")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def _config_problem(exc: ValidationError) -> str:
    return "; ".join(
        f"PESAN_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ValidationError as exc:  # settings read from the environment
        typer.echo(f"configuration error: {_config_problem(exc)}", err=True)
        sys.exit(2)
