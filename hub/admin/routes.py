"""Pages for admins, coordinators and site staff. `GET /admin` shows what the caller's role may
do; every change is its own small POST route that redirects back with a "Saved" notice, or
re-renders the page with the error and what the user typed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from hub import clock
from hub.accounts import service as accounts
from hub.accounts.access import Identity, caller, roles_required
from hub.accounts.models import Role, User
from hub.admin import service
from hub.catalog import service as catalogue
from hub.devices import service as devices
from hub.errors import Conflict, Invalid
from hub.forms import Failure, failure_of, parsed_form
from hub.realtime.notices import deliver
from hub.realtime.presence import disconnect_user
from hub.state import hub_state
from hub.validation import Payload

bp = Blueprint("admin", __name__, url_prefix="/admin")

M = TypeVar("M", bound=BaseModel)

ADMIN = Role.ADMIN
COORDINATOR = Role.COORDINATOR
SITE_STAFF = Role.SITE_STAFF


# ---------------------------------------------------------------------------------------------
# Payloads


class SubjectIn(Payload):
    key: str = Field(min_length=2, max_length=40, pattern=r"^[a-zA-Z0-9_]+$")
    name_da: str = Field(min_length=1, max_length=80)
    name_en: str = Field(min_length=1, max_length=80)


class SubjectNamesIn(Payload):
    name_da: str = Field(min_length=1, max_length=80)
    name_en: str = Field(min_length=1, max_length=80)


class LanguageIn(Payload):
    code: str = Field(min_length=2, max_length=12, pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})?$")
    name_da: str = Field(min_length=1, max_length=80)
    name_en: str = Field(min_length=1, max_length=80)


class ActiveIn(Payload):
    active: bool


class ApprovedIn(Payload):
    approved: bool
    # Needed to approve: the date the child-protection certificate was checked, and the
    # introduction given.
    certificate_checked_on: date | None = None
    introduction_done: bool = False

    @field_validator("certificate_checked_on", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class SiteIn(Payload):
    name: str = Field(min_length=1, max_length=120)
    kind: str = Field(min_length=1, max_length=20)
    contact: str = Field(default="", max_length=200)


class ContactIn(Payload):
    contact: str = Field(default="", max_length=200)


class OrganisationIn(Payload):
    name: str = Field(min_length=1, max_length=120)
    contact: str = Field(default="", max_length=200)
    offers: str = Field(default="", max_length=2000)


class ProfileIn(Payload):
    contact: str = Field(default="", max_length=200)
    offers: str = Field(default="", max_length=2000)


class UserIn(Payload):
    username: str = Field(min_length=1, max_length=40)
    display_name: str = Field(min_length=1, max_length=60)
    role: Role = Role.HELPER
    password: str = Field(min_length=1, max_length=200)
    organisation_id: int | None = None
    site_id: int | None = None

    @field_validator("organisation_id", "site_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def _labels() -> dict[str, str]:
    return {
        "key": _("Key"),
        "code": _("Code"),
        "name": _("Name"),
        "name_da": _("Danish name"),
        "name_en": _("English name"),
        "kind": _("Kind"),
        "contact": _("Contact"),
        "username": _("Username"),
        "display_name": _("Display name"),
        "role": _("Role"),
        "password": _("Password"),
        "organisation_id": _("Organisation"),
        "site_id": _("Site"),
        "offers": _("What the organisation offers"),
        "certificate_checked_on": _("Certificate checked on"),
        "introduction_done": _("Introduction done"),
    }


def _form(model: type[M]) -> M:
    return parsed_form(model, _labels())


# ---------------------------------------------------------------------------------------------
# Showing a page, with or without a failed form


def _saved(endpoint: str, **args: Any) -> ResponseReturnValue:
    flash(_("Saved."), "notice")
    return redirect(url_for(endpoint, **args))


def _attempt(
    form: str, change: Callable[[], None], page: Callable[[Failure | None], str], back: str
) -> ResponseReturnValue:
    """Run `change`; redirect to `back` when it worked, or show `page` again with the error."""
    try:
        change()
    except (Invalid, Conflict) as exc:
        return page(failure_of(form, exc)), exc.status
    return _saved(back)


# ---------------------------------------------------------------------------------------------
# Start page


@bp.route("")
@roles_required(ADMIN, COORDINATOR, SITE_STAFF)
def index() -> ResponseReturnValue:
    return _index_page(None)


def _index_page(failure: Failure | None) -> str:
    me = caller()
    with hub_state().db.transaction() as s:
        if me.role == COORDINATOR:
            assert me.organisation_id is not None
            organisation = service.organisation_for(s, me, me.organisation_id)
            helpers = service.helper_rows(s, me, clock.now())
            return render_template(
                "admin/coordinator.html",
                me=me,
                organisation=organisation,
                helpers=helpers,
                locked_logins=_locked_logins(s, [h.user for h in helpers]),
                today=clock.now().date().isoformat(),
                config_valid_days=hub_state().config.certificate_valid_days,
                failure=failure,
            )
        if me.role == SITE_STAFF:
            assert me.site_id is not None
            return render_template(
                "admin/site_staff.html", me=me, row=service.site_for(s, me, me.site_id)
            )
        users = service.users(s, me)
        return render_template(
            "admin/index.html",
            me=me,
            offline_kiosks=devices.long_offline(s, clock.now()),
            subjects=sum(1 for x in catalogue.subjects(s) if x.active),
            sites=len(service.sites(s)),
            organisations=len(service.organisations(s)),
            users=len(users),
            waiting=[u for u in users if u.role == Role.HELPER and not u.approved and u.active],
        )


# ---------------------------------------------------------------------------------------------
# Catalogue (admin)


@bp.route("/catalog")
@roles_required(ADMIN)
def catalog() -> ResponseReturnValue:
    return _catalog_page(None)


def _catalog_page(failure: Failure | None) -> str:
    with hub_state().db.transaction() as s:
        return render_template(
            "admin/catalog.html",
            me=caller(),
            subjects=catalogue.subjects(s),
            languages=catalogue.languages(s),
            failure=failure,
        )


@bp.route("/subjects", methods=["POST"])
@roles_required(ADMIN)
def add_subject() -> ResponseReturnValue:
    def change() -> None:
        data = _form(SubjectIn)
        with hub_state().db.transaction() as s:
            catalogue.add_subject(s, key=data.key, name_da=data.name_da, name_en=data.name_en)

    return _attempt("add-subject", change, _catalog_page, "admin.catalog")


@bp.route("/subjects/<int:subject_id>/rename", methods=["POST"])
@roles_required(ADMIN)
def rename_subject(subject_id: int) -> ResponseReturnValue:
    def change() -> None:
        data = _form(SubjectNamesIn)
        with hub_state().db.transaction() as s:
            catalogue.rename_subject(s, subject_id, name_da=data.name_da, name_en=data.name_en)

    return _attempt(f"rename-subject-{subject_id}", change, _catalog_page, "admin.catalog")


@bp.route("/subjects/<int:subject_id>/active", methods=["POST"])
@roles_required(ADMIN)
def set_subject_active(subject_id: int) -> ResponseReturnValue:
    def change() -> None:
        data = _form(ActiveIn)
        with hub_state().db.transaction() as s:
            catalogue.set_subject_active(s, subject_id, data.active)

    return _attempt(f"subject-{subject_id}", change, _catalog_page, "admin.catalog")


@bp.route("/languages", methods=["POST"])
@roles_required(ADMIN)
def add_language() -> ResponseReturnValue:
    def change() -> None:
        data = _form(LanguageIn)
        with hub_state().db.transaction() as s:
            catalogue.add_language(s, code=data.code, name_da=data.name_da, name_en=data.name_en)

    return _attempt("add-language", change, _catalog_page, "admin.catalog")


@bp.route("/languages/<code>/active", methods=["POST"])
@roles_required(ADMIN)
def set_language_active(code: str) -> ResponseReturnValue:
    def change() -> None:
        data = _form(ActiveIn)
        with hub_state().db.transaction() as s:
            catalogue.set_language_active(s, code, data.active)

    return _attempt(f"language-{code}", change, _catalog_page, "admin.catalog")


# ---------------------------------------------------------------------------------------------
# Sites (admin; site staff may renew their own site's invite code)


@bp.route("/sites")
@roles_required(ADMIN)
def sites() -> ResponseReturnValue:
    return _sites_page(None)


def _sites_page(failure: Failure | None) -> str:
    with hub_state().db.transaction() as s:
        return render_template(
            "admin/sites.html",
            me=caller(),
            rows=service.sites(s),
            kinds=_site_kinds(),
            failure=failure,
        )


def _site_kinds() -> dict[str, str]:
    return {"school": _("School"), "library": _("Library"), "youth_club": _("Youth club")}


@bp.route("/sites", methods=["POST"])
@roles_required(ADMIN)
def create_site() -> ResponseReturnValue:
    def change() -> None:
        data = _form(SiteIn)
        with hub_state().db.transaction() as s:
            accounts.create_site(s, name=data.name, kind=data.kind, contact=data.contact)

    return _attempt("add-site", change, _sites_page, "admin.sites")


@bp.route("/sites/<int:site_id>/contact", methods=["POST"])
@roles_required(ADMIN)
def set_site_contact(site_id: int) -> ResponseReturnValue:
    def change() -> None:
        data = _form(ContactIn)
        with hub_state().db.transaction() as s:
            accounts.set_site_contact(s, site_id, data.contact)

    return _attempt(f"site-contact-{site_id}", change, _sites_page, "admin.sites")


@bp.route("/sites/<int:site_id>/invite-code", methods=["POST"])
@roles_required(ADMIN, SITE_STAFF)
def regenerate_invite_code(site_id: int) -> ResponseReturnValue:
    me = caller()
    with hub_state().db.transaction() as s:
        service.regenerate_invite_code(s, me, site_id)
    flash(_("New code made. The old code no longer works."), "notice")
    return redirect(url_for("admin.sites" if me.role == ADMIN else "admin.index"))


# ---------------------------------------------------------------------------------------------
# Partner organisations (admin)


@bp.route("/organisations")
@roles_required(ADMIN)
def organisations() -> ResponseReturnValue:
    return _organisations_page(None)


def _organisations_page(failure: Failure | None) -> str:
    with hub_state().db.transaction() as s:
        helpers: dict[int, int] = {}
        for user in service.users(s, caller(), Role.HELPER):
            if user.organisation_id is not None:
                helpers[user.organisation_id] = helpers.get(user.organisation_id, 0) + 1
        return render_template(
            "admin/organisations.html",
            me=caller(),
            organisations=service.organisations(s),
            helpers=helpers,
            failure=failure,
        )


@bp.route("/organisations", methods=["POST"])
@roles_required(ADMIN)
def create_organisation() -> ResponseReturnValue:
    def change() -> None:
        data = _form(OrganisationIn)
        with hub_state().db.transaction() as s:
            accounts.create_organisation(
                s, name=data.name, contact=data.contact, offers=data.offers
            )

    return _attempt("add-organisation", change, _organisations_page, "admin.organisations")


@bp.route("/organisations/<int:organisation_id>/profile", methods=["POST"])
@roles_required(ADMIN, COORDINATOR)
def set_organisation_profile(organisation_id: int) -> ResponseReturnValue:
    """Admins edit any profile; a coordinator their own, which an admin then screens again."""
    me = caller()

    def change() -> None:
        data = _form(ProfileIn)
        with hub_state().db.transaction() as s:
            service.set_organisation_profile(
                s, me, organisation_id, contact=data.contact, offers=data.offers
            )

    form = f"organisation-profile-{organisation_id}"
    if me.role == ADMIN:
        return _attempt(form, change, _organisations_page, "admin.organisations")
    return _attempt(form, change, _index_page, "admin.index")


@bp.route("/organisations/<int:organisation_id>/approval", methods=["POST"])
@roles_required(ADMIN)
def set_organisation_approved(organisation_id: int) -> ResponseReturnValue:
    def change() -> None:
        data = _form(ApprovedIn)
        with hub_state().db.transaction() as s:
            service.set_organisation_approved(s, caller(), organisation_id, data.approved)

    form = f"organisation-approval-{organisation_id}"
    return _attempt(form, change, _organisations_page, "admin.organisations")


# ---------------------------------------------------------------------------------------------
# Users (admin: everyone; coordinator: their organisation's helpers, shown on their start page)


def _role_filter() -> Role | None:
    value = request.args.get("role", "")
    return Role(value) if value in {r.value for r in Role} else None


@bp.route("/users")
@roles_required(ADMIN)
def users() -> ResponseReturnValue:
    return _users_page(None)


def _users_page(failure: Failure | None) -> str:
    me = caller()
    role = _role_filter()
    names = _role_names()
    with hub_state().db.transaction() as s:
        listed = service.users(s, me, role)
        return render_template(
            "admin/users.html",
            me=me,
            users=listed,
            locked_logins=_locked_logins(s, listed),
            role=role,
            role_names=names,
            role_choices=[(r.value, names[r.value]) for r in accounts.CREATABLE_ROLES],
            org_choices=[(o.id, o.name) for o in service.organisations(s)],
            site_choices=[(row.site.id, row.site.name) for row in service.sites(s)],
            today=clock.now().date().isoformat(),
            failure=failure,
        )


def _role_names() -> dict[str, str]:
    return {
        Role.ADMIN.value: _("Admin"),
        Role.COORDINATOR.value: _("Coordinator"),
        Role.SITE_STAFF.value: _("Site staff"),
        Role.HELPER.value: _("Helper"),
        Role.STUDENT.value: _("Student"),
    }


def _users_or_index(me: Identity) -> Callable[[Failure | None], str]:
    return _users_page if me.role == ADMIN else _index_page


def _back_to_users(me: Identity) -> ResponseReturnValue:
    """Back to the list the form came from, keeping the admin's role filter."""
    if me.role != ADMIN:
        return _saved("admin.index")
    role = request.form.get("filter", "")
    return _saved("admin.users", **({"role": role} if role in {r.value for r in Role} else {}))


def _attempt_on_users(form: str, change: Callable[[Identity], None]) -> ResponseReturnValue:
    me = caller()
    try:
        change(me)
    except (Invalid, Conflict) as exc:
        return _users_or_index(me)(failure_of(form, exc)), exc.status
    return _back_to_users(me)


@bp.route("/users", methods=["POST"])
@roles_required(ADMIN, COORDINATOR)
def create_user() -> ResponseReturnValue:
    def change(me: Identity) -> None:
        data = _form(UserIn)
        with hub_state().db.transaction() as s:
            accounts.create_user(
                s,
                me,
                username=data.username,
                display_name=data.display_name,
                role=data.role,
                password=data.password,
                organisation_id=data.organisation_id,
                site_id=data.site_id,
                now=clock.now(),
            )

    return _attempt_on_users("add-user", change)


@bp.route("/users/<int:user_id>/approval", methods=["POST"])
@roles_required(ADMIN, COORDINATOR)
def set_approved(user_id: int) -> ResponseReturnValue:
    def change(me: Identity) -> None:
        data = _form(ApprovedIn)
        approval = (
            service.Approval(data.certificate_checked_on, data.introduction_done)
            if data.approved
            else None
        )
        state = hub_state()
        with state.db.matching_transaction() as s:
            notices = service.set_approved(
                s, me, user_id, approval, clock.now(), state.config.certificate_valid_days
            )
        deliver(notices)
        hub_state().kick_matching()

    return _attempt_on_users(f"user-{user_id}", change)


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(ADMIN, COORDINATOR)
def set_active(user_id: int) -> ResponseReturnValue:
    def change(me: Identity) -> None:
        data = _form(ActiveIn)
        with hub_state().db.matching_transaction() as s:
            notices = service.set_active(s, me, user_id, data.active, clock.now())
        deliver(notices)
        if not data.active:
            disconnect_user(hub_state().db, user_id)
        hub_state().kick_matching()

    return _attempt_on_users(f"user-{user_id}", change)


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@roles_required(ADMIN, COORDINATOR)
def unlock_login(user_id: int) -> ResponseReturnValue:
    def change(me: Identity) -> None:
        state = hub_state()
        with state.db.transaction() as s:
            service.unlock_login(s, me, user_id, state.config.secret_key)

    return _attempt_on_users(f"user-{user_id}", change)


def _locked_logins(s: Session, users: list[User]) -> set[int]:
    """The listed accounts whose login wrong passwords have closed (for the unlock button)."""
    return accounts.locked_logins(s, users, clock.now(), hub_state().config)


@bp.app_template_filter("belongs_to")
def _belongs_to(user: User) -> str:
    """Where an account belongs, for the user lists."""
    if user.organisation is not None:
        return user.organisation.name
    if user.site is not None:
        return user.site.name
    return ""
