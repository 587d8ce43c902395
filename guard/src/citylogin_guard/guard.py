"""Guard: is this request's citylogin access token valid, and its session still live?"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

from citylogin_guard.ended import EndedSessions
from citylogin_guard.errors import Code, Unauthorized
from citylogin_guard.feed import Feed
from citylogin_guard.introspection import IntrospectionCache
from citylogin_guard.jwks import KeySet
from citylogin_guard.tokens import access_token_claims
from citylogin_guard.transport import NetworkNeeded, Transmitter, TransmitterUnreachable

if TYPE_CHECKING:
    from flask import Flask

# Tokens already checked, kept so that the next request with one costs a dict lookup, not a
# signature check; each is still checked against its exp and the ended sessions every time.
MAX_ACCEPTED = 10_000

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token speaks for: `claims` are the access token's (iss, aud, sub, sid, did,
    jti, iat, nbf, exp), read-only."""

    user_uuid: str
    session_id: str
    device_id: str
    claims: Mapping[str, Any]


class Guard:
    """Checks citylogin access tokens for an app's API. Starts a background poll of citylogin's
    session-revoked events at once; call close() (or use it as a context manager) to stop it."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, audience: str = "citylogin",
                 stale_after: float = 10.0, leeway: float = 10.0) -> None:
        """`leeway`: the clock difference tolerated between citylogin's hosts and this one (on exp,
        nbf and iat)."""
        self.audience = audience
        self.stale_after = stale_after
        self.leeway = leeway
        self._transmitter = Transmitter(base_url, client_id, client_secret)
        self._keys = KeySet(self._transmitter.jwks)
        self._ended = EndedSessions()
        self._introspection = IntrospectionCache(self._transmitter.introspect)
        self._accepted: dict[str, tuple[Principal, float]] = {}
        self._accepting = threading.Lock()
        self._feed = Feed(self._transmitter, keys=self._keys, ended=self._ended, client_id=client_id,
                          stale_after=stale_after, skew=leeway)
        self._feed.start()

    def verify(self, authorization: str | None, *, dpop: str | None = None, method: str | None = None,
               url: str | None = None) -> Principal:
        """The principal of a request's `Authorization` header value, or Unauthorized. `dpop`,
        `method` and `url` are for tokens bound to a key (DPoP, SPEC §12), which are refused as
        invalid_dpop_proof until the guard checks their proofs (issue 19)."""
        return self.check(authorization, may_block=True)

    def check(self, authorization: str | None, *, may_block: bool) -> Principal:
        """verify(); with may_block=False raises NetworkNeeded instead of calling citylogin (for
        an event loop, which then calls again from a thread)."""
        token = _bearer_token(authorization)
        principal = self._principal(token, may_block=may_block)
        ended, reason = self._ended.reason(principal.session_id)
        if ended:
            raise Unauthorized(Code.SESSION_REVOKED, "The session has ended.", reason=reason)
        if not self.heard() or self._issued_before_listening(principal):
            self._introspect(token, may_block=may_block)
        return principal

    def heard(self) -> bool:
        """Whether the event feed answered within the last `stale_after` seconds."""
        heard_at = self._feed.heard_at
        return heard_at is not None and time.monotonic() - heard_at <= self.stale_after

    def _issued_before_listening(self, principal: Principal) -> bool:
        """A token issued before this guard first heard the feed may belong to a session whose end
        an earlier process acknowledged: the feed will never tell, so citylogin is asked. Once the
        longest-lived of these has expired, only the feed is."""
        since = self._feed.listening_since
        return since is None or principal.claims["iat"] <= since + self.leeway

    @property
    def ended_sessions(self) -> EndedSessions:
        return self._ended

    def close(self) -> None:
        """Stops the background poll (at once, a held long poll included) and the HTTP clients."""
        self._feed.close()
        self._transmitter.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init_app(self, app: Flask) -> None:
        """Renders Unauthorized as 401 problem+json in `app`, and keeps the guard in app.extensions."""
        from citylogin_guard.flask_support import init_app
        init_app(self, app)

    def required(self, view: View) -> View:
        """Flask view decorator: refuses the request with 401 unless verify() passes; the principal
        is in `flask.g.citylogin`."""
        from citylogin_guard.flask_support import required
        return required(self, view)

    def _principal(self, token: str, *, may_block: bool) -> Principal:
        accepted = self._accepted.get(token)
        if accepted is not None:
            principal, expires_at = accepted
            if time.time() <= expires_at:
                return principal
            self._accepted.pop(token, None)
            raise Unauthorized(Code.TOKEN_EXPIRED, "The access token has expired.")
        try:
            metadata = self._transmitter.metadata(may_block=may_block)
            claims = access_token_claims(token, keys=self._keys, issuer=metadata.issuer, audience=self.audience,
                                         leeway=self.leeway, may_block=may_block)
        except TransmitterUnreachable:
            raise Unauthorized(Code.SESSION_UNVERIFIABLE, "citylogin cannot be reached to check the token.") \
                from None
        principal = Principal(user_uuid=claims["sub"], session_id=claims["sid"], device_id=claims["did"],
                              claims=MappingProxyType(claims))
        with self._accepting:
            if len(self._accepted) >= MAX_ACCEPTED:
                for old in list(self._accepted)[: MAX_ACCEPTED // 2]:
                    del self._accepted[old]
            self._accepted[token] = (principal, claims["exp"] + self.leeway)
        return principal

    def _introspect(self, token: str, *, may_block: bool) -> None:
        active = self._introspection.cached(token)
        if active is None:
            if not may_block:
                raise NetworkNeeded()
            try:
                active = self._introspection.active(token)
            except TransmitterUnreachable:
                raise Unauthorized(Code.SESSION_UNVERIFIABLE,
                                   "citylogin cannot be reached to check the session.") from None
        if not active:
            raise Unauthorized(Code.SESSION_REVOKED, "citylogin says the session is not active.")


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme == "dpop":
        raise Unauthorized(Code.INVALID_DPOP_PROOF, "Tokens bound to a key (DPoP) are not accepted here yet.")
    if scheme != "bearer" or not token:
        raise Unauthorized(Code.INVALID_TOKEN, "An Authorization: Bearer <access token> header is required.")
    return token
