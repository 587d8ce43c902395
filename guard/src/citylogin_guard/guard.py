"""TokenGuard: is this request's citylogin access token valid, and its session still live? No web
framework here: the Flask helpers (flask_support) and the ASGI middleware (asgi) stand on it."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, Self, Sequence

from citylogin_guard.dpop import Proof as DpopProof
from citylogin_guard.ended import EndedGrants, EndedSessions
from citylogin_guard.errors import Code, Unauthorized, Unavailable
from citylogin_guard.feed import Feed
from citylogin_guard.introspection import IntrospectionCache
from citylogin_guard.jwks import KeySet
from citylogin_guard.nonces import DpopNonces
from citylogin_guard.proofs import ProofChecker, invalid_proof
from citylogin_guard.replay import ReplayStore
from citylogin_guard.tokens import access_token_claims, named_grant
from citylogin_guard.transport import (CALL_TIMEOUT, CredentialsRefused, NetworkNeeded, Transmitter,
                                       TransmitterUnreachable)

# Tokens already checked, kept so that the next request with one costs a dict lookup, not a
# signature check; each is still checked against its exp and the ended sessions every time.
MAX_ACCEPTED = 10_000

BEARER, DPOP = "bearer", "dpop"  # Authorization schemes, lowercased (RFC 9110 §11.1: case-insensitive)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid token speaks for: `claims` are the access token's (iss, aud, sub, sid, did,
    jti, iat, nbf, exp, and cnf for a token bound to a key), read-only."""

    user_uuid: str
    session_id: str
    device_id: str
    claims: Mapping[str, Any]


class TokenGuard:
    """Checks citylogin access tokens for an app's API. Starts a background poll of citylogin's
    session-revoked events at once; call close() (or use it as a context manager) to stop it."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, audience: str = "citylogin",
                 stale_after: float = 10.0, leeway: float = 10.0, public_urls: str | Sequence[str] = (),
                 replay_store: ReplayStore | None = None, dpop_nonce_secret: str | bytes | None = None,
                 require_dpop_nonce: bool = False, retry_after: int = 5,
                 call_timeout: float = CALL_TIMEOUT) -> None:
        """`leeway`: the clock difference tolerated between citylogin's hosts and this one (on exp,
        nbf and iat). `public_urls`: the app's public base URL(s), which DPoP proofs name (behind a
        proxy the app sees another scheme and host). `replay_store`: where spent DPoP proofs are
        remembered, shared by all the app's processes (default: this process's memory).
        `dpop_nonce_secret`: the secret (16 bytes or more) under which the guard makes its DPoP
        nonces, the same in all the app's processes (default: a random one, good for one process
        only); `require_dpop_nonce`: every proof must carry the current one, not only those whose
        iat is off this host's clock. `stale_after`: how long the feed's last answer is trusted;
        past it each token is introspected. `retry_after`: the seconds a 503 (`Unavailable`: citylogin
        unreachable, the token not judged) tells the client to wait. `call_timeout`: how long a request
        that must ask citylogin (introspection, its keys) waits for it to connect, and then for each read
        of its answer, before that request gets the 503 (0.5 s; the feed's long poll has its own)."""
        if retry_after < 1:
            raise ValueError("retry_after is a whole number of seconds, 1 or more")
        if not call_timeout > 0:
            raise ValueError("call_timeout is a number of seconds above 0")
        self.audience = audience
        self.stale_after = stale_after
        self.retry_after = retry_after
        self.leeway = leeway
        self.call_timeout = call_timeout
        self._transmitter = Transmitter(base_url, client_id, client_secret, call_timeout=call_timeout)
        self._keys = KeySet(self._transmitter.jwks)
        self._ended = EndedSessions()
        self._ended_grants = EndedGrants()
        self._introspection = IntrospectionCache(self._transmitter.introspect)
        self._proofs = ProofChecker(public_urls=[public_urls] if isinstance(public_urls, str) else public_urls,
                                    replay_store=replay_store, nonces=DpopNonces(dpop_nonce_secret),
                                    require_nonce=require_dpop_nonce)
        self._accepted: dict[str, tuple[Principal, float]] = {}
        self._accepting = threading.Lock()
        self._feed = Feed(self._transmitter, keys=self._keys, ended=self._ended, client_id=client_id,
                          stale_after=stale_after, skew=leeway, ended_grants=self._ended_grants)
        self._feed.start()

    def verify(self, authorization: str | None, *, dpop: str | None = None, method: str | None = None,
               url: str | None = None) -> Principal:
        """The principal of a request's `Authorization` header value, or Unauthorized (its subclass
        Unavailable when citylogin cannot be reached and nothing known refuses the token). A token bound
        to a key (DPoP, SPEC §12) needs the request's `DPoP` header, its `method` and its `url` (as
        the app sees it; query and fragment are ignored)."""
        return self.check(authorization, may_block=True, dpop=dpop, method=method, url=url)

    def check(self, authorization: str | None, *, may_block: bool, dpop: str | None = None,
              method: str | None = None, url: str | None = None) -> Principal:
        """verify(); with may_block=False raises NetworkNeeded instead of calling citylogin or an
        app's own replay store (for an event loop, which then calls again from a thread). A DPoP
        proof is spent last, when nothing else refuses the request."""
        scheme, token = _credentials(authorization)
        principal = self._principal(token, may_block=may_block)
        proof = self._bound_proof(principal, scheme=scheme, token=token, dpop=dpop, method=method, url=url)
        self._refuse_ended(principal)
        if not self.heard() or self._issued_before_listening(principal):
            self._introspect(token, principal, proof, may_block=may_block)
        if proof is not None:
            if not (may_block or self._proofs.spends_in_process):
                raise NetworkNeeded()
            self._proofs.spend(proof, expires_at=principal.claims["exp"] + self.leeway)
        return principal

    def _refuse_ended(self, principal: Principal) -> None:
        """session_revoked if the feed said the token's session ended, or the app's grant on it that
        the token was issued from (a new sign-in of the app on that session is another grant)."""
        ended, reason = self._ended.reason(principal.session_id)
        if ended:
            raise Unauthorized(Code.SESSION_REVOKED, "The session has ended.", reason=reason)
        grant_id = named_grant(principal.claims)
        ended, reason = self._ended_grants.reason(grant_id) if grant_id else (False, None)
        if ended:
            raise Unauthorized(Code.SESSION_REVOKED, "The app's sign-in on this session has ended.", reason=reason)

    def dpop_nonce(self) -> str:
        """The guard's current DPoP nonce, for a `DPoP-Nonce` header (RFC 9449 §8.2): the Flask and
        ASGI helpers send it with every answer to a request that carried a proof."""
        return self._proofs.nonces.current()

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

    @property
    def ended_grants(self) -> EndedGrants:
        return self._ended_grants

    def close(self) -> None:
        """Stops the background poll (at once, a held long poll included) and the HTTP clients."""
        self._feed.close()
        self._transmitter.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            claims = access_token_claims(token, keys=self._keys, issuer=metadata.token_issuers, audience=self.audience,
                                         leeway=self.leeway, may_block=may_block)
        except TransmitterUnreachable:
            raise Unavailable("citylogin cannot be reached to check the token.", retry_after=self.retry_after) \
                from None
        principal = Principal(user_uuid=claims["sub"], session_id=claims["sid"], device_id=claims["did"],
                              claims=MappingProxyType(claims))
        with self._accepting:
            if len(self._accepted) >= MAX_ACCEPTED:
                for old in list(self._accepted)[: MAX_ACCEPTED // 2]:
                    del self._accepted[old]
            self._accepted[token] = (principal, claims["exp"] + self.leeway)
        return principal

    def _bound_proof(self, principal: Principal, *, scheme: str, token: str, dpop: str | None,
                     method: str | None, url: str | None) -> DpopProof | None:
        """The checked proof a bound token needs (None for a bearer token): invalid_dpop_proof if a
        bound token comes any other way, invalid_token if the DPoP scheme carries an unbound one."""
        jkt = _bound_key(principal.claims)
        if scheme == DPOP and jkt is None:
            raise Unauthorized(Code.INVALID_TOKEN, "This access token is not bound to a key: send it as Bearer.")
        if jkt is None:
            return None
        if scheme != DPOP:
            raise invalid_proof("a bound access token goes as Authorization: DPoP, with a DPoP proof")
        return self._proofs.checked(dpop, access_token=token, jkt=jkt, method=method, url=url)

    def _introspect(self, token: str, principal: Principal, proof: DpopProof | None, *, may_block: bool) -> None:
        answer = self._introspection.cached(token)
        if answer is None:
            if not may_block:
                raise NetworkNeeded()
            try:
                answer = self._introspection.answer(token, expires_at=principal.claims["exp"] + self.leeway)
            except CredentialsRefused:
                # citylogin is up and refuses the app itself: no retry mends that, so no 503 says to
                # retry. A removed app's tokens are refused everywhere else too (SPEC §14).
                raise Unauthorized(Code.INVALID_TOKEN, "citylogin refuses this app's credentials (the app was "
                                   "removed, or its secret replaced): no token can be accepted.") from None
            except TransmitterUnreachable:
                raise Unavailable("citylogin cannot be reached to check the session.",
                                  retry_after=self.retry_after) from None
        if not answer.active:
            raise Unauthorized(Code.SESSION_REVOKED, "citylogin says the session is not active.")
        # citylogin's word on the binding: the proof checked above must be by the key it names
        if answer.jkt != (proof.jkt if proof else None):
            raise invalid_proof("citylogin says the token is bound to another key")


def _credentials(authorization: str | None) -> tuple[str, str]:
    """(scheme, token) of an Authorization header: Bearer, or DPoP (RFC 9449 §7.1)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in (BEARER, DPOP) or not token:
        raise Unauthorized(Code.INVALID_TOKEN, "An Authorization: Bearer (or DPoP) <access token> header is required.")
    return scheme, token


def _bound_key(claims: Mapping[str, Any]) -> str | None:
    """The `cnf.jkt` a token is bound to, None if it is not bound; invalid_token for a binding the
    guard cannot check (it must never pass as a bearer token)."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not (isinstance(jkt, str) and jkt.isascii() and jkt):
        raise Unauthorized(Code.INVALID_TOKEN, "The access token is bound (cnf) in a way the guard cannot check.")
    return jkt
