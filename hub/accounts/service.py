"""Accounts: passwords, login with slowed-down guessing, student self-registration."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.models import LoginFailure, Role, Site, User
from hub.catalog.models import GRADES
from hub.config import HubConfig
from hub.errors import Conflict, Invalid, RateLimited

_hasher = PasswordHasher()
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
MIN_PASSWORD = 8
# Checked against so that an unknown username costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def normalise_username(username: str) -> str:
    return username.strip().lower()


def authenticate(
    s: Session, username: str, password: str, now: datetime, config: HubConfig
) -> User | None:
    """The user with these credentials, or None after recording the failure (so the caller must
    let the transaction commit). After `login_free_failures` wrong tries for a username, each
    further try must wait `login_wait_s` after the last failure."""
    username = normalise_username(username)
    failure = s.get(LoginFailure, username)
    if failure is not None and failure.count >= config.login_free_failures:
        wait = failure.last_at + timedelta(seconds=config.login_wait_s) - now
        if wait.total_seconds() > 0:
            raise RateLimited(
                _(
                    "Too many wrong passwords. Try again in %(seconds)d seconds.",
                    seconds=int(wait.total_seconds()) + 1,
                ),
                retry_after_s=int(wait.total_seconds()) + 1,
            )
    user = s.scalar(select(User).where(User.username == username))
    if (
        not _password_matches(user.password_hash if user else _DUMMY_HASH, password)
        or user is None
        or not user.active
    ):
        if failure is None:
            failure = LoginFailure(username=username, count=0, last_at=now)
            s.add(failure)
        failure.count += 1
        failure.last_at = now
        return None
    if failure is not None:
        s.delete(failure)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def check_new_credentials(s: Session, username: str, password: str) -> str:
    username = normalise_username(username)
    if not USERNAME.match(username):
        raise Invalid(
            _("Usernames are 3-40 characters: letters a-z, digits, dot, dash or underscore."),
            fields={"username": "format"},
        )
    if len(password) < MIN_PASSWORD:
        raise Invalid(
            _("The password must be at least 8 characters."), fields={"password": "too_short"}
        )
    if s.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(
            _("That username is taken. Please choose another."), fields={"username": "taken"}
        )
    return username


def register_student(
    s: Session,
    *,
    invite_code: str,
    username: str,
    nickname: str,
    grade: int,
    password: str,
    now: datetime,
) -> User:
    """A student joins with the invite code of their site. Only a nickname and grade are kept."""
    site = s.scalar(select(Site).where(Site.invite_code == invite_code.strip().upper()))
    if site is None:
        raise Invalid(
            _("That invite code is not valid. Ask your school or library for it."),
            fields={"invite_code": "unknown"},
        )
    if grade not in GRADES:
        raise Invalid(_("Grade must be 8, 9 or 10."), fields={"grade": "unknown"})
    if not nickname.strip():
        raise Invalid(_("Please choose a nickname."), fields={"nickname": "missing"})
    username = check_new_credentials(s, username, password)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=Role.STUDENT.value,
        display_name=nickname.strip()[:30],
        grade=grade,
        site_id=site.id,
        created_at=now,
    )
    s.add(user)
    s.flush()
    return user


START_PAGES = {
    Role.ADMIN: "admin.index",
    Role.COORDINATOR: "admin.index",
    Role.SITE_STAFF: "admin.index",
    Role.HELPER: "helper.station",
    Role.STUDENT: "student.ask",
}
