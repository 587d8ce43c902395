"""A waiting authorization request's handle, the `#oidc=` the browser carries to the sign-in page: 32
random characters, then the app's client_id (public), by which complete() reads the app's grant on the
session with the request (the redemption's first try then replaces that grant, rather than learning of
it from a refused write). The handle is kept only as a digest (oidc.authorization.request.REQUEST_PURPOSE)."""
from __future__ import annotations

import re
import secrets

RANDOM_BYTES, RANDOM_CHARS = 24, 32  # a handle's random part: token_urlsafe(24) is 32 characters
_APP_IN_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the handle's alphabet (oidc.core.models.PendingRequest)


def new_handle(client_id: str) -> str:
    """A new request's handle: the random part, then `client_id` if it is spelled in the handle's alphabet."""
    return secrets.token_urlsafe(RANDOM_BYTES) + (client_id if _APP_IN_HANDLE.fullmatch(client_id) else "")


def app_of(handle: str) -> str | None:
    """The client_id a handle names (a hint: complete() takes it only if the request says so)."""
    named = handle[RANDOM_CHARS:]
    return named if named and _APP_IN_HANDLE.fullmatch(named) else None
