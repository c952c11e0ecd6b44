"""Login, logout, registration, language choice and API tokens."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from pydantic import Field
from werkzeug.wrappers import Response

from hub import clock
from hub.accounts import mydata, service, throttle
from hub.accounts.access import (
    Identity,
    caller,
    current_identity,
    login_session,
    logout_session,
    make_token,
    revoke,
    roles_required,
)
from hub.accounts.models import Role, User
from hub.config import HubConfig
from hub.errors import HubError, RateLimited, Unauthenticated
from hub.state import hub_state
from hub.validation import Payload, parse, parsed_json

bp = Blueprint("accounts", __name__)


class LoginIn(Payload):
    username: str = Field(min_length=1, max_length=40)
    password: str = Field(min_length=1, max_length=200)


class RegisterIn(Payload):
    invite_code: str = Field(min_length=1, max_length=32)
    username: str = Field(min_length=1, max_length=40)
    nickname: str = Field(min_length=1, max_length=30)
    grade: int
    password: str = Field(min_length=1, max_length=200)


def _authenticate(data: LoginIn) -> tuple[Identity, str]:
    """The caller, and the new value of their browser's known-device cookie."""
    state = hub_state()
    secret = state.config.secret_key
    username = service.normalise_username(data.username)
    device = throttle.read_device_cookie(secret, request.cookies.get(throttle.DEVICE_COOKIE))
    attempt = throttle.Attempt.of(secret, username, client_address(state.config), device)
    with state.db.transaction() as s:
        user = service.authenticate(s, username, data.password, attempt, clock.now(), state.config)
        identity = Identity.of(user) if user is not None else None
    if identity is None:  # raised after the commit, so the failed try is counted
        raise Unauthenticated(_("Wrong username or password."))
    return identity, throttle.device_cookie(secret, device, username)


def client_address(config: HubConfig) -> str:
    """Who is calling: the peer, or behind a trusted proxy the address its X-Forwarded-For ends
    with (the one that proxy added; what a client wrote before it is not to be believed)."""
    peer = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and _is_trusted(peer, config.trusted_proxies):
        return forwarded.rsplit(",", 1)[-1].strip()
    return peer


def _is_trusted(peer: str, proxies: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in proxies)


def _remember_device(response: Response, cookie: str) -> Response:
    """The known-device cookie: a later login of the same account from this browser gets past
    the limits that others' wrong passwords put on it (hub.accounts.throttle)."""
    response.set_cookie(
        throttle.DEVICE_COOKIE,
        cookie,
        max_age=throttle.DEVICE_COOKIE_MAX_AGE_S,
        secure=hub_state().config.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    return response


def _retry_after(exc: HubError) -> dict[str, str]:
    seconds = exc.details.get("retry_after_s")
    return {"Retry-After": str(seconds)} if isinstance(exc, RateLimited) and seconds else {}


def start_page(identity: Identity) -> str:
    """Where a login leads: the role's start page, or for a newly approved helper the welcome."""
    if identity.role == Role.HELPER:
        with hub_state().db.transaction() as s:
            user = s.get(User, identity.user_id)
            if user is not None and service.welcome_due(user):
                return url_for("accounts.welcome")
    return url_for(service.START_PAGES[identity.role])


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site, never another host."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.route("/")
def index() -> ResponseReturnValue:
    identity = current_identity()
    return redirect(start_page(identity) if identity else url_for("accounts.login"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error: str | None = None
    status = 200
    headers: dict[str, str] = {}
    if request.method == "POST":
        try:
            identity, device = _authenticate(parse(request.form.to_dict(), LoginIn))
        except HubError as exc:
            error, status, headers = exc.message, exc.status, _retry_after(exc)
        else:
            lang = session.get("lang")
            login_session(identity)
            if lang:
                session["lang"] = lang
            target = _safe_next(request.args.get("next")) or start_page(identity)
            return _remember_device(redirect(target), device)
    return (
        render_template("login.html", error=error, username=request.form.get("username", "")),
        status,
        headers,
    )


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    lang = session.get("lang")
    logout_session()
    if lang:
        session["lang"] = lang
    answer = redirect(url_for("accounts.login"))
    # The browser's copies of room documents (IndexedDB, doc.js) go with the login, also when
    # the logout is made from a page without the room's own clean-up.
    answer.headers["Clear-Site-Data"] = '"storage"'
    return answer


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    error: str | None = None
    fields: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        state = hub_state()
        try:
            data = parse(request.form.to_dict(), RegisterIn)
            with state.db.transaction() as s:
                user = service.register_student(
                    s,
                    invite_code=data.invite_code,
                    username=data.username,
                    nickname=data.nickname,
                    grade=data.grade,
                    password=data.password,
                    now=clock.now(),
                )
                identity = Identity.of(user)
        except HubError as exc:
            error, status, fields = exc.message, exc.status, exc.details.get("fields", {})
        else:
            login_session(identity)
            return redirect(start_page(identity))
    return render_template("register.html", error=error, fields=fields, form=request.form), status


class HelperSignUpIn(Payload):
    organisation_id: int
    username: str = Field(min_length=1, max_length=40)
    display_name: str = Field(min_length=1, max_length=60)
    password: str = Field(min_length=1, max_length=200)
    reminder_email: str = Field(default="", max_length=254)


@bp.route("/register/helper", methods=["GET", "POST"])
def register_helper() -> ResponseReturnValue:
    """Volunteers sign up with one of the approved partner organisations."""
    error: str | None = None
    fields: dict[str, Any] = {}
    status = 200
    state = hub_state()
    if request.method == "POST":
        try:
            data = parse(request.form.to_dict(), HelperSignUpIn)
            with state.db.transaction() as s:
                user = service.register_helper(
                    s,
                    organisation_id=data.organisation_id,
                    username=data.username,
                    display_name=data.display_name,
                    password=data.password,
                    now=clock.now(),
                    reminder_email=data.reminder_email,
                    language=str(get_locale() or "da"),
                )
                identity = Identity.of(user)
        except HubError as exc:
            error, status, fields = exc.message, exc.status, exc.details.get("fields", {})
        else:
            login_session(identity)
            return redirect(url_for("accounts.welcome"))
    with state.db.transaction() as s:
        organisations = service.visible_organisations(s)
        return render_template(
            "register.html",
            helper=True,
            organisations=organisations,
            error=error,
            fields=fields,
            form=request.form,
        ), status


@bp.route("/welcome")
@roles_required(Role.HELPER)
def welcome() -> ResponseReturnValue:
    """For new helpers: the rules, how the helper station works, and who their contact is."""
    with hub_state().db.transaction() as s:
        user = s.get(User, caller().user_id)
        assert user is not None
        service.welcome_read(user, clock.now())
        return render_template("welcome.html", me=user, standing=helper_standing(user))


@dataclass(frozen=True)
class HelperStanding:
    """Where a helper's vetting stands, for the helper station and the welcome page."""

    may_help: bool
    refusal: str | None
    expires_on: date | None
    expiring_soon: bool


@bp.app_template_global()
def helper_standing(user: User) -> HelperStanding:
    now = clock.now()
    return HelperStanding(
        service.may_help(user, now),
        service.duty_refusal(user, now),
        user.certificate_expires_on,
        service.certificate_expiring_soon(user, now),
    )


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code: str) -> ResponseReturnValue:
    if code in ("da", "en"):
        session["lang"] = code
    return redirect(_safe_next(request.form.get("next")) or url_for("accounts.index"))


@bp.route("/api/auth/token", methods=["POST"])
def api_token() -> ResponseReturnValue:
    try:
        identity, device = _authenticate(parsed_json(LoginIn))
    except RateLimited as exc:
        return {"ok": False, "error": exc.as_dict()}, exc.status, _retry_after(exc)
    answer = {
        "ok": True,
        "token": make_token(identity.user_id),
        "role": identity.role.value,
        "user_id": identity.user_id,
    }
    return _remember_device(jsonify(answer), device)


@bp.route("/api/auth/token", methods=["DELETE"])
def revoke_token() -> ResponseReturnValue:
    """Revoke the bearer token this call carries (a tool logging out); it is refused from now on,
    on HTTP and when a socket connects with it."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not revoke(token):
        raise Unauthenticated(_("Please log in first."))
    return {"ok": True}


@bp.route("/privacy")
def privacy() -> ResponseReturnValue:
    return render_template("privacy.html", config=hub_state().config)


@bp.route("/me/data")
@roles_required(Role.STUDENT)
def my_data() -> ResponseReturnValue:
    if request.args.get("format") == "json":
        return my_data_json()
    with hub_state().db.transaction() as s:
        return render_template("mydata.html", **mydata.collect(s, caller().user_id))


@bp.route("/me/data.json")
@roles_required(Role.STUDENT)
def my_data_json() -> ResponseReturnValue:
    now = clock.now()
    with hub_state().db.transaction() as s:
        data = mydata.download(s, caller(), str(get_locale() or "da"), now)
    response = jsonify(data)
    name = f"lektiecafe-my-data-{now.date().isoformat()}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


class ConfirmIn(Payload):
    confirm: Literal["yes"]


@bp.route("/me/delete", methods=["POST"])
@roles_required(Role.STUDENT)
def delete_me() -> ResponseReturnValue:
    identity = caller()
    parse(request.form.to_dict(), ConfirmIn)
    state = hub_state()
    with state.db.transaction() as s:
        mydata.delete_own_account(s, identity, state.config.attachments_dir, clock.now())
    session.clear()
    mydata.account_deleted.send(identity.user_id)
    return render_template("deleted.html")


@bp.route("/api/me")
def api_me() -> ResponseReturnValue:
    identity = current_identity()
    if identity is None:
        return {
            "ok": False,
            "error": {"code": "unauthenticated", "message": _("Please log in first.")},
        }, 401
    return {
        "ok": True,
        "user_id": identity.user_id,
        "role": identity.role.value,
        "display_name": identity.display_name,
    }
