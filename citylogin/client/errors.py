"""citylogin.client.errors: the problem+json errors of the API as exceptions on the client's side."""
from __future__ import annotations

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


class ConcurrentLoginRequired(CityloginError):
    """409 concurrent_login (SPEC §5): confirm with `.confirm_token` to log `.active_devices` out."""

    def __init__(self, body: dict[str, Any], *, status: int | None = None) -> None:
        super().__init__(body, status=status)
        self.confirm_token: str | None = body.get("confirm_token")
        self.active_devices: list[dict[str, Any]] = body.get("active_devices", [])


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
