"""Protection by pushed security events: citylogin POSTs a CAEP session-revoked SET (RFC 8417) to
POST /ssf/push for every session end (RFC 8935, the app added with `--push-url`). The receiver
verifies it with citylogin's JWKS (typ secevent+jwt, iss, aud = this app's client_id), remembers the
ended session as long as its tokens could still look valid, and answers 202. Each API request's
access token is checked here, with no call to citylogin: signature, typ at+jwt, iss, aud, exp, and
its session (`sid`) against the ended ones."""
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar, cast

import jwt
import requests
from citylogin_guard import Unauthorized as GuardRefusal
from citylogin_guard.proofs import ProofChecker
from flask import Flask, Response, g, jsonify, request

from refusals import Principal, Unauthorized, Unavailable, refusal_response

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
SET_MEDIA_TYPE = "application/secevent+jwt"

View = TypeVar("View", bound=Callable[..., Any])


class Unreachable(Exception):
    """citylogin's metadata or keys could not be fetched."""


class InvalidKey(Exception):
    """A SET signed by a key citylogin does not publish, or not signed by the key it names."""


@dataclass(frozen=True)
class Metadata:
    issuer: str
    access_token_ttl: float      # how long an ended session's tokens may still look valid
    keys: jwt.PyJWKClient        # fetched again on an unknown kid (a key rotation)


class Transmitter:
    """citylogin's Shared Signals metadata (GET /.well-known/ssf-configuration), read on first need
    so that the app may start before citylogin."""

    def __init__(self, citylogin_url: str) -> None:
        self._url = citylogin_url.rstrip("/") + "/.well-known/ssf-configuration"
        self._metadata: Metadata | None = None
        self._lock = threading.Lock()

    def metadata(self) -> Metadata:
        with self._lock:
            if self._metadata is None:
                try:
                    response = requests.get(self._url, timeout=5)
                    response.raise_for_status()
                    body = response.json()
                except (requests.RequestException, ValueError) as error:
                    raise Unreachable(f"{self._url}: {error}") from None
                self._metadata = Metadata(issuer=body["issuer"],
                                          access_token_ttl=float(body["citylogin_access_token_ttl"]),
                                          keys=jwt.PyJWKClient(body["jwks_uri"], lifespan=300, timeout=5))
            return self._metadata

    def key_of(self, token: str) -> jwt.PyJWK:
        """The published key that `token`'s header names."""
        try:
            return self.metadata().keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise Unreachable(str(error)) from None
        except jwt.PyJWKClientError as error:
            raise InvalidKey(str(error)) from None


class EndedSessions:
    """The session ids whose end was pushed, each kept while a token of it could still be valid, and
    the SETs' jtis as long: delivery is at least once, so a SET that comes again counts once."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[str | None, float]] = {}
        self._jtis: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, *, jti: str, session_id: str, reason: str | None, keep_for: float) -> bool:
        """Whether this SET was news (False: its jti came before)."""
        now = time.monotonic()
        with self._lock:
            self._sessions = {sid: kept for sid, kept in self._sessions.items() if kept[1] > now}
            self._jtis = {seen: until for seen, until in self._jtis.items() if until > now}
            if jti in self._jtis:
                return False
            self._jtis[jti] = self._sessions.setdefault(session_id, (reason, now + keep_for))[1]
            return True

    def ended(self, session_id: str) -> tuple[bool, str | None]:
        """(whether the session has ended, its reason)."""
        with self._lock:
            kept = self._sessions.get(session_id)
        return (kept is not None and kept[1] > time.monotonic()), (kept[0] if kept else None)


class PushReceiver:
    """The same interface as citylogin_guard.Guard's Flask helpers (init_app, @required, g.citylogin),
    fed by pushed events instead of a poll."""

    def __init__(self, citylogin_url: str, client_id: str, *, audience: str = "citylogin",
                 leeway: float = 10.0) -> None:
        self.client_id, self.audience, self.leeway = client_id, audience, leeway
        self.transmitter = Transmitter(citylogin_url)
        self.ended_sessions = EndedSessions()
        self.proofs = ProofChecker()  # per process; several processes need a shared ReplayStore

    def init_app(self, app: Flask) -> None:
        app.add_url_rule("/ssf/push", "ssf_push", self.receive, methods=["POST"])
        app.register_error_handler(Unauthorized, refusal_response)

    def required(self, view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.citylogin = self.verify(request.headers.get("Authorization"), dpop=request.headers.get("DPoP"),
                                      method=request.method, url=request.url)
            return view(*args, **kwargs)
        return cast(View, guarded)

    def close(self) -> None:
        """Nothing runs in the background: citylogin calls in."""

    def receive(self) -> Response | tuple[Response, int]:
        """POST /ssf/push: one SET → 202, or RFC 8935 §2.4's 400 {"err", "description"}; 503 when
        citylogin's keys cannot be fetched, so that citylogin delivers it again later."""
        if request.mimetype != SET_MEDIA_TYPE:
            return push_error("invalid_request", f"The body must be one SET, as {SET_MEDIA_TYPE}.")
        token = request.get_data(as_text=True).strip()
        try:
            claims = self._set_claims(token)
        except Unreachable:
            return jsonify(err="temporarily_unavailable", description="citylogin's keys cannot be fetched."), 503
        except InvalidKey:
            return push_error("invalid_key", "The SET is not signed by a key citylogin publishes.")
        except jwt.InvalidTokenError as error:
            return push_error("invalid_request", f"Not a SET for this app: {error}")
        if not isinstance(claims["events"], dict):
            return push_error("invalid_request", "The SET's events are not an object.")
        event = claims["events"].get(SESSION_REVOKED)
        if event is not None:
            ended = _ended_session(event)
            if ended is None:
                return push_error("invalid_request", "A session-revoked event without its session id.")
            self.ended_sessions.record(jti=str(claims["jti"]), session_id=ended[0], reason=ended[1],
                                       keep_for=self.transmitter.metadata().access_token_ttl + self.leeway)
        return Response(status=202)    # RFC 8935 §2.2; events of other types are not this app's business

    def verify(self, authorization: str | None, *, dpop: str | None = None, method: str | None = None,
               url: str | None = None) -> Principal:
        """The principal of a live session's access token, or Unauthorized. A token bound to its
        device's key (`cnf`, DPoP) counts only as `DPoP` with a proof over this request, checked and
        spent as citylogin_guard does."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() not in ("bearer", "dpop") or not token.strip():
            raise Unauthorized("invalid_token", "An Authorization: Bearer or DPoP <access token> header is required.")
        try:
            claims = self._access_token_claims(token.strip())
        except Unreachable:
            raise Unavailable("citylogin cannot be reached to check the token.") from None
        proof = self._bound_proof(claims, scheme=scheme.lower(), token=token.strip(), dpop=dpop, method=method,
                                  url=url)
        ended, reason = self.ended_sessions.ended(claims["sid"])
        if ended:
            raise Unauthorized("session_revoked", "The session has ended.", reason=reason)
        if proof is not None:
            self._spend(proof)
        return Principal(user_uuid=claims["sub"], session_id=claims["sid"], device_id=claims["did"])

    def _bound_proof(self, claims: dict[str, Any], *, scheme: str, token: str, dpop: str | None,
                     method: str | None, url: str | None) -> Any:
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str):
            if scheme == "dpop" or cnf is not None:
                raise Unauthorized("invalid_token", "The access token is not valid.")
            return None
        if scheme != "dpop":
            raise Unauthorized("invalid_dpop_proof", "A bound access token goes as Authorization: DPoP.")
        try:
            return self.proofs.checked(dpop, access_token=token, jkt=jkt, method=method, url=url)
        except GuardRefusal as refusal:  # invalid_dpop_proof, or use_dpop_nonce with the guard's nonce
            raise Unauthorized(refusal.code.value, refusal.detail, dpop_nonce=refusal.dpop_nonce) from None

    def _spend(self, proof: Any) -> None:
        try:
            self.proofs.spend(proof)
        except GuardRefusal as refusal:
            raise Unauthorized("invalid_dpop_proof", refusal.detail) from None

    def _set_claims(self, token: str) -> dict[str, Any]:
        if jwt.get_unverified_header(token).get("typ") != "secevent+jwt":
            raise jwt.InvalidTokenError("typ is not secevent+jwt")
        key = self.transmitter.key_of(token)
        try:
            return jwt.decode(token, key.key, algorithms=["EdDSA"], audience=self.client_id,
                              issuer=self.transmitter.metadata().issuer, leeway=self.leeway,
                              options={"require": ["iss", "aud", "jti", "iat", "events"]})
        except jwt.InvalidSignatureError:
            raise InvalidKey("bad signature") from None

    def _access_token_claims(self, token: str) -> dict[str, Any]:
        try:
            if jwt.get_unverified_header(token).get("typ") != "at+jwt":
                raise jwt.InvalidTokenError("typ is not at+jwt")
            claims = jwt.decode(token, self.transmitter.key_of(token).key, algorithms=["EdDSA"],
                                audience=self.audience, issuer=self.transmitter.metadata().issuer,
                                leeway=self.leeway, options={"require": ["exp", "iat", "sub", "sid", "did"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token_expired", "The access token has expired.") from None
        except (jwt.InvalidTokenError, InvalidKey):
            raise Unauthorized("invalid_token", "The access token is not valid.") from None
        if not all(isinstance(claims[name], str) for name in ("sub", "sid", "did")):
            raise Unauthorized("invalid_token", "The access token is not valid.")
        return claims


def _ended_session(event: Any) -> tuple[str, str | None] | None:
    """(session id, reason) of a CAEP session-revoked event, or None if it names no session."""
    subject = event.get("subject") if isinstance(event, dict) else None
    session = subject.get("session") if isinstance(subject, dict) else None
    session_id = session.get("id") if isinstance(session, dict) else None
    if not isinstance(session_id, str) or not session_id:
        return None
    reason = event.get("reason_admin")
    return session_id, (reason.get("en") if isinstance(reason, dict) else None)


def push_error(err: str, description: str) -> tuple[Response, int]:
    return jsonify(err=err, description=description), 400
