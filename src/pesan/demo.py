"""A small, believable Bali marketplace for newcomers to click through.

Loading it twice changes nothing: every account is looked up by email first.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pesan.accounts.models import User
from pesan.accounts.service import create_user
from pesan.auth import Caller
from pesan.db import Database
from pesan.providers import service as providers
from pesan.providers.schemas import PresenceIn, ProfileIn, ScheduleIn, ServiceIn
from pesan.roles import Role
from pesan.timeutil import utcnow

DEMO_PASSWORD = "pesan-demo"


@dataclass(frozen=True)
class DemoProvider:
    email: str
    name: str
    role: Role
    area: str
    bio: str
    languages: tuple[str, ...]
    presence: str
    services: tuple[tuple[str, int, int], ...]  # name, minutes, price in IDR
    hours: dict[str, list[tuple[str, str]]] | None = None  # None: the default 09:00-21:00


WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

PROVIDERS = (
    DemoProvider(
        "made@example.com",
        "Made Wirawan",
        Role.therapist,
        "Ubud",
        "Traditional Balinese massage, 12 years. I come to your villa or hotel by scooter.",
        ("id", "en"),
        "available",
        (
            ("Balinese massage", 60, 150_000),
            ("Balinese massage", 90, 200_000),
            ("Balinese massage", 120, 260_000),
        ),
        {day: [("08:00", "20:00")] for day in WEEK},
    ),
    DemoProvider(
        "ketut@example.com",
        "Ketut Sari",
        Role.therapist,
        "Seminyak",
        "Deep tissue and reflexology. Certified, speaks Indonesian, English and some Japanese.",
        ("id", "en", "ja"),
        "available",
        (
            ("Deep tissue massage", 60, 180_000),
            ("Reflexology", 60, 140_000),
            ("Deep tissue massage", 90, 240_000),
        ),
        # a lunch break, and Sundays off
        {day: [("10:00", "13:00"), ("14:00", "21:00")] for day in WEEK if day != "sun"},
    ),
    DemoProvider(
        "nyoman@example.com",
        "Nyoman Ayu",
        Role.therapist,
        "Canggu",
        "Hot stone and aromatherapy for surfers' tired shoulders.",
        ("id", "en"),
        "offline",
        (("Hot stone massage", 90, 250_000), ("Aromatherapy massage", 60, 170_000)),
    ),
    DemoProvider(
        "spa@example.com",
        "Ubud Harmony Spa",
        Role.place,
        "Ubud",
        "A quiet garden spa by the rice fields. Open daily 09:00 to 21:00.",
        ("id", "en"),
        "available",
        (
            ("Balinese massage", 60, 200_000),
            ("Flower bath and scrub", 90, 350_000),
            ("Facial", 60, 275_000),
        ),
    ),
    DemoProvider(
        "salon@example.com",
        "Seminyak Glow Salon",
        Role.place,
        "Seminyak",
        "Hair, nails and facials on Jalan Kayu Aya.",
        ("id", "en"),
        "busy",
        (("Manicure and pedicure", 60, 180_000), ("Hair cream bath", 60, 150_000)),
        {day: [("10:00", "20:00")] for day in WEEK if day != "mon"},  # closed on Mondays
    ),
)

BOOKERS = (
    ("emma@example.com", "Emma Clarke", Role.customer),
    ("frontdesk@example.com", "Sunset Bay Hotel", Role.hotel),
    ("villa@example.com", "Villa Kembang", Role.villa),
)
ADMIN = ("admin@example.com", "pesan admin", Role.admin)


def account_emails() -> list[str]:
    return [email for email, _, _ in (*BOOKERS, ADMIN)] + [p.email for p in PROVIDERS]


def _user(session: Session, email: str, name: str, role: Role) -> tuple[Caller, bool]:
    user = session.scalar(select(User).where(User.email == email))
    created = user is None
    if user is None:
        user = create_user(session, email=email, password=DEMO_PASSWORD, name=name, role=role)
    return Caller(id=user.id, name=user.name, role=Role(user.role), email=user.email), created


def load(db: Database) -> bool:
    """Load the demo; True if anything was created."""
    created_any = False
    for email, name, role in (*BOOKERS, ADMIN):
        with db.transaction() as session:
            _, created = _user(session, email, name, role)
        created_any |= created
    for p in PROVIDERS:
        # The account and its profile in one transaction: never an account without its services.
        with db.transaction() as session:
            caller, created = _user(session, p.email, p.name, p.role)
            if not created:
                continue
            created_any = True
            providers.upsert_profile(
                session,
                caller,
                ProfileIn(name=p.name, bio=p.bio, languages=list(p.languages), area=p.area),
            )
            providers.set_presence(session, caller, PresenceIn(presence=p.presence))
            if p.hours is not None:
                providers.put_schedule(session, caller, _schedule(p.hours), utcnow())
            for service_name, minutes, price in p.services:
                providers.add_service(
                    session,
                    caller,
                    ServiceIn.model_validate(
                        {
                            "name": service_name,
                            "durationMinutes": minutes,
                            "price": {"amount": price, "currency": "IDR"},
                        }
                    ),
                )
    return created_any


def _schedule(hours: dict[str, list[tuple[str, str]]]) -> ScheduleIn:
    weekly = {day: [{"opens": o, "closes": c} for o, c in hours.get(day, [])] for day in WEEK}
    return ScheduleIn.model_validate({"weeklyHours": weekly})


def sign_in_text(created: bool, base_url: str = "http://127.0.0.1:8000") -> str:
    state = "Demo data loaded." if created else "Demo data was already there; nothing changed."
    people = "\n".join(
        f"  {role.value:<9} {email:<24} {name}"
        for email, name, role in (
            *BOOKERS,
            *((p.email, p.name, p.role) for p in PROVIDERS),
            ADMIN,
        )
    )
    return (
        f"{state}\nEvery demo account's password is '{DEMO_PASSWORD}':\n{people}\n"
        f"Sign in: curl -s -X POST {base_url}/api/v1/auth/login "
        "-H 'Content-Type: application/json' "
        f'-d \'{{"email": "emma@example.com", "password": "{DEMO_PASSWORD}"}}\''
    )
