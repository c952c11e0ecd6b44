"""Who of admins, coordinators and site staff may see and change which sites, partner
organisations and user accounts; the changes themselves are made by the owners of those tables
(hub.accounts.service, hub.matching.service). Every function takes the caller's Identity where the
answer depends on who asks, and refuses with NotFound what lies outside the caller's scope (so a
coordinator cannot even learn that another organisation's helper exists)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.accounts import service as accounts
from hub.accounts.access import Identity
from hub.accounts.models import Organisation, Role, Site, User
from hub.devices.models import KioskVisit
from hub.errors import Forbidden, Invalid, NotFound
from hub.matching.service import take_off_duty
from hub.realtime.notices import Notice

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


def regenerate_invite_code(s: Session, actor: Identity, site_id: int) -> Site:
    """A fresh invite code for a site in the caller's scope."""
    site = _site_in_scope(s, actor, site_id)
    accounts.renew_invite_code(s, site)
    return site


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


def set_organisation_profile(
    s: Session, actor: Identity, organisation_id: int, *, contact: str, offers: str
) -> Organisation:
    """Admins edit any profile, coordinators their own organisation's (to be screened again)."""
    organisation = organisation_for(s, actor, organisation_id)
    accounts.set_organisation_profile(organisation, actor, contact=contact, offers=offers)
    return organisation


def set_organisation_approved(
    s: Session, actor: Identity, organisation_id: int, approved: bool
) -> Organisation:
    if actor.role != Role.ADMIN:
        raise Forbidden(_("Your role may not do this."))
    organisation = organisation_for(s, actor, organisation_id)
    accounts.set_organisation_approved(organisation, approved)
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


def set_approved(
    s: Session,
    actor: Identity,
    user_id: int,
    approval: Approval | None,
    now: datetime,
    valid_days: int,
) -> list[Notice]:
    """Approve a helper (or record a new check of their certificate), or with None withdraw the
    approval, which takes them off duty."""
    helper = _user_in_scope(s, actor, user_id)
    if helper.role != Role.HELPER.value:
        raise Invalid(_("Only helpers need approval."))
    if approval is None:
        accounts.withdraw_approval(helper)
        return take_off_duty(s, helper.id, now)
    accounts.approve_helper(
        helper,
        certificate_checked_on=approval.certificate_checked_on,
        introduction_done=approval.introduction_done,
        now=now,
        valid_days=valid_days,
    )
    return []


@dataclass(frozen=True)
class Approval:
    certificate_checked_on: date | None
    introduction_done: bool


@dataclass(frozen=True)
class HelperRow:
    """A helper as their coordinator sees them: the account and where their vetting stands."""

    user: User
    may_help: bool
    expiring_soon: bool
    expired: bool


def helper_rows(s: Session, actor: Identity, now: datetime) -> list[HelperRow]:
    return [
        HelperRow(
            user,
            accounts.may_help(user, now),
            accounts.certificate_expiring_soon(user, now),
            user.approved
            and user.certificate_expires_on is not None
            and user.certificate_expires_on <= now.date(),
        )
        for user in users(s, actor, Role.HELPER)
    ]


def set_active(
    s: Session, actor: Identity, user_id: int, active: bool, now: datetime
) -> list[Notice]:
    """Deactivated accounts cannot log in; a deactivated helper goes off duty at once."""
    user = _user_in_scope(s, actor, user_id)
    if not active and user.id == actor.user_id:
        raise Invalid(_("You cannot deactivate your own account."))
    accounts.set_user_active(user, active)
    return take_off_duty(s, user.id, now) if not active and user.role == Role.HELPER.value else []


def unlock_login(s: Session, actor: Identity, user_id: int, secret: str) -> None:
    """Someone is locked out by others' wrong passwords (hub.accounts.throttle): let them in."""
    accounts.unlock_login(s, _user_in_scope(s, actor, user_id), actor.user_id, secret)


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
