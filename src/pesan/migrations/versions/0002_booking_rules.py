# ruff: noqa: E501
"""booking rules: answer windows, held time and no overlap, schedules, policy, reschedule

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:42:22.818024

Existing bookings hold exactly their own time (no buffers), pending ones get the default
answer window from when they were made (so requests that have been waiting too long expire at
the first tick), and existing providers get the default schedule. On PostgreSQL the
`btree_gist` extension is created (trusted since PostgreSQL 13: the database owner may) and
the no-overlap exclusion constraint added: this fails if two held bookings of one provider
already overlap; cancel one of them first.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "'accepted', 'arrived', 'on_the_way', 'pending'"
STATUSES = "'pending', 'accepted', 'on_the_way', 'arrived', 'completed', 'declined', 'cancelled', 'expired', 'no_show'"
MESSAGE_TYPES = "'text', 'image', 'file', 'booking', 'system', 'notification', 'reschedule'"
DEFAULT_HOURS = {d: [["09:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def upgrade() -> None:
    op.create_table(
        "reschedule_proposals",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("booking_id", sa.String(length=26), nullable=False),
        sa.Column("proposed_by", sa.String(length=16), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "proposed_by IN ('booker', 'provider')",
            name=op.f("ck_reschedule_proposals_proposed_by"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'withdrawn')",
            name=op.f("ck_reschedule_proposals_status"),
        ),
        sa.CheckConstraint(
            "end_at > start_at", name=op.f("ck_reschedule_proposals_ends_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_reschedule_proposals_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reschedule_proposals")),
    )
    with op.batch_alter_table("reschedule_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reschedule_proposals_booking_id"), ["booking_id"], unique=False
        )
        batch_op.create_index(
            "uq_reschedule_proposals_open",
            ["booking_id"],
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    # -- bookings: new columns, filled, then required ------------------------------------------
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("blocked_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ended_by", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("late_cancellation", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("counts_against", sa.String(length=16), nullable=True))
    _fill_bookings()
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.alter_column("timezone", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column(
            "blocked_from", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column(
            "blocked_until", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.alter_column("late_cancellation", existing_type=sa.Boolean(), server_default=None)
        batch_op.drop_constraint(op.f("ck_bookings_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_bookings_status"), sa.text(f"status IN ({STATUSES})")
        )
        batch_op.create_check_constraint(
            op.f("ck_bookings_ended_by"),
            sa.text("ended_by IN ('provider', 'booker', 'admin', 'system')"),
        )
        batch_op.create_check_constraint(
            op.f("ck_bookings_counts_against"), sa.text("counts_against IN ('booker', 'provider')")
        )
        batch_op.create_check_constraint(
            op.f("ck_bookings_blocks_its_time"),
            sa.text("blocked_from <= start_at AND blocked_until >= end_at"),
        )
        batch_op.create_index(
            "ix_bookings_provider_id_blocked_until", ["provider_id", "blocked_until"], unique=False
        )
        batch_op.create_index(
            "ix_bookings_status_respond_by", ["status", "respond_by"], unique=False
        )
        batch_op.create_index("ix_bookings_status_start_at", ["status", "start_at"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
            "(provider_id WITH =, tstzrange(blocked_from, blocked_until, '[)') WITH &&) "
            f"WHERE (status IN ({ACTIVE}))"
        )

    # -- messages: structured cards, and the reschedule proposal type ---------------------------
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data", sa.JSON(), nullable=True))
        batch_op.drop_constraint(op.f("ck_messages_message_type"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_messages_message_type"), sa.text(f"message_type IN ({MESSAGE_TYPES})")
        )

    # -- provider profiles: the schedule, and the booking that keeps them busy ------------------
    with op.batch_alter_table("provider_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("busy_with_booking", sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column("weekly_hours", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("days_off", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("buffer_before_minutes", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("buffer_after_minutes", sa.Integer(), nullable=False, server_default="15")
        )
        batch_op.add_column(
            sa.Column("min_notice_minutes", sa.Integer(), nullable=False, server_default="60")
        )
        batch_op.add_column(
            sa.Column("horizon_days", sa.Integer(), nullable=False, server_default="30")
        )
        batch_op.add_column(
            sa.Column("slot_step_minutes", sa.Integer(), nullable=False, server_default="15")
        )
    profiles = sa.table(
        "provider_profiles", sa.column("weekly_hours", sa.JSON()), sa.column("days_off", sa.JSON())
    )
    op.execute(profiles.update().values(weekly_hours=DEFAULT_HOURS, days_off=[]))
    with op.batch_alter_table("provider_profiles", schema=None) as batch_op:
        batch_op.alter_column("weekly_hours", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column("days_off", existing_type=sa.JSON(), nullable=False)
        for column in (
            "buffer_before_minutes",
            "buffer_after_minutes",
            "min_notice_minutes",
            "horizon_days",
            "slot_step_minutes",
        ):
            batch_op.alter_column(column, existing_type=sa.Integer(), server_default=None)
        batch_op.create_check_constraint(
            op.f("ck_provider_profiles_buffers"),
            sa.text(
                "buffer_before_minutes BETWEEN 0 AND 240 AND buffer_after_minutes BETWEEN 0 AND 240"
            ),
        )
        batch_op.create_check_constraint(
            op.f("ck_provider_profiles_notice"), sa.text("min_notice_minutes BETWEEN 0 AND 43200")
        )
        batch_op.create_check_constraint(
            op.f("ck_provider_profiles_horizon"), sa.text("horizon_days BETWEEN 1 AND 366")
        )
        batch_op.create_check_constraint(
            op.f("ck_provider_profiles_slot_step"), sa.text("slot_step_minutes BETWEEN 5 AND 240")
        )


def _fill_bookings() -> None:
    """Held time = the booking's own; pending ones answer within the default window."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT b.id, b.status, b.mode, b.start_at, b.created_at, "
            "COALESCE(p.timezone, 'Asia/Makassar') FROM bookings b "
            "LEFT JOIN provider_profiles p ON p.user_id = b.provider_id"
        )
    ).all()
    for booking_id, status, mode, start_at, created_at, zone in rows:
        respond_by = None
        if status == "pending":
            created = _utc(created_at)
            window = timedelta(minutes=5 if mode == "now" else 30)
            respond_by = (
                min(created + window, _utc(start_at)) if mode != "now" else created + window
            )
        bind.execute(
            sa.text(
                "UPDATE bookings SET timezone = :zone, blocked_from = start_at, "
                "blocked_until = end_at, respond_by = :respond_by WHERE id = :id"
            ),
            {"zone": zone, "respond_by": _stored(respond_by, bind), "id": booking_id},
        )


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stored(value: datetime | None, bind: sa.engine.Connection) -> datetime | None:
    if value is None or bind.dialect.name != "sqlite":
        return value
    return value.replace(tzinfo=None)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS ex_bookings_no_overlap")
    with op.batch_alter_table("provider_profiles", schema=None) as batch_op:
        for name in ("buffers", "notice", "horizon", "slot_step"):
            batch_op.drop_constraint(op.f(f"ck_provider_profiles_{name}"), type_="check")
        for column in (
            "slot_step_minutes",
            "horizon_days",
            "min_notice_minutes",
            "buffer_after_minutes",
            "buffer_before_minutes",
            "days_off",
            "weekly_hours",
            "busy_with_booking",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_message_type"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_messages_message_type"),
            sa.text(
                "message_type IN ('text', 'image', 'file', 'booking', 'system', 'notification')"
            ),
        )
        batch_op.drop_column("data")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        for name in ("ended_by", "counts_against", "blocks_its_time"):
            batch_op.drop_constraint(op.f(f"ck_bookings_{name}"), type_="check")
        batch_op.drop_constraint(op.f("ck_bookings_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_bookings_status"),
            sa.text(
                "status IN ('pending', 'accepted', 'on_the_way', 'arrived', 'completed', 'declined', 'cancelled', 'expired')"
            ),
        )
        batch_op.drop_index("ix_bookings_status_start_at")
        batch_op.drop_index("ix_bookings_status_respond_by")
        batch_op.drop_index("ix_bookings_provider_id_blocked_until")
        for column in (
            "counts_against",
            "late_cancellation",
            "ended_by",
            "reminded_at",
            "respond_by",
            "blocked_until",
            "blocked_from",
            "timezone",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("reschedule_proposals", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_reschedule_proposals_open",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index(batch_op.f("ix_reschedule_proposals_booking_id"))
    op.drop_table("reschedule_proposals")
