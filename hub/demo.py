"""The starting catalogue every hub gets, and the demo data `lektiecafe demo` adds on top."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.models import Organisation, Role, Site, User
from hub.accounts.service import hash_password
from hub.catalog.models import Language, Subject
from hub.config import HubConfig

DEMO_PASSWORD = "demo-password"

SUBJECTS = [
    ("math", "Matematik", "Mathematics"),
    ("danish", "Dansk", "Danish"),
    ("english", "Engelsk", "English"),
    ("german", "Tysk", "German"),
    ("physics_chemistry", "Fysik/kemi", "Physics and chemistry"),
    ("biology", "Biologi", "Biology"),
    ("geography", "Geografi", "Geography"),
    ("history", "Historie", "History"),
    ("social_studies", "Samfundsfag", "Social studies"),
]

LANGUAGES = [
    ("da", "Dansk", "Danish"),
    ("en", "Engelsk", "English"),
    ("ar", "Arabisk", "Arabic"),
    ("so", "Somali", "Somali"),
    ("tr", "Tyrkisk", "Turkish"),
    ("ur", "Urdu", "Urdu"),
    ("fa", "Persisk", "Persian"),
    ("ps", "Pashto", "Pashto"),
    ("ku", "Kurdisk", "Kurdish"),
    ("ti", "Tigrinya", "Tigrinya"),
    ("uk", "Ukrainsk", "Ukrainian"),
    ("pl", "Polsk", "Polish"),
]

DEMO_SITES = [
    ("Demo-skole Nord", "school", "NORD-2026"),
    ("Demo-skole Syd", "school", "SYD-2026"),
    ("Demo-bibliotek", "library", "BIBLIOTEK-2026"),
    ("Demo-ungdomsklub", "youth_club", "KLUB-2026"),
]


def seed_catalog(s: Session) -> None:
    """Subjects and languages, added once to an empty database."""
    if s.scalar(select(Subject.id).limit(1)) is not None:
        return
    s.add_all(Subject(key=k, name_da=da, name_en=en) for k, da, en in SUBJECTS)
    s.add_all(Language(code=c, name_da=da, name_en=en) for c, da, en in LANGUAGES)
    s.flush()


@dataclass(frozen=True)
class DemoLogins:
    usernames: list[tuple[str, str]]  # (role, username)
    sites: list[tuple[str, str]]  # (name, invite code)


def seed_demo(s: Session, *, students: int, helpers: int, now: datetime) -> DemoLogins:
    seed_catalog(s)
    sites = [
        Site(name=n, kind=k, invite_code=c, contact="kontakt@example.org") for n, k, c in DEMO_SITES
    ]
    org = Organisation(
        name="Demo-frivillige",
        contact="frivillig@example.org",
        offers="Lektiehjælp i alle fag, klasse 8-10",
        approved=True,
    )
    s.add_all([*sites, org])
    s.flush()
    subjects = list(s.scalars(select(Subject)))
    languages = list(s.scalars(select(Language).where(Language.code.in_(["da", "en", "ar"]))))
    password_hash = hash_password(DEMO_PASSWORD)  # one hash: every demo login shares the password

    def user(username: str, role: Role, name: str, **extra: object) -> User:
        u = User(
            username=username,
            password_hash=password_hash,
            role=role.value,
            display_name=name,
            created_at=now,
            **extra,
        )
        s.add(u)
        return u

    logins = [("admin", "admin"), ("coordinator", "coordinator1"), ("site_staff", "staff1")]
    user("admin", Role.ADMIN, "Admin")
    user("coordinator1", Role.COORDINATOR, "Koordinator 1", organisation_id=org.id)
    user("staff1", Role.SITE_STAFF, "Personale 1", site_id=sites[0].id)
    for i in range(1, helpers + 1):
        h = user(
            f"helper{i}",
            Role.HELPER,
            f"Hjælper {i}",
            organisation_id=org.id,
            **_vetted(now, expiring_soon=i == helpers > 1),
        )
        h.subjects = subjects
        h.languages = languages
        logins.append(("helper", f"helper{i}"))
    for i in range(1, students + 1):
        user(
            f"student{i}",
            Role.STUDENT,
            f"Elev {i}",
            grade=8 + (i - 1) % 3,
            site_id=sites[(i - 1) % len(sites)].id,
        )
        logins.append(("student", f"student{i}"))
    s.flush()
    return DemoLogins(logins, [(site.name, site.invite_code) for site in sites])


def _vetted(now: datetime, expiring_soon: bool) -> dict[str, object]:
    """An approved helper's vetting: checked 100 days ago, or (to show the warning) so long ago
    that the check runs out in 29 days, inside the 30 days of warning."""
    valid = timedelta(days=HubConfig.certificate_valid_days)
    expires_on = (
        (now + timedelta(days=29)).date()
        if expiring_soon
        else (now - timedelta(days=100) + valid).date()
    )
    return {
        "approved": True,
        "introduction_done": True,
        "welcome_seen": True,
        "certificate_checked_on": expires_on - valid,
        "certificate_expires_on": expires_on,
    }
