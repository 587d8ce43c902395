"""The local checks of a JWT from citylogin: an access token (RFC 9068) or a Security Event Token
(RFC 8417), each signed by a key of the transmitter's JWKS with EdDSA and nothing else."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import jwt

from citylogin_guard.errors import Code, Unauthorized
from citylogin_guard.jwks import KeySet

ALGORITHMS = ["EdDSA"]
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}
SECURITY_EVENT_TYPES = {"secevent+jwt", "application/secevent+jwt"}
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
# citylogin's own claim of a session-revoked event: not the session ended, but this app's grant on it (its
# sign-in through OpenID Connect). Only the access tokens issued from that grant are refused.
GRANT_CLAIM = "citylogin_grant_id"
# An app grant's id, and the jti of an access token issued from it, `<grant_id>.<generation>`, as citylogin
# forms them (oidc.app_grants.ending on the server): matched whole, never split.
_GRANT_ID = re.compile(r"[0-9a-f]{16,32}")
_TOKEN_ID = re.compile(r"([0-9a-f]{16,32})\.(?:0|[1-9][0-9]{0,8})")  # the generation as str(int) writes it
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_LENGTH = 16384


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """One CAEP session-revoked event: the session's end or, when it names `grant_id`, the end of the
    app's grant on the session."""

    session_id: str
    event_timestamp: float
    reason: str | None
    grant_id: str | None = None


class InvalidSecurityEvent(Exception):
    """A SET the guard cannot trust or read."""


def access_token_claims(token: str, *, keys: KeySet, issuer: str | Sequence[str], audience: str, leeway: float,
                        may_block: bool) -> dict[str, Any]:
    """The claims of a valid access token; else Unauthorized (invalid_token or token_expired). A
    token bound to a key (`cnf`) is the caller's to check with its DPoP proof."""
    try:
        key = _signing_key(token, keys=keys, types=ACCESS_TOKEN_TYPES, may_block=may_block)
        claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=audience, issuer=issuer, leeway=leeway,
                            options={"require": ["iss", "aud", "sub", "sid", "did", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized(Code.TOKEN_EXPIRED, "The access token has expired.") from None
    except (jwt.InvalidTokenError, _Untrusted) as error:
        raise Unauthorized(Code.INVALID_TOKEN, f"The access token is not valid: {error}") from None
    if not all(isinstance(claims[name], str) and claims[name] for name in ("sub", "sid", "did")):
        raise Unauthorized(Code.INVALID_TOKEN, "The access token's sub, sid and did must be strings.")
    if not all(type(claims[name]) in (int, float) for name in ("iat", "exp")):  # bool is an int, not a time
        raise Unauthorized(Code.INVALID_TOKEN, "The access token's iat and exp must be numbers.")
    return claims


def sessions_ended(token: str, *, keys: KeySet, issuer: str, client_id: str, leeway: float) -> list[SessionEnded]:
    """The session-revoked events of a valid SET addressed to `client_id`; other event types are
    skipped (RFC 8417 §2.2). InvalidSecurityEvent if it cannot be trusted or read."""
    try:
        key = _signing_key(token, keys=keys, types=SECURITY_EVENT_TYPES, may_block=True)
        claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=client_id, issuer=issuer, leeway=leeway,
                            options={"require": ["iss", "aud", "jti", "iat"]})
    except (jwt.InvalidTokenError, _Untrusted) as error:
        raise InvalidSecurityEvent(str(error)) from None
    events = claims.get("events")
    if not isinstance(events, dict):
        raise InvalidSecurityEvent("no events claim")
    revoked = events.get(SESSION_REVOKED)
    return [] if revoked is None else [_session_ended(revoked)]


def _session_ended(event: Any) -> SessionEnded:
    try:
        session_id = event["subject"]["session"]["id"]
        timestamp = event["event_timestamp"]
        reason = (event.get("reason_admin") or {}).get("en")
        grant_id = event.get(GRANT_CLAIM)
    except (KeyError, TypeError, AttributeError):
        raise InvalidSecurityEvent("a session-revoked event without subject.session.id or event_timestamp") from None
    if not isinstance(session_id, str) or isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise InvalidSecurityEvent("a session-revoked event with a malformed session id or timestamp")
    # A grant the guard cannot read must not pass for the session's end, nor be skipped.
    if grant_id is not None and not (isinstance(grant_id, str) and _GRANT_ID.fullmatch(grant_id)):
        raise InvalidSecurityEvent(f"a session-revoked event with a malformed {GRANT_CLAIM}")
    return SessionEnded(session_id, float(timestamp), reason if isinstance(reason, str) else None, grant_id)


def named_grant(claims: Mapping[str, Any]) -> str | None:
    """The app grant an access token was issued from: its jti is `<grant_id>.<generation>` for a token
    citylogin gave an app through OpenID Connect; None for one that names no grant."""
    jti = claims.get("jti")
    named = _TOKEN_ID.fullmatch(jti) if isinstance(jti, str) else None
    return named.group(1) if named else None


class _Untrusted(Exception):
    """The header names no key of ours, another algorithm, or the wrong type."""


def one_spelling(token: object) -> bool:
    """Whether `token` is a compact JWS spelled the one way its bytes are (RFC 7515 §2: base64url, no
    padding): PyJWT forgives '=', '+', '/' and unused low bits, which would give one token many spellings."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or _COMPACT_JWS.fullmatch(token) is None:
        return False
    return all(_canonical_part(part) for part in token.split("."))


def _canonical_part(part: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == part


def _signing_key(token: str, *, keys: KeySet, types: set[str], may_block: bool) -> Any:
    if not one_spelling(token):
        raise _Untrusted("not a JWT in its one spelling (base64url without padding)")
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in ALGORITHMS:
        raise _Untrusted("the algorithm must be EdDSA")
    if str(header.get("typ", "")).lower() not in types:
        raise _Untrusted(f"the type must be {min(types, key=len)}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise _Untrusted("no kid")
    key = keys.key(kid, may_block=may_block)
    if key is None:
        raise _Untrusted("signed by a key citylogin does not publish")
    return key
