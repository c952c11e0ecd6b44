"""Pairing over HTTP for kiosks (no login: the kiosk has nothing yet but its device code), and the
kiosks page where site staff (and admins) confirm a kiosk's code, watch its health and history of
problems, send it commands, push settings to a site's kiosks or one kiosk, rename and unpair it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal, TypeVar

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from pydantic import BaseModel, Field, field_validator

from hub import clock
from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role
from hub.devices import service
from hub.devices.models import DeviceEvent, Pairing
from hub.errors import HubError
from hub.extensions import socketio
from hub.forms import Failure, failure_of, parsed_form
from hub.realtime.notices import Notice, deliver
from hub.realtime.presence import disconnect_user
from hub.state import hub_state
from hub.validation import Payload, parsed_json

bp = Blueprint("devices", __name__)

M = TypeVar("M", bound=BaseModel)

STAFF = (Role.ADMIN, Role.SITE_STAFF)


class PairIn(Payload):
    name: str = Field(default="", max_length=60)
    model: str = Field(default="", max_length=80)
    site_code: str = Field(default="", max_length=32)


class PollIn(Payload):
    device_code: str = Field(min_length=1, max_length=100)


class CodeIn(Payload):
    code: str = Field(default="", max_length=20)
    site_id: int | None = None

    @field_validator("site_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class NameIn(Payload):
    name: str = Field(min_length=1, max_length=60)


class CommandIn(Payload):
    name: Literal["restart_kiosk", "reboot", "reload_config"]


class SettingsIn(Payload):
    """The settings form; a blank field is "not set here" (inherited)."""

    lang: Literal["da", "en"] | None = None
    idle_s: int | None = Field(default=None, ge=20, le=3600)
    countdown_s: int | None = Field(default=None, ge=5, le=120)
    room_idle_s: int | None = Field(default=None, ge=60, le=7200)
    notice: str | None = Field(default=None, max_length=200)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def settings(self) -> service.PushedSettings:
        return service.PushedSettings(**self.model_dump())


# ---------------------------------------------------------------------------------------------
# The kiosk's side


@bp.route("/api/devices/pair", methods=["POST"])
def pair() -> ResponseReturnValue:
    state = hub_state()
    data = parsed_json(PairIn)
    with state.db.transaction() as s:
        new = service.start_pairing(
            s,
            name=data.name,
            model=data.model,
            site_code=data.site_code,
            now=clock.now(),
            config=state.config,
        )
    return {
        "ok": True,
        "device_code": new.device_code,
        "user_code": new.user_code,
        "verification_uri": url_for("devices.page", _external=True),
        "verification_uri_complete": url_for("devices.page", code=new.user_code, _external=True),
        "expires_in": new.expires_in,
        "interval": new.interval,
    }


@bp.route("/api/devices/pair/poll", methods=["POST"])
def poll() -> ResponseReturnValue:
    state = hub_state()
    data = parsed_json(PollIn)
    with state.db.transaction() as s:
        outcome = service.poll(s, data.device_code, clock.now(), state.config)
    if isinstance(outcome, HubError):
        raise outcome
    return {
        "ok": True,
        "device_token": outcome.device_token,
        "device_id": outcome.device.id,
        "site": {"id": outcome.site.id, "name": outcome.site.name},
    }


@bp.route("/api/devices/unpair", methods=["POST"])
def unpair() -> ResponseReturnValue:
    """A kiosk unpairs itself (`provision reset`), with `Authorization: Bearer <device token>`."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    state = hub_state()
    with state.db.matching_transaction() as s:
        device_id, users, notices = service.unpair_itself(s, token, clock.now(), state.config)
    _unpaired(device_id, users, notices)
    return {"ok": True}


# ---------------------------------------------------------------------------------------------
# The kiosks page


@bp.route("/admin/devices")
@roles_required(*STAFF)
def page() -> ResponseReturnValue:
    """The page; with `?code=` (typed, or from the QR code on the kiosk) it shows the kiosk
    waiting with that code, to be confirmed with a second press."""
    typed = request.args.get("code", "")
    if not typed:
        return _page(None)
    state = hub_state()
    try:
        with state.db.transaction() as s:
            found = service.find_pending(s, caller(), typed, clock.now(), state.config)
        if isinstance(found, HubError):
            raise found
    except HubError as exc:
        failure = Failure("pair", exc.message, exc.details.get("fields", {}), {"code": typed})
        return _page(failure), exc.status
    return _page(None, found)


def _page(failure: Failure | None, pending: Pairing | None = None) -> str:
    me, now = caller(), clock.now()
    with hub_state().db.transaction() as s:
        sites = service.sites_for(s, me)
        return render_template(
            "devices/kiosks.html",
            me=me,
            rows=service.devices_for(s, me, now),
            sites=sites,
            site_settings={site.id: service.site_settings(s, me, site.id) for site in sites},
            site_choices=[(site.id, site.name) for site in sites],
            pending=pending,
            pending_code=service.format_user_code(pending.user_code) if pending else "",
            failure=failure,
            now=now,
            commands=_command_names(),
            labels=_setting_labels(),
            describe=_describe,
        )


def _command_names() -> dict[str, str]:
    return {
        "restart_kiosk": _("Restart the kiosk program"),
        "reload_config": _("Reload settings"),
        "reboot": _("Reboot the device"),
    }


def _describe(event: DeviceEvent) -> str:
    """A line of a kiosk's history of problems."""
    value = event.value or 0
    texts = {
        "started": _("The kiosk program started"),
        "camera_lost": _("The camera stopped working"),
        "camera_back": _("The camera works again"),
        "hub_unreachable": _(
            "Could not reach the hub for %(time)s",
            time=format_timedelta(timedelta(seconds=value)),
        ),
        "disk_low": _("Low free disk: %(mb)d MB", mb=value),
        "hot": _("Hot: %(temp).0f °C", temp=value),
    }
    return texts.get(event.kind, event.kind)


def _setting_labels() -> dict[str, str]:
    return {
        "lang": _("Language between visits"),
        "idle_s": _("Seconds without a touch before “Are you still there?”"),
        "countdown_s": _("Seconds of countdown before the visit ends"),
        "room_idle_s": _("The same, in a session with a helper"),
        "notice": _("Notice on the start screen"),
    }


def _form(model: type[M]) -> M:
    """The submitted form as `model`; fields to fix are named as the page names them."""
    labels = {"code": _("Code"), "site_id": _("Site"), "name": _("Name"), **_setting_labels()}
    return parsed_form(model, labels)


def _push(kiosks: list[tuple[int, service.PushedSettings]]) -> None:
    for device_id, settings in kiosks:
        socketio.emit("device:settings", settings.payload(), to=service.device_room(device_id))


def _attempt(form: str, change: Callable[[], str]) -> ResponseReturnValue:
    """Run `change`; back to the page with its notice, or the page again with the error."""
    try:
        notice = change()
    except HubError as exc:
        return _page(failure_of(form, exc)), exc.status
    flash(notice, "notice")
    return redirect(url_for("devices.page"))


@bp.route("/admin/devices/confirm", methods=["POST"])
@roles_required(*STAFF)
def confirm() -> ResponseReturnValue:
    def change() -> str:
        state = hub_state()
        data = _form(CodeIn)
        with state.db.transaction() as s:
            result = service.confirm(
                s, caller(), data.code, data.site_id, clock.now(), state.config
            )
        if isinstance(result, HubError):
            raise result
        return _("Kiosk paired. It connects by itself within a few seconds.")

    return _attempt("pair", change)


@bp.route("/admin/devices/deny", methods=["POST"])
@roles_required(*STAFF)
def deny() -> ResponseReturnValue:
    def change() -> str:
        state = hub_state()
        data = _form(CodeIn)
        with state.db.transaction() as s:
            refused = service.deny(s, caller(), data.code, clock.now(), state.config)
        if refused is not None:
            raise refused
        return _("The kiosk was turned down. It cannot connect with that code.")

    return _attempt("pair", change)


@bp.route("/admin/devices/<int:device_id>/rename", methods=["POST"])
@roles_required(*STAFF)
def rename(device_id: int) -> ResponseReturnValue:
    def change() -> str:
        data = _form(NameIn)
        with hub_state().db.transaction() as s:
            service.rename(s, caller(), device_id, data.name)
        return _("Saved.")

    return _attempt(f"device-{device_id}", change)


@bp.route("/admin/devices/<int:device_id>/command", methods=["POST"])
@roles_required(*STAFF)
def command(device_id: int) -> ResponseReturnValue:
    def change() -> str:
        data = _form(CommandIn)
        with hub_state().db.transaction() as s:
            sent = service.send_command(s, caller(), device_id, data.name, clock.now())
            payload = {"command_id": sent.id, "name": sent.name, "args": {}}
        socketio.emit("device:command", payload, to=service.device_room(device_id))
        return _("Command sent. The kiosk's answer shows in the list.")

    return _attempt(f"device-{device_id}", change)


@bp.route("/admin/devices/<int:device_id>/revoke", methods=["POST"])
@roles_required(*STAFF)
def revoke(device_id: int) -> ResponseReturnValue:
    def change() -> str:
        state = hub_state()
        with state.db.matching_transaction() as s:
            users, notices = service.revoke(s, caller(), device_id, clock.now(), state.config)
        _unpaired(device_id, users, notices)
        return _("The kiosk is unpaired. To use it again, pair it anew.")

    return _attempt(f"device-{device_id}", change)


def _unpaired(device_id: int, users: list[int], notices: list[Notice]) -> None:
    """After a kiosk was unpaired: tell whom it concerns and close its connections."""
    state = hub_state()
    deliver(notices)
    # Told first, so the kiosk shows its pairing screen at once instead of finding out when its
    # next connect is refused.
    socketio.emit("device:revoked", {}, to=service.device_room(device_id))
    for user_id in users:
        disconnect_user(state.db, user_id)
    state.kick_matching()


@bp.route("/admin/devices/sites/<int:site_id>/settings", methods=["POST"])
@roles_required(*STAFF)
def site_settings(site_id: int) -> ResponseReturnValue:
    def change() -> str:
        values = _form(SettingsIn).settings()
        with hub_state().db.transaction() as s:
            kiosks = service.save_site_settings(s, caller(), site_id, values)
        _push(kiosks)
        return _("Saved. The site's kiosks use the settings within a few seconds.")

    return _attempt(f"site-{site_id}", change)


@bp.route("/admin/devices/<int:device_id>/settings", methods=["POST"])
@roles_required(*STAFF)
def device_settings(device_id: int) -> ResponseReturnValue:
    def change() -> str:
        values = _form(SettingsIn).settings()
        with hub_state().db.transaction() as s:
            kiosks = service.save_device_settings(s, caller(), device_id, values)
        _push(kiosks)
        return _("Saved. The kiosk uses the settings within a few seconds.")

    return _attempt(f"device-{device_id}", change)
