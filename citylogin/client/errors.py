"""citylogin.client.errors: the problem+json errors of the API as exceptions on the client's side."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


class CityloginError(Exception):
    """A problem+json error from the server: `.status`, `.code`, `.detail`, and the whole `.body`."""

    def __init__(self, body: dict[str, Any], *, status: int | None = None) -> None:
        self.body = body
        self.status = status if status is not None else body.get("status")
        self.code = body.get("code")
        self.detail = body.get("detail", "")
        super().__init__(f"{self.status} {self.code}: {self.detail}")

    @classmethod
    def from_response(cls, response: requests.Response) -> CityloginError:
        """The error a failed response stands for; a ConcurrentLoginRequired for 409 concurrent_login."""
        body = problem_body(response)
        error_class = ConcurrentLoginRequired if body.get("code") == "concurrent_login" else cls
        return error_class(body, status=response.status_code)


@dataclass(frozen=True)
class ActiveDevice:
    """One device a 409 concurrent_login lists as one that could be signed out to make room:
    `default` marks the ones that go unless the person chooses others, `current` the device asking
    (a phone approving a screen, when its own seat could go)."""
    session_id: str
    device_id: str
    device_name: str
    device_class: str
    login_at: str | None
    last_seen_at: str | None
    ip: str | None
    user_agent: str | None
    apps: tuple[str, ...]  # the names of the apps signed in through that session
    current: bool
    default: bool

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> ActiveDevice:
        # A server from before the choice lists fewer fields: each has a neutral value then.
        return cls(session_id=item.get("session_id") or "", device_id=item.get("device_id") or "",
                   device_name=item.get("device_name") or "", device_class=item.get("device_class") or "other",
                   login_at=item.get("login_at"), last_seen_at=item.get("last_seen_at"), ip=item.get("ip"),
                   user_agent=item.get("user_agent"),
                   apps=tuple(app.get("name") or app.get("client_id") or "" for app in item.get("apps") or ()),
                   current=bool(item.get("current")), default=bool(item.get("default")))


class ConcurrentLoginRequired(CityloginError):
    """409 concurrent_login (SPEC §5): the account is at its device limit. `.devices` are the ones that
    could be signed out (`.active_devices` the same as the server's JSON), `.needed` how many must go,
    `.action` what the person is doing (`{"kind": "login"}` or `{"kind": "screen", ...}`). Confirm with
    `Client.confirm(.confirm_token)` to sign out the default ones, or with `displace=[session_id, ...]`
    to sign out the ones the person chose (a screen's approval: the same call with `force`/`displace`)."""

    def __init__(self, body: dict[str, Any], *, status: int | None = None) -> None:
        super().__init__(body, status=status)
        self.confirm_token: str | None = body.get("confirm_token")
        self.active_devices: list[dict[str, Any]] = body.get("active_devices", [])
        self.devices = [ActiveDevice.from_json(item) for item in self.active_devices]
        self.needed: int = body.get("needed") or 1
        self.action: dict[str, Any] = body.get("action") or {"kind": "login"}

    @property
    def defaults(self) -> list[str]:
        """The session ids that go when the person confirms without choosing (the eviction order's pick)."""
        return [device.session_id for device in self.devices if device.default]


def problem_body(response: requests.Response) -> dict[str, Any]:
    # A proxy or a crash may answer with something other than problem+json; keep the client's shape.
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"status": response.status_code, "code": "http_error", "detail": response.text[:500]}
    return body


def json_or_raise(response: requests.Response) -> dict[str, Any]:
    """The JSON body of a successful response ({} when empty); CityloginError for status >= 400."""
    if response.status_code >= 400:
        raise CityloginError.from_response(response)
    return response.json() if response.content else {}
