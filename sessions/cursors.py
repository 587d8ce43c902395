"""Page cursors sealed for the listing and the account they were made for (SPEC §4 history and sessions,
§15 the admin API's history and audit): the store's position and the key ring kid, followed by an
HMAC under that refresh secret over both, the listing's name and the account. A cursor this server did
not make, one edited, or one made for another listing or account opens to None (the caller's 400)."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Protocol

from common.crypto.tokens import digests_equal, keyed_token

MAC_LENGTH = 43  # HMAC-SHA256 as unpadded URL-safe base64, the cursor's fixed-length tail
KID_MAX = 128


class SecretsByKid(Protocol):
    """The key ring's refresh secrets (common.keys.ring_reader.RefreshSecrets)."""

    def newest_kid(self) -> str: ...

    def get(self, kid: str) -> bytes | None: ...


def seal(position: str, *, secrets: SecretsByKid, listing: str, user_uuid: str) -> str:
    """`position` (the store's own cursor) sealed for this listing of this account."""
    kid = secrets.newest_kid()
    secret = secrets.get(kid)
    if secret is None:  # the ring names a kid it does not hold: a broken ring, not a client's error
        raise LookupError(f"refresh secret {kid} is not in the key ring")
    payload = base64.urlsafe_b64encode(json.dumps([kid, position], separators=(",", ":")).encode())
    text = payload.decode().rstrip("=")
    return text + _mac(secret, listing=listing, user_uuid=user_uuid, payload=text)


def open_sealed(cursor: str, *, secrets: SecretsByKid, listing: str, user_uuid: str) -> str | None:
    """The position `cursor` was sealed around, if this server sealed it for this listing and account."""
    text, mac = cursor[:-MAC_LENGTH], cursor[-MAC_LENGTH:]
    kid, position = _payload(text)
    secret = secrets.get(kid) if kid is not None else None
    if secret is None or not digests_equal(mac, _mac(secret, listing=listing, user_uuid=user_uuid, payload=text)):
        return None
    return position


def _payload(text: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, RecursionError, binascii.Error):
        return None, None
    if not (isinstance(data, list) and len(data) == 2 and all(isinstance(part, str) and part for part in data)
            and len(data[0]) <= KID_MAX):
        return None, None
    return data[0], data[1]


def _mac(secret: bytes, *, listing: str, user_uuid: str, payload: str) -> str:
    # The listing and the account are in the MAC, not in the cursor: a cursor of another account's
    # history, or of this account's audit trail, does not open as this account's history.
    return keyed_token(secret, f"cursor:{listing}:{user_uuid}:{payload}")
