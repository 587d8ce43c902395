"""Authorization codes, sealed (SPEC §14): a code is its own record (oidc.core.models.Code: the client, the
redirect URI, the PKCE challenge, the session, the person's ID-token claims, its end), encrypted and
authenticated with AES-GCM under a key derived from the key ring's newest refresh secret, so that giving
one writes nothing and redeeming one reads nothing: `<kid>.<nonce and ciphertext, base64url>`. Nobody
who sees it (the browser, a log) can read or alter what it says.

It is single-use through the authorization request it finished: the redemption's one transaction writes
the app's grant row on the session (oidc.core.store.GrantStore.redeem_item) and the request's redemption mark,
naming that session (RequestStore.redeem_item), only if no redemption of a code of the request came
before. A second redemption (of this code, or of another code of the same request, finished on this
session or by another browser on another one) is refused by the mark: a replay, which revokes what the
first gave (RFC 6749 §4.1.2). It lives CODE_TTL seconds (its end is sealed in it)."""
from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from dataclasses import fields
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oidc.core.models import Code
from common.keys.ring_reader import RefreshSecrets

CODE_TTL = 60  # seconds (SPEC §14)
_INFO = b"citylogin oidc authorization code v1"
_NONCE_BYTES = 12
MAX_CODE_LENGTH = 4096
_TEXT = re.compile(r"(?P<kid>[A-Za-z0-9-]{1,64})\.(?P<payload>[A-Za-z0-9_-]{40,4000})")
_FIELDS = tuple(f.name for f in fields(Code))


def seal(ring: RefreshSecrets, code: Code, *, now: int) -> str:
    """The code's text: `code` (with its request's digest) until now + CODE_TTL, under the newest secret."""
    kid = ring.newest_kid()
    secret = ring.get(kid)
    assert secret is not None  # the newest kid is in the ring
    # The fields as they are (json.dumps reads the lists and dicts in them): asdict()'s deep copy of
    # each was most of a seal's time, for the same text.
    values = {name: value for name in _FIELDS if (value := getattr(code, name)) is not None}
    body = json.dumps({**values, "exp": now + CODE_TTL}, separators=(",", ":")).encode()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = nonce + _aead(secret).encrypt(nonce, body, kid.encode())
    return f"{kid}.{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"


def opened(ring: RefreshSecrets, text: object, *, now: int) -> Code | None:
    """The code a text seals, while it lives; None for anything else (not ours, altered, expired, or
    under a secret the ring no longer holds)."""
    matched = _TEXT.fullmatch(text) if isinstance(text, str) and len(text) <= MAX_CODE_LENGTH else None
    if matched is None:  # one spelling only: base64's decoder would skip other characters
        return None
    kid, payload = matched.group("kid"), matched.group("payload")
    secret = ring.get(kid)
    if secret is None:
        return None
    try:
        sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        if base64.urlsafe_b64encode(sealed).decode().rstrip("=") != payload:
            return None  # unused low bits set in the last character: another spelling of the same bytes
        body = _aead(secret).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], kid.encode())
        data: dict[str, Any] = json.loads(body)
    except (binascii.Error, ValueError, InvalidTag):
        return None
    if not isinstance(data.get("exp"), int) or data["exp"] <= now:
        return None
    data.setdefault("issued_ms", (data["exp"] - CODE_TTL) * 1000)  # sealed by an earlier release
    try:
        return Code(**{k: v for k, v in data.items() if k in Code.__dataclass_fields__})
    except TypeError:  # a field missing: not a code this release can redeem
        return None


@functools.lru_cache(maxsize=16)
def _aead(secret: bytes) -> AESGCM:
    """The AES-GCM key a refresh secret gives codes (HKDF), derived once per secret, not per code."""
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret))
