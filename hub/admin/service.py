"""What admins, coordinators and site staff may change: the catalogue, sites and their invite
codes, partner organisations and user accounts. Every function takes the caller's Identity where
the answer depends on who asks, and refuses with NotFound what lies outside the caller's scope
(so a coordinator cannot even learn that another organisation's helper exists)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import Organisation, Role, Site, User
from hub.accounts.service import check_new_credentials, hash_password
from hub.catalog.models import Language, Subject
from hub.devices.models import KioskVisit
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.matching.service import take_off_duty
from hub.realtime.notices import Notice

SITE_KINDS = ("school", "library", "youth_club")
# Roles an admin may create; students register themselves with a site's invite code.
CREATABLE_ROLES = (Role.ADMIN, Role.COORDINATOR, Role.SITE_STAFF, Role.HELPER)
# No 0/O, 1/I/L: the code is read out loud and typed in by students.
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
INVITE_LENGTH = 8


# ---------------------------------------------------------------------------------------------
# Catalogue


def subjects(s: Session) -> list[Subject]:
    return list(s.scalars(select(Subject).order_by(Subject.active.desc(), Subject.name_da)))


def languages(s: Session) -> list[Language]:
    return list(s.scalars(select(Language).order_by(Language.active.desc(), Language.code)))


def add_subject(s: Session, *, key: str, name_da: str, name_en: str) -> Subject:
    key = key.strip().lower()
    if s.scalar(select(Subject.id).where(Subject.key == key)) is not None:
        raise Conflict(_("A subject with that key already exists."), fields={"key": "taken"})
    subject = Subject(key=key, name_da=name_da, name_en=name_en, active=True)
    s.add(subject)
    s.flush()
    return subject


def rename_subject(s: Session, subject_id: int, *, name_da: str, name_en: str) -> Subject:
    subject = _subject(s, subject_id)
    subject.name_da, subject.name_en = name_da, name_en
    return subject


def set_subject_active(s: Session, subject_id: int, active: bool) -> Subject:
    subject = _subject(s, subject_id)
    subject.active = active
    return subject


def add_language(s: Session, *, code: str, name_da: str, name_en: str) -> Language:
    code = code.strip().lower()
    if s.get(Language, code) is not None:
        raise Conflict(_("A language with that code already exists."), fields={"code": "taken"})
    language = Language(code=code, name_da=name_da, name_en=name_en, active=True)
    s.add(language)
    s.flush()
    return language


def set_language_active(s: Session, code: str, active: bool) -> Language:
    language = s.get(Language, code)
    if language is None:
        raise NotFound(_("There is no such language."))
    language.active = active
    return language


def _subject(s: Session, subject_id: int) -> Subject:
    subject = s.get(Subject, subject_id)
    if subject is None:
        raise NotFound(_("There is no such subject."))
    return subject


# ---------------------------------------------------------------------------------------------
# Sites and invite codes


@dataclass(frozen=True)
class SiteRow:
    site: Site
    students: int


def sites(s: Session) -> list[SiteRow]:
    counts = _student_counts(s)
    return [SiteRow(x, counts.get(x.id, 0)) for x in s.scalars(select(Site).order_by(Site.name))]


def site_for(s: Session, actor: Identity, site_id: int) -> SiteRow:
    """One site with its number of students: any site for an admin, only their own for staff."""
    site = _site_in_scope(s, actor, site_id)
    return SiteRow(site, _student_counts(s, site.id).get(site.id, 0))


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


def regenerate_invite_code(s: Session, actor: Identity, site_id: int) -> Site:
    """A fresh code; the old one stops working at once (students already registered stay)."""
    site = _site_in_scope(s, actor, site_id)
    site.invite_code = new_invite_code(s)
    return site


def new_invite_code(s: Session) -> str:
    while True:
        code = "".join(secrets.choice(INVITE_ALPHABET) for _i in range(INVITE_LENGTH))
        if s.scalar(select(Site.id).where(Site.invite_code == code)) is None:
            return code


def _site_in_scope(s: Session, actor: Identity, site_id: int) -> Site:
    site = s.get(Site, site_id)
    if site is None or (actor.role != Role.ADMIN and actor.site_id != site.id):
        raise NotFound(_("There is no such site."))
    return site


def _accounts() -> Any:
    """Users who are people with an account: not a kiosk's own row, not a kiosk visit."""
    return (User.role != Role.KIOSK.value) & User.id.not_in(select(KioskVisit.user_id))


def _student_counts(s: Session, site_id: int | None = None) -> dict[int, int]:
    query = (
        select(User.site_id, func.count(User.id))
        .where(User.role == Role.STUDENT.value, User.site_id.is_not(None), _accounts())
        .group_by(User.site_id)
    )
    if site_id is not None:
        query = query.where(User.site_id == site_id)
    return {sid: n for sid, n in s.execute(query).tuples() if sid is not None}


# ---------------------------------------------------------------------------------------------
# Partner organisations


def organisations(s: Session) -> list[Organisation]:
    return list(s.scalars(select(Organisation).order_by(Organisation.name)))


def organisation_for(s: Session, actor: Identity, organisation_id: int) -> Organisation:
    organisation = s.get(Organisation, organisation_id)
    if organisation is None or (
        actor.role != Role.ADMIN and actor.organisation_id != organisation.id
    ):
        raise NotFound(_("There is no such organisation."))
    return organisation


def create_organisation(s: Session, *, name: str, contact: str) -> Organisation:
    if s.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
        raise Conflict(
            _("An organisation with that name already exists."), fields={"name": "taken"}
        )
    organisation = Organisation(name=name, contact=contact)
    s.add(organisation)
    s.flush()
    return organisation


def set_organisation_contact(s: Session, organisation_id: int, contact: str) -> Organisation:
    organisation = s.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(_("There is no such organisation."))
    organisation.contact = contact
    return organisation


# ---------------------------------------------------------------------------------------------
# Users


def users(s: Session, actor: Identity, role: Role | None = None) -> list[User]:
    """The accounts the caller may manage: everyone for an admin, their organisation's helpers
    for a coordinator."""
    query = select(User).where(_accounts()).order_by(User.role, User.username)
    if actor.role == Role.COORDINATOR:
        query = query.where(
            User.role == Role.HELPER.value, User.organisation_id == actor.organisation_id
        )
    elif actor.role != Role.ADMIN:
        raise Forbidden(_("Your role may not do this."))
    if role is not None:
        query = query.where(User.role == role.value)
    return list(s.scalars(query))


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


def set_approved(
    s: Session, actor: Identity, user_id: int, approved: bool, now: datetime
) -> list[Notice]:
    """Record that a helper's child-protection certificate was checked, or withdraw that."""
    helper = _user_in_scope(s, actor, user_id)
    if helper.role != Role.HELPER.value:
        raise Invalid(_("Only helpers need approval."))
    helper.approved = approved
    return [] if approved else take_off_duty(s, helper.id, now)


def set_active(
    s: Session, actor: Identity, user_id: int, active: bool, now: datetime
) -> list[Notice]:
    """Deactivated accounts cannot log in; a deactivated helper goes off duty at once."""
    user = _user_in_scope(s, actor, user_id)
    if not active and user.id == actor.user_id:
        raise Invalid(_("You cannot deactivate your own account."))
    user.active = active
    return take_off_duty(s, user.id, now) if not active and user.role == Role.HELPER.value else []


def _user_in_scope(s: Session, actor: Identity, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise NotFound(_("There is no such user."))
    if actor.role == Role.ADMIN:
        return user
    if (
        actor.role == Role.COORDINATOR
        and user.role == Role.HELPER.value
        and user.organisation_id is not None
        and user.organisation_id == actor.organisation_id
    ):
        return user
    raise NotFound(_("There is no such user."))
