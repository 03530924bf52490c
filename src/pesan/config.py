"""All configuration, read once from PESAN_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from pesan.db import Timeouts


def _rate_limit(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a limit such as 20/minute") from None
    return value


RateLimit = Annotated[str, AfterValidator(_rate_limit)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PESAN_", extra="ignore")

    data_dir: Path = Field(Path("pesan-data"), description="Where the embedded SQLite file lives.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in data_dir."
    )
    redis_url: str | None = Field(None, description="Redis for live events across processes.")
    host: str = "127.0.0.1"
    port: int = 8000
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies whose X-Forwarded-For is trusted for the client's address.",
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    token_ttl_days: int = Field(30, ge=1)
    token_cache_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a successful token lookup is reused; a token revoked through "
        "another process is still accepted here for at most this long (0: no cache).",
    )
    metrics_token: str | None = Field(None, description="If set, /metrics needs this bearer.")
    worker_threads: int = Field(
        32, ge=4, description="Threads for blocking work; the database pool is sized to them."
    )
    password_hash_threads: int = Field(
        2, ge=1, description="Threads that hash passwords (at low CPU priority)."
    )
    # Argon2 cost; lowered only by the test suite.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=64)
    # Live events
    event_retention_days: int = Field(14, ge=1)
    ws_auth_timeout_seconds: float = Field(10.0, gt=0)
    ws_ping_interval_seconds: float = Field(20.0, gt=0)
    ws_send_queue_max: int = Field(1000, ge=1)
    ws_poll_seconds: float = Field(15.0, gt=0)
    min_free_disk_mb: int = Field(200, ge=0)
    # Booking rules (docs/bookings.md)
    answer_now_seconds: int = Field(300, ge=1, description="A provider answers a `now` request.")
    answer_scheduled_seconds: int = Field(
        1800, ge=1, description="A provider answers a `scheduled` request (never after its start)."
    )
    tick_seconds: float = Field(1.0, gt=0, le=60, description="How often due work is looked for.")
    run_jobs: bool = Field(True, description="Run the periodic work in this server process.")
    reminder_lead_minutes: int = Field(120, ge=1, le=10080)
    late_cancel_window_minutes: int = Field(120, ge=0, le=10080)
    no_show_grace_minutes: int = Field(30, ge=0, le=1440)
    provider_late_minutes: int = Field(30, ge=0, le=1440)
    admin_password: str | None = Field(None, description="For `pesan admin create`.")
    # Web app
    secret_key: str | None = Field(
        None,
        min_length=16,
        description="Signs the web app's CSRF cookie; set it when several processes serve. "
        "Default: made once and kept in data_dir (embedded) or made per process.",
    )
    # Time limits on the database, so no request waits more than a few seconds.
    db_statement_timeout_seconds: float = Field(5.0, gt=0)
    db_lock_timeout_seconds: float = Field(3.0, gt=0)  # SQLite: its busy timeout
    db_connect_timeout_seconds: float = Field(3.0, gt=0)
    db_pool_timeout_seconds: float = Field(5.0, gt=0)
    # Request size: a JSON body over this answers 413; a WebSocket frame over the other closes it.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    ws_max_frame_bytes: int = Field(64 * 1024, ge=1024)
    # Throttling, in the `limits` library's notation ("20/minute", "5 per 10 seconds").
    limits_enabled: bool = True
    limit_login_account: RateLimit = "10/minute"
    limit_login_address: RateLimit = "60/minute"
    limit_register: RateLimit = "20/hour"
    limit_send: RateLimit = "60/minute"
    limit_book: RateLimit = "10/minute"
    limit_typing: RateLimit = "60/minute"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'pesan.sqlite3').resolve()}"

    @property
    def db_timeouts(self) -> "Timeouts":
        from pesan.db import Timeouts

        return Timeouts(
            statement=self.db_statement_timeout_seconds,
            lock=self.db_lock_timeout_seconds,
            connect=self.db_connect_timeout_seconds,
            pool=self.db_pool_timeout_seconds,
        )

    @property
    def is_embedded(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def normalise_database_url(url: str) -> str:
    """`postgresql://` means psycopg 3; everything else is passed as SQLAlchemy takes it."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
