"""Test-side kiosks: pairing one the way a kiosk and site staff do (HTTP, the real staff form) and
connecting it over Socket.IO with its device token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from appliance.media import MediaEngine
from appliance.pairing import identity_from_answer
from appliance.state import KioskState
from tests.hubclient import Browserless, Client


class Kiosk(Client):
    """A kiosk's Socket.IO connection: `auth = {"device_token": ...}` instead of a user's token."""

    def __init__(self, base_url: str, device_token: str) -> None:
        super().__init__(base_url)
        self.device_token = device_token

    def connect(self) -> Kiosk:
        self.sio.connect(
            self.base_url,
            auth={"device_token": self.device_token},
            transports=["websocket"],
            wait_timeout=10,
        )
        return self


class StaffPage(Browserless):
    """Site staff (or an admin) logged in, reading the kiosks page in English."""

    def __init__(self, base_url: str, username: str = "staff1") -> None:
        super().__init__(base_url, lang="en")
        assert self.login(username).status_code == 302
        self.token = self.csrf("/admin/devices")

    def page(self, code: str | None = None) -> requests.Response:
        params = {"code": code} if code is not None else None
        return self.http.get(self.base_url + "/admin/devices", params=params)

    def post(self, path: str, **data: Any) -> requests.Response:
        """Post a form and follow the redirect, as a browser does."""
        return self.http.post(self.base_url + path, data={"csrf_token": self.token, **data})

    def confirm(self, user_code: str, **extra: Any) -> requests.Response:
        return self.post("/admin/devices/confirm", code=user_code, **extra)


def ask_for_code(hub: Any, **body: Any) -> dict[str, Any]:
    r = requests.post(hub.url + "/api/devices/pair", json=body, timeout=10)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def poll(hub: Any, device_code: str) -> requests.Response:
    return requests.post(
        hub.url + "/api/devices/pair/poll", json={"device_code": device_code}, timeout=10
    )


def pair(hub: Any, staff: str = "staff1", name: str = "Kiosk", **extra: Any) -> dict[str, Any]:
    """A kiosk paired through the whole flow: the poll's answer (`device_token`, `device_id`,
    `site`)."""
    code = ask_for_code(hub, name=name)
    assert StaffPage(hub.url, staff).confirm(code["user_code"], **extra).status_code == 200
    r = poll(hub, code["device_code"])
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def pair_into(hub: Any, data_dir: Path) -> dict[str, Any]:
    """A kiosk paired through the whole flow, its identity stored in the kiosk state in
    `data_dir` as pairing would have, so an appliance started there is paired: the poll's
    answer."""
    answer = pair(hub)
    state = KioskState(data_dir)
    state.store_identity(identity_from_answer(answer))
    state.close()
    return answer


def helper_call(
    helper: Client, joined: dict[str, Any], room_id: str, size: tuple[int, int]
) -> MediaEngine:
    """The helper's side of a kiosk's call: a media engine with the synthetic camera that makes
    the offer, as a helper's browser does, signalling through the helper's Socket.IO client
    (`joined` is the helper's `room:join` answer). The caller closes it."""
    engine = MediaEngine(fake=True, size=size, fps=15, polite=False)
    engine.start()
    helper.sio.on("rtc:signal", lambda m: engine.signal(m["kind"], m["data"]))
    engine.start_call(
        joined["ice_servers"],
        joined["ice_transport_policy"],
        lambda kind, data: helper.sio.emit(
            "rtc:signal", {"room_id": room_id, "kind": kind, "data": data}
        ),
    )
    return engine


def connect_kiosk(hub: Any, device_token: str) -> Kiosk:
    kiosk = Kiosk(hub.url, device_token).connect()
    hub._clients.append(kiosk)  # closed with the hub's other clients when the test ends
    return kiosk


def paired_kiosk(hub: Any, staff: str = "staff1", name: str = "Kiosk") -> Kiosk:
    return connect_kiosk(hub, pair(hub, staff, name)["device_token"])
