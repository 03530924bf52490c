"""unread counters: each participant's number of unread messages, kept on send and read

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:50:00

Counting a conversation's unread messages on every send and every conversation list grew
with the number of unread messages; the count is now kept on the participant's row. Existing
rows are filled in by counting once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "conversation_participants",
        sa.Column("unread_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE conversation_participants SET unread_count = ("
        " SELECT count(*) FROM messages m"
        " WHERE m.conversation_id = conversation_participants.conversation_id"
        " AND m.recipient_id = conversation_participants.user_id AND NOT m.read)"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversation_participants") as batch:
        batch.drop_column("unread_count")
