"""People and the places they belong to: sites, partner organisations, users and their roles."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.catalog.models import Language, Subject
from hub.db import Base


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    SITE_STAFF = "site_staff"
    HELPER = "helper"
    STUDENT = "student"
    # A paired kiosk's own connection (see hub.devices); never admitted to pages for people.
    KIOSK = "kiosk"


class Site(Base):
    """A school, library or youth club where students come from; students join with its code."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))  # school | library | youth_club
    invite_code: Mapped[str] = mapped_column(String(32), unique=True)
    contact: Mapped[str] = mapped_column(String(200), default="")


class Organisation(Base):
    """A partner organisation that recruits helpers (e.g. Red Cross Youth). Its profile (what it
    offers, its one named contact person) is visible to new helpers only once an admin has
    approved it (screening)."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    contact: Mapped[str] = mapped_column(String(200), default="")  # the named contact person
    offers: Mapped[str] = mapped_column(Text, default="")
    approved: Mapped[bool] = mapped_column(default=False)


helper_subjects = Table(
    "helper_subjects",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("subject_id", ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True),
)

helper_languages = Table(
    "helper_languages",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("language_code", ForeignKey("languages.code", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """Anyone who logs in. Students give only a nickname and grade; no name, no e-mail."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), index=True)
    display_name: Mapped[str] = mapped_column(String(60))
    grade: Mapped[int | None] = mapped_column(default=None)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), default=None)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id"), default=None
    )
    # Helpers: a coordinator has checked the child-protection certificate and the introduction
    # is done (hub.accounts.service.may_help adds that the certificate has not expired).
    approved: Mapped[bool] = mapped_column(default=False)
    certificate_checked_on: Mapped[date | None] = mapped_column(default=None)
    # The check's date plus the validity period in force when it was checked.
    certificate_expires_on: Mapped[date | None] = mapped_column(default=None)
    introduction_done: Mapped[bool] = mapped_column(default=False)
    # Has read the welcome page since being approved (until then login leads there).
    welcome_seen: Mapped[bool] = mapped_column(default=False)
    # Helpers may give an e-mail address, used only for shift reminders (docs/privacy.md), and
    # the language those e-mails are written in (None: Danish).
    reminder_email: Mapped[str | None] = mapped_column(String(254), default=None)
    reminder_language: Mapped[str | None] = mapped_column(String(5), default=None)
    grade_min: Mapped[int] = mapped_column(default=8)
    grade_max: Mapped[int] = mapped_column(default=10)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    site: Mapped[Site | None] = relationship(lazy="joined")
    organisation: Mapped[Organisation | None] = relationship(lazy="joined")
    subjects: Mapped[list[Subject]] = relationship(secondary=helper_subjects, lazy="selectin")
    languages: Mapped[list[Language]] = relationship(secondary=helper_languages, lazy="selectin")


class LoginThrottle(Base):
    """Recent wrong passwords (hub.accounts.throttle): per address and account, per address, per
    account. Keys are keyed hashes, so the table holds neither usernames nor addresses."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # pair | address | account
    # The account's key (pair and account rows), so an unlock finds every row of the account.
    account: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    failures: Mapped[int] = mapped_column(default=0)
    since: Mapped[datetime]  # the first failure of the hour (address and account rows)
    last_at: Mapped[datetime] = mapped_column(index=True)


class Credential(Base):
    """A secret that stands for a user: a browser's login (kind `session`, its key in the signed
    session cookie), an API token (`api`, from `POST /api/auth/token`) or a kiosk visit's token
    (`visit`, for the visit's uploads only). Only a SHA-256 of the secret is kept, so the table
    cannot be used to log in; deleting the row revokes it at once (hub.accounts.access)."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # session | api | visit
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
