"""How an authorization response reaches the app (SPEC §14): in the redirect URI's query (`query`, the
default), or, for `response_mode=form_post` (OAuth 2.0 Form Post Response Mode), as fields the browser
POSTs to the redirect URI from an auto-submitting page (oidc.core.pages), so that the code stays out of every
address, history and log.

The web UI finishes a request by fetch, and its page may post forms to its own origin only (its CSP's
`form-action 'self'`). For form_post it gets the response sealed — AES-GCM under a key derived from the
key ring's newest refresh secret, as a code is (oidc.token.codes) — and posts it to /oidc/authorize/respond,
which answers the page. Sealed, only a response citylogin made ever reaches an app that way, and
nobody on the way reads or alters it; it lives as long as a code."""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from authlib.common.urls import add_params_to_uri
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.keys.ring_reader import RefreshSecrets

QUERY, FORM_POST = "query", "form_post"
RESPONSE_MODES = (QUERY, FORM_POST)
FIELDS = frozenset({"code", "state", "iss", "error", "error_description"})  # what a response may carry
RESPONSE_TTL = 60  # seconds, as a code (oidc.token.codes.CODE_TTL)
MAX_SEALED_LENGTH = 16384  # a response's fields are each within request_checks.MAX_VALUE_LENGTH
_INFO = b"citylogin oidc form_post response v1"
_NONCE_BYTES = 12
_SEALED = re.compile(r"(?P<kid>[A-Za-z0-9-]{1,64})\.(?P<payload>[A-Za-z0-9_-]{40,16000})")


@dataclass(frozen=True)
class AuthorizationResponse:
    """An authorization response: the app's redirect URI as it was sent, and the fields for it."""

    redirect_uri: str
    fields: tuple[tuple[str, str], ...]
    form_post: bool = False

    def location(self) -> str:
        """The redirect URI with the fields in its query (the `query` response mode)."""
        return add_params_to_uri(self.redirect_uri, list(self.fields))


def form_post_asked(params: Mapping[str, str]) -> bool:
    """Whether a request asked for form_post, to a redirect URI a browser can POST to (an http or https
    one: Authlib's rule, and a native app's own scheme takes no POST)."""
    return params.get("response_mode") == FORM_POST and \
        urlsplit(params.get("redirect_uri") or "").scheme in ("http", "https")


def response_to(params: Mapping[str, str], fields: list[tuple[str, str]]) -> AuthorizationResponse:
    """The response to a request (its redirect_uri and response_mode) with `fields`."""
    return AuthorizationResponse(redirect_uri=params["redirect_uri"], fields=tuple(fields),
                                 form_post=form_post_asked(params))


def response_at(params: Mapping[str, str], location: str) -> AuthorizationResponse:
    """The response Authlib made as a redirect to `location`: the fields it added after the redirect
    URI's own query (authlib.common.urls.add_params_to_uri keeps those first)."""
    own = parse_qsl(urlsplit(params["redirect_uri"]).query, keep_blank_values=True)
    added = parse_qsl(urlsplit(location).query, keep_blank_values=True)[len(own):]
    return response_to(params, added)


def seal(ring: RefreshSecrets, response: AuthorizationResponse, *, now: int) -> str:
    """The response as the web UI carries it to /oidc/authorize/respond: `<kid>.<nonce and ciphertext>`."""
    kid = ring.newest_kid()
    secret = ring.get(kid)
    assert secret is not None  # the newest kid is in the ring
    body = json.dumps({"to": response.redirect_uri, "fields": response.fields, "exp": now + RESPONSE_TTL},
                      separators=(",", ":")).encode()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = nonce + AESGCM(_key(secret)).encrypt(nonce, body, kid.encode())
    return f"{kid}.{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}"


def opened(ring: RefreshSecrets, text: object, *, now: int) -> AuthorizationResponse | None:
    """The form_post response a text seals, while it lives; None for anything else (not ours, altered,
    expired, or under a secret the ring no longer holds)."""
    matched = _SEALED.fullmatch(text) if isinstance(text, str) and len(text) <= MAX_SEALED_LENGTH else None
    secret = ring.get(matched.group("kid")) if matched else None
    if matched is None or secret is None:
        return None
    try:
        payload = matched.group("payload")
        sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        body = json.loads(AESGCM(_key(secret)).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:],
                                                       matched.group("kid").encode()))
    except (binascii.Error, ValueError, InvalidTag):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("exp"), int) or body["exp"] <= now:
        return None
    fields = tuple((str(name), str(value)) for name, value in body["fields"] if name in FIELDS)
    return AuthorizationResponse(redirect_uri=str(body["to"]), fields=fields, form_post=True)


def _key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
