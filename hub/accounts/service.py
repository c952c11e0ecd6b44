"""Accounts: passwords, login with slowed-down guessing, student self-registration, and every
change to sites, partner organisations and users (the admin pages decide who may make it;
kiosks make the accounts of their own and of their visits here)."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import date, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from hub.accounts import throttle
from hub.accounts.access import Identity, revoke_all
from hub.accounts.models import Organisation, Role, Site, User
from hub.catalog.models import GRADES, Language, Subject
from hub.config import HubConfig
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.forms import CODE_ALPHABET

SITE_KINDS = ("school", "library", "youth_club")
# Roles an admin may create; students register themselves with a site's invite code.
CREATABLE_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.SITE_STAFF, Role.HELPER)
INVITE_LENGTH = 8
# No password hash matches this, so accounts of kiosks and of kiosk visits cannot log in.
NO_PASSWORD = "!"

log = logging.getLogger(__name__)
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
    s: Session,
    username: str,
    password: str,
    attempt: throttle.Attempt,
    now: datetime,
    config: HubConfig,
) -> User | None:
    """The user with these credentials, or None after counting the failure (so the caller must
    let the transaction commit). A try that must wait (hub.accounts.throttle) is refused with
    RateLimited before the password is checked."""
    throttle.check(s, attempt, now, config)
    user = s.scalar(select(User).where(User.username == normalise_username(username)))
    if (
        not _password_matches(user.password_hash if user else _DUMMY_HASH, password)
        or user is None
        or not user.active
    ):
        throttle.failed(s, attempt, now, config)
        return None
    throttle.succeeded(s, attempt)
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


# ---------------------------------------------------------------------------------------------
# Sites and partner organisations


def create_site(s: Session, *, name: str, kind: str, contact: str) -> Site:
    if kind not in SITE_KINDS:
        raise Invalid(_("Choose school, library or youth club."), fields={"kind": "unknown"})
    site = Site(name=name, kind=kind, contact=contact, invite_code=new_invite_code(s))
    s.add(site)
    s.flush()
    return site


def set_site_contact(s: Session, site_id: int, contact: str) -> Site:
    site = s.get(Site, site_id)
    if site is None:
        raise NotFound(_("There is no such site."))
    site.contact = contact
    return site


def new_invite_code(s: Session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _i in range(INVITE_LENGTH))
        if s.scalar(select(Site.id).where(Site.invite_code == code)) is None:
            return code


def renew_invite_code(s: Session, site: Site) -> None:
    """A fresh code; the old one stops working at once (students already registered stay)."""
    site.invite_code = new_invite_code(s)


def create_organisation(s: Session, *, name: str, contact: str, offers: str = "") -> Organisation:
    """A new partner organisation, hidden from new helpers until an admin approves its profile."""
    if s.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
        raise Conflict(
            _("An organisation with that name already exists."), fields={"name": "taken"}
        )
    organisation = Organisation(name=name, contact=contact, offers=offers, approved=False)
    s.add(organisation)
    s.flush()
    return organisation


def set_organisation_profile(
    organisation: Organisation, actor: Identity, *, contact: str, offers: str
) -> None:
    """What the organisation offers and its contact person. A coordinator's change must be
    screened again, so it hides the organisation from new helpers until an admin approves it."""
    changed = (organisation.contact, organisation.offers) != (contact, offers)
    organisation.contact, organisation.offers = contact, offers
    if changed and actor.role != Role.ADMIN:
        organisation.approved = False


def set_organisation_approved(organisation: Organisation, approved: bool) -> None:
    """An admin has screened the profile: new helpers can see it and sign up with it."""
    if approved and not organisation.contact.strip():
        raise Invalid(
            _("Name the organisation's contact person before approving it."),
            fields={"contact": "missing"},
        )
    organisation.approved = approved


def visible_organisations(s: Session) -> list[Organisation]:
    """The approved organisations, the ones a new helper can choose."""
    query = select(Organisation).where(Organisation.approved).order_by(Organisation.name)
    return list(s.scalars(query))


# ---------------------------------------------------------------------------------------------
# Users


def create_user(
    s: Session,
    actor: Identity,
    *,
    username: str,
    display_name: str,
    role: Role,
    password: str,
    organisation_id: int | None,
    site_id: int | None,
    now: datetime,
) -> User:
    """A new account. Coordinators create helpers of their own organisation only. Helpers start
    unapproved: someone must check their child-protection certificate first."""
    if actor.role == Role.COORDINATOR:
        role, organisation_id, site_id = Role.HELPER, actor.organisation_id, None
    elif actor.role != Role.ADMIN:
        raise Forbidden(_("Your role may not do this."))
    if role not in CREATABLE_ROLES:
        raise Invalid(_("Choose one of the roles in the list."), fields={"role": "unknown"})
    if role in (Role.HELPER, Role.COORDINATOR):
        if organisation_id is None or s.get(Organisation, organisation_id) is None:
            raise Invalid(
                _("Helpers and coordinators belong to a partner organisation. Choose one."),
                fields={"organisation_id": "missing"},
            )
    else:
        organisation_id = None
    if role == Role.SITE_STAFF:
        if site_id is None or s.get(Site, site_id) is None:
            message = _("Site staff belong to a site. Choose one.")
            raise Invalid(message, fields={"site_id": "missing"})
    else:
        site_id = None
    username = check_new_credentials(s, username, password)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role.value,
        display_name=display_name,
        organisation_id=organisation_id,
        site_id=site_id,
        approved=False,
        active=True,
        created_at=now,
    )
    s.add(user)
    s.flush()
    return user


def register_helper(
    s: Session,
    *,
    organisation_id: int,
    username: str,
    display_name: str,
    password: str,
    now: datetime,
    reminder_email: str = "",
    language: str | None = None,
) -> User:
    """A volunteer signs up with an approved organisation; they cannot go on duty until its
    coordinator has approved them. An e-mail address is optional (for shift reminders only)."""
    organisation = s.get(Organisation, organisation_id)
    if organisation is None or not organisation.approved:
        raise Invalid(
            _("Choose one of the organisations in the list."),
            fields={"organisation_id": "unknown"},
        )
    if not display_name.strip():
        raise Invalid(_("Please give your name."), fields={"display_name": "missing"})
    email = checked_reminder_email(reminder_email)
    username = check_new_credentials(s, username, password)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=Role.HELPER.value,
        display_name=display_name.strip()[:60],
        organisation_id=organisation.id,
        created_at=now,
    )
    _set_reminder_email(user, email, language)
    s.add(user)
    s.flush()
    return user


# A plain check, no delivery: enough to catch a typo, and no line breaks (they would be headers).
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
REMINDER_LANGUAGES = ("da", "en")


def checked_reminder_email(email: str) -> str | None:
    """The address as given (None when empty), or Invalid if it cannot be one."""
    email = email.strip()
    if not email:
        return None
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise Invalid(
            _("Give an e-mail address like name@example.dk, or leave the field empty."),
            fields={"reminder_email": "invalid"},
        )
    return email


def set_reminder_email(s: Session, helper_id: int, email: str, language: str | None) -> None:
    """A helper's address for shift reminders (empty: none, and no e-mail) and the language the
    reminders are written in."""
    user = s.get(User, helper_id)
    if user is None or user.role != Role.HELPER.value:
        raise NotFound(_("There is no such helper."))
    _set_reminder_email(user, checked_reminder_email(email), language)


def _set_reminder_email(user: User, email: str | None, language: str | None) -> None:
    user.reminder_email = email
    user.reminder_language = (
        language if email is not None and language in REMINDER_LANGUAGES else None
    )


# ---------------------------------------------------------------------------------------------
# Vetting: who may help


# Helpers and their coordinators are told this long before a certificate runs out.
WARN_BEFORE_EXPIRY = timedelta(days=30)


def approve_helper(
    user: User,
    *,
    certificate_checked_on: date | None,
    introduction_done: bool,
    now: datetime,
    valid_days: int,
) -> None:
    """A coordinator has checked the child-protection certificate on a date and given the
    introduction; also used to record a new check of an approved helper."""
    today = now.date()
    if certificate_checked_on is None or certificate_checked_on > today:
        raise Invalid(
            _("Give the date you checked the child-protection certificate (not in the future)."),
            fields={"certificate_checked_on": "missing"},
        )
    expires_on = certificate_checked_on + timedelta(days=valid_days)
    if expires_on <= today:
        raise Invalid(
            _("A check on that date has already expired. Check the certificate again."),
            fields={"certificate_checked_on": "expired"},
        )
    if not introduction_done:
        raise Invalid(
            _("Give the helper the introduction before approving them."),
            fields={"introduction_done": "missing"},
        )
    user.approved, user.introduction_done = True, True
    user.certificate_checked_on, user.certificate_expires_on = certificate_checked_on, expires_on


def withdraw_approval(user: User) -> None:
    user.approved = False


def welcome_due(user: User) -> bool:
    """Approved but has not read the welcome page since: login and the station lead there."""
    return user.role == Role.HELPER.value and user.approved and not user.welcome_seen


def welcome_read(user: User, now: datetime) -> None:
    """The helper opened the welcome page; it counts once they may help (before approval the
    page is only a preview and is shown again after it)."""
    if may_help(user, now):
        user.welcome_seen = True


def duty_refusal(user: User, now: datetime) -> str | None:
    """Why this helper may not go on duty now, in words for them; None if they may."""
    return _refusal(
        user.role,
        user.active,
        user.approved,
        user.introduction_done,
        user.certificate_expires_on,
        now,
    )


def _refusal(
    role: str,
    active: bool,
    approved: bool,
    introduction_done: bool,
    expires_on: date | None,
    now: datetime,
) -> str | None:
    reason = _refusal_reason(role, active, approved, introduction_done, expires_on, now)
    return None if reason is None else refusal_text(reason)


def _refusal_reason(
    role: str,
    active: bool,
    approved: bool,
    introduction_done: bool,
    expires_on: date | None,
    now: datetime,
) -> str | None:
    if role != Role.HELPER.value or not active:
        return "role"
    if not approved or not introduction_done or expires_on is None:
        return "not_approved"
    if expires_on <= now.date():
        return "certificate_expired"
    return None


def refusal_text(reason: str) -> str:
    """The words for a duty refusal's reason (`duty_refusal_reason`)."""
    if reason == "not_approved":
        return _("A coordinator must approve you before you can go on duty.")
    if reason == "certificate_expired":
        return _(
            "Your child-protection certificate check has expired. Ask your coordinator to "
            "check it again before you go on duty."
        )
    return _("Your role may not do this.")


def may_help(user: User, now: datetime) -> bool:
    """Approved (certificate checked, introduction done) and the check still current: the one
    rule for going on duty and for signing up for shifts."""
    return duty_refusal(user, now) is None


def duty_refusal_reason(s: Session, helper_id: int, now: datetime) -> str | None:
    """Why this helper may not go on duty now, as a code (`role`, `not_approved`,
    `certificate_expired`; the helper station words it); None if they may. Reads a few columns,
    not the User, which would also load its site, organisation and skills."""
    row = s.execute(
        select(
            User.role,
            User.active,
            User.approved,
            User.introduction_done,
            User.certificate_expires_on,
        ).where(User.id == helper_id)
    ).one_or_none()
    return "role" if row is None else _refusal_reason(*row, now)


def check_may_go_on_duty(s: Session, helper_id: int, now: datetime) -> None:
    """Refuse (Forbidden, with the reason) a helper who may not go on duty."""
    reason = duty_refusal_reason(s, helper_id, now)
    if reason is not None:
        raise Forbidden(refusal_text(reason))


def certificate_expiring_soon(user: User, now: datetime) -> bool:
    """Approved, still current, but running out within WARN_BEFORE_EXPIRY."""
    expires_on = user.certificate_expires_on
    return (
        user.approved
        and expires_on is not None
        and now.date() < expires_on <= (now + WARN_BEFORE_EXPIRY).date()
    )


def helpers_with_expired_certificates(s: Session, now: datetime) -> list[int]:
    return list(
        s.scalars(
            select(User.id).where(
                User.role == Role.HELPER.value,
                User.approved,
                User.certificate_expires_on <= now.date(),
            )
        )
    )


def set_user_active(user: User, active: bool) -> None:
    """Deactivated accounts cannot log in, and their logins and tokens are revoked."""
    user.active = active
    if not active:
        _revoke_credentials(user)


def _revoke_credentials(user: User) -> None:
    s = object_session(user)
    if s is not None and user.id is not None:
        revoke_all(s, user.id)


def set_helper_skills(
    s: Session,
    helper_id: int,
    grade_min: int,
    grade_max: int,
    subject_ids: list[int],
    language_codes: list[str],
) -> None:
    """What a helper can help with (their profile); unknown or inactive subjects are left out."""
    user = s.get(User, helper_id)
    assert user is not None
    user.grade_min, user.grade_max = grade_min, grade_max
    user.subjects = list(
        s.scalars(select(Subject).where(Subject.id.in_(subject_ids), Subject.active))
    )
    user.languages = list(s.scalars(select(Language).where(Language.code.in_(language_codes))))


def create_kiosk_account(s: Session, name: str, site_id: int, now: datetime) -> User:
    """The user row a paired kiosk's connections act as: no password, role `kiosk`."""
    return _without_password(
        s, f"kiosk-{secrets.token_hex(8)}", Role.KIOSK, name, None, site_id, now
    )


def create_visitor(s: Session, nickname: str, grade: int, site_id: int, now: datetime) -> User:
    """A student at a kiosk, for one visit: a nickname and grade, no password."""
    return _without_password(
        s, f"visit-{secrets.token_hex(8)}", Role.STUDENT, nickname, grade, site_id, now
    )


def _without_password(
    s: Session,
    username: str,
    role: Role,
    display_name: str,
    grade: int | None,
    site_id: int,
    now: datetime,
) -> User:
    user = User(
        username=username,
        password_hash=NO_PASSWORD,
        role=role.value,
        display_name=display_name,
        grade=grade,
        site_id=site_id,
        created_at=now,
    )
    s.add(user)
    s.flush()
    return user


def forget_visitor(user: User) -> None:
    """A kiosk visit ended: its nickname and grade go; the row stays, closed, for its requests
    and rooms until the retention period ends."""
    user.display_name, user.grade, user.active = "", None, False
    _revoke_credentials(user)  # the visit's token


def delete_login_failures_before(s: Session, cutoff: datetime) -> None:
    throttle.delete_before(s, cutoff)


def unlock_login(s: Session, user: User, actor_id: int, secret: str) -> None:
    """A coordinator or admin lets in someone whom others' wrong passwords locked out."""
    if throttle.unlock(s, secret, user.username):
        log.info(
            "login unlocked by user %d for user %d",
            actor_id,
            user.id,
            extra={"event": "login_unlocked"},
        )


def locked_logins(s: Session, users: list[User], now: datetime, config: HubConfig) -> set[int]:
    """The ids of these accounts whose login wrong passwords have closed somewhere."""
    names = throttle.limited(s, config.secret_key, [u.username for u in users], now, config)
    return {u.id for u in users if u.username in names}
