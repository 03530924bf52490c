from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pesan.db import Base, UTCDateTime
from pesan.timeutil import utcnow


class WriteProbe(Base):
    """Written and rolled back by /readyz to prove the database takes writes."""

    __tablename__ = "write_probes"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
