"""What time it is, as a collaborator: use cases take `now`; the app asks its clock once per
request or tick, so tests (and the ticker) can run the rules at any time they choose."""

from datetime import datetime
from typing import Protocol

from pesan.timeutil import utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()
