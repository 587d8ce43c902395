"""The public documents every client may read and cache, as sent (SPEC §14): discovery under both its
well-known names, the JWKS and the Shared Signals configuration.

Each answer is made once per issuer and key ring: its bytes, a strong ETag (a digest of them, so every
process gives one document the same tag) and its headers. The JWKS and discovery's algorithms follow the
ring by its identity (common.keys.jwt_keys.JwtKeyRing.installed: a new mapping after every reload), so a request
costs a lookup, never a JSON encoding. A request whose If-None-Match names the tag (RFC 9110 §13.1.2) gets
304 Not Modified. The Flask routes (common.web.app_factory) serve these answers, and citylogin's gunicorn worker
answers a plain GET or HEAD of them from its event loop, without a thread or the WSGI app
(citylogin.server.gunicorn_worker)."""
from __future__ import annotations

import base64
import hashlib
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import orjson

from common.config import Settings
from common.keys.jwt_keys import ID_TOKEN_ALGORITHMS, SigningKey, jwk_set
from common.keys.ring_refresher import jwks_max_age
from common.runtime.context import AppContext
from oidc.discovery.metadata import provider_metadata

EXTENSION_KEY = "citylogin.static_answers"
DISCOVERY = "/.well-known/openid-configuration"
AUTHORIZATION_SERVER = "/.well-known/oauth-authorization-server"
JWKS = "/.well-known/jwks.json"
SSF_CONFIGURATION = "/.well-known/ssf-configuration"
PATHS = (DISCOVERY, AUTHORIZATION_SERVER, JWKS, SSF_CONFIGURATION)
PUSH_DELIVERY, POLL_DELIVERY = "urn:ietf:rfc:8935", "urn:ietf:rfc:8936"  # SSF delivery methods
ALLOW_ORIGIN = "Access-Control-Allow-Origin"

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text (a comma
# is an etagc: a list of tags is read tag by tag, never split at commas).
_ENTITY_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS = " \t"


@dataclass(frozen=True)
class StaticAnswer:
    body: bytes
    etag: str  # strong, quoted: '"<digest>"'
    headers: tuple[tuple[str, str], ...]  # of the 200, in the order sent (X-Request-ID follows)
    not_modified_headers: tuple[tuple[str, str], ...]  # of a 304: no Content-Type or Content-Length
    # An answer CITYLOGIN_CORS_ORIGINS applies to depends on the request's Origin: only Flask answers it.
    varies: bool = False

    @cached_property
    def lines(self) -> bytes:
        """The 200's headers as sent on the wire (citylogin.server.gunicorn_worker), each line ending in CRLF."""
        return _lines(self.headers)

    @cached_property
    def not_modified_lines(self) -> bytes:
        return _lines(self.not_modified_headers)

    def not_modified(self, if_none_match: list[str]) -> bool:
        """Whether the If-None-Match field lines `if_none_match` name this answer (RFC 9110 §13.1.2)."""
        return bool(if_none_match) and if_none_match_names(", ".join(if_none_match), self.etag[1:-1])


def _lines(headers: tuple[tuple[str, str], ...]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


ANY_TAG = "*"  # If-None-Match's `*`: any representation. Not a list: `"*"` is a tag whose opaque part is *.


def entity_tags(value: str) -> list[str] | str | None:
    """The opaque tags (without quotes or W/) of an If-None-Match value that is a list of entity tags
    (RFC 9110 §5.6.1: empty elements and whitespace around commas allowed); ANY_TAG for `*`; None if it is
    neither (such a field is ignored: the answer is sent whole)."""
    if value.strip(_OWS) == "*":
        return ANY_TAG
    tags: list[str] = []
    at, end = 0, len(value)
    while True:
        while at < end and value[at] in _OWS + ",":
            at += 1
        if at == end:
            return tags or None
        tag = _ENTITY_TAG.match(value, at)
        if tag is None:
            return None
        tags.append(tag.group(1))
        at = tag.end()
        while at < end and value[at] in _OWS:
            at += 1
        if at < end and value[at] != ",":
            return None


def if_none_match_names(value: str, opaque_tag: str) -> bool:
    """Whether If-None-Match `value` names the representation tagged `opaque_tag`: `*`, or one of its tags
    equal by the weak comparison (RFC 9110 §8.8.3.2: the opaque tags equal, W/ or not)."""
    tags = entity_tags(value)
    return tags == ANY_TAG or (isinstance(tags, list) and opaque_tag in tags)


def _answer(body: bytes, *, cache_control: str, every_origin: bool, varies: bool = False) -> StaticAnswer:
    etag = '"' + base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode() + '"'
    cors = ((ALLOW_ORIGIN, "*"),) if every_origin else ()
    caching = (("Cache-Control", cache_control), ("ETag", etag))
    return StaticAnswer(body=body, etag=etag, varies=varies,
                        headers=(("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                 *caching, *cors),
                        not_modified_headers=(*caching, *cors))


def _json(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document) + b"\n"  # as Flask's JSON (common.web.app_factory.AnswerJSON) writes an answer


class StaticAnswers:
    """One app's answers by path, made again when the key ring it was made from is reloaded."""

    def __init__(self, context: Callable[[], AppContext]) -> None:
        self._context = context
        self._made: tuple[object, dict[str, StaticAnswer]] | None = None
        self._lock = threading.Lock()

    def get(self, path: str) -> StaticAnswer | None:
        """The answer for `path` (one of PATHS) from the ring as now installed; raises what the
        context raises when it cannot make one (no public URL: ConfigError)."""
        ring = self._context().jwt.installed
        made = self._made
        if made is None or made[0] is not ring:
            with self._lock:  # one process makes them once per reload, not once per waiting thread
                made = self._made
                if made is None or made[0] is not ring:
                    made = self._made = (ring, self._make(ring))
        return made[1].get(path)

    def _make(self, ring: dict[str, SigningKey]) -> dict[str, StaticAnswer]:
        context = self._context()
        base = context.public_url().rstrip("/")
        held = {key.algorithm for key in ring.values()}
        metadata = _json(provider_metadata(base, id_token_algorithms=[a for a in ID_TOKEN_ALGORITHMS if a in held]))
        discovery = _answer(metadata, cache_control="public, max-age=300", every_origin=True)
        max_age = jwks_max_age(context.settings.key_ring_reload_seconds)  # shorter than a key's wait to sign
        return {DISCOVERY: discovery, AUTHORIZATION_SERVER: discovery,
                JWKS: _answer(_json(jwk_set(ring)), cache_control=f"public, max-age={max_age}", every_origin=True),
                SSF_CONFIGURATION: _answer(_json(_ssf_metadata(context.jwt.issuer, base, settings=context.settings)),
                                           cache_control="public, max-age=300", every_origin=False,
                                           varies=bool(context.settings.cors_origins))}


def _ssf_metadata(issuer: str, base: str, *, settings: Settings) -> dict[str, Any]:
    """The Shared Signals transmitter's metadata (SPEC §11): where apps poll for session-revoked
    events and which keys sign them; `citylogin_access_token_ttl` tells an app how long an
    ended session's tokens could still look valid, so how long to remember the end;
    `citylogin_oidc_issuer` is the `iss` of apps' OpenID Connect access tokens (SPEC §14)."""
    return {"spec_version": "1_0", "issuer": issuer, "jwks_uri": base + "/.well-known/jwks.json",
            "delivery_methods_supported": [PUSH_DELIVERY, POLL_DELIVERY],
            "poll_endpoint": base + "/ssf/poll", "configuration_endpoint": base + "/ssf/streams",
            "default_subjects": "ALL", "citylogin_access_token_ttl": settings.access_token_ttl,
            "citylogin_oidc_issuer": base}
