"""Sign in with citylogin by OpenID Connect (NOTES_PROTECTION=oidc): the notes server is a confidential
client of citylogin's OpenID Provider, through Authlib's Flask client as any Flask app would use it
(discovery, the code flow with PKCE, the ID token checked against citylogin's keys, refresh).

The browser holds only a cookie that names its sign-in; the tokens stay on this server. "Log out" ends
the citylogin session too (RP-Initiated Logout, the ID token as the hint, the device key as the proof)
and comes back here. When the
citylogin session ends (another device took the seat, a logout, an operator), citylogin POSTs a logout
token to /signin/backchannel-logout (OpenID Connect Back-Channel Logout): the sign-ins of that session
end here at once, and the browser's next request is refused. An access token that expired is refreshed
first; a refresh citylogin refuses ends the sign-in too."""
from __future__ import annotations

import secrets
import threading
import time
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

import jwt
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, g, jsonify, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from refusals import Principal, Unauthorized, Unavailable, refusal_response

SCOPES = "openid profile offline_access"
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
SIGNING_ALGORITHMS = ["RS256", "ES256", "EdDSA"]
EXPIRY_MARGIN = 10  # seconds: a token this close to its end is refreshed before use


class OidcSignIn:
    """The protection of NOTES_PROTECTION=oidc: /signin, /signin/callback, /signin/backchannel-logout,
    /signout and /api/me."""

    def __init__(self, citylogin_url: str, client_id: str, client_secret: str) -> None:
        self.oauth = OAuth()
        self.citylogin = self.oauth.register(
            "citylogin", client_id=client_id, client_secret=client_secret,
            server_metadata_url=f"{citylogin_url}/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPES, "code_challenge_method": "S256"})
        self.client_id = client_id
        self._signed_in: dict[str, dict[str, Any]] = {}    # cookie handle -> {"token", "claims"}
        self._lock = threading.Lock()
        self._keys: jwt.PyJWKClient | None = None

    def init_app(self, app: Flask) -> None:
        app.secret_key = secrets.token_bytes(32)           # signs the cookie; a restart signs everyone out
        app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
        self.oauth.init_app(app)
        app.add_url_rule("/signin", "signin", self.sign_in)
        app.add_url_rule("/signin/callback", "signin_callback", self.callback)
        app.add_url_rule("/signin/backchannel-logout", "backchannel_logout", self.backchannel_logout,
                         methods=["POST"])
        app.add_url_rule("/signout", "signout", self.sign_out, methods=["POST"])
        app.add_url_rule("/api/me", "me", self.required(self.me))

    def sign_in(self) -> BaseResponse:
        """The browser goes to citylogin's sign-in page (the authorization request, PKCE S256, a nonce)."""
        return self.citylogin.authorize_redirect(url_for("signin_callback", _external=True))

    def callback(self) -> BaseResponse:
        """citylogin sends the browser back with a code (or an error): the code becomes tokens here."""
        try:
            token = self.citylogin.authorize_access_token()
        except OAuthError as error:
            return redirect("/?" + urlencode({"signin_error": error.error or "error"}))
        handle = secrets.token_urlsafe(32)
        with self._lock:
            self._signed_in[handle] = {"token": token, "claims": dict(token["userinfo"])}
        session.clear()
        session["signed_in"] = handle
        return redirect("/")

    def backchannel_logout(self) -> Response | tuple[Response, int]:
        """citylogin says a session ended (Back-Channel Logout 1.0 §2.5-2.8): its sign-ins end here."""
        claims = self._logout_claims(request.form.get("logout_token", ""))
        if claims is None:
            return jsonify(error="invalid_request", error_description="not a valid logout token"), 400
        with self._lock:
            for handle in [h for h, e in self._signed_in.items() if e["claims"].get("sid") == claims["sid"]]:
                del self._signed_in[handle]
        answer = jsonify()
        answer.headers["Cache-Control"] = "no-store"
        return answer

    def _logout_claims(self, token: str) -> dict[str, Any] | None:
        metadata = self.citylogin.load_server_metadata()
        if self._keys is None:
            self._keys = jwt.PyJWKClient(metadata["jwks_uri"])
        try:
            if jwt.get_unverified_header(token).get("typ") != "logout+jwt":
                return None
            claims = jwt.decode(token, self._keys.get_signing_key_from_jwt(token).key, algorithms=SIGNING_ALGORITHMS,
                                audience=self.client_id, issuer=metadata["issuer"],
                                options={"require": ["iss", "aud", "iat", "exp", "jti", "sid"]})
        except (jwt.PyJWTError, ValueError):
            return None
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events or "nonce" in claims:
            return None
        return claims

    def sign_out(self) -> BaseResponse:
        """Log out of notes and of citylogin (RP-Initiated Logout): the ID token names the session, the
        browser's device key proves it on citylogin's page, and citylogin sends the browser back to this
        app's page (registered as its post-logout URI)."""
        with self._lock:
            entry = self._signed_in.pop(session.pop("signed_in", ""), None)
        if entry is None or "id_token" not in entry["token"]:
            return redirect("/")
        end_session = self.citylogin.load_server_metadata()["end_session_endpoint"]
        return redirect(end_session + "?" + urlencode({
            "id_token_hint": entry["token"]["id_token"], "client_id": self.client_id, "state": "signed-out",
            "post_logout_redirect_uri": url_for("page", _external=True)}))

    def me(self) -> Response:
        claims = g.citylogin_claims
        return jsonify({k: claims[k] for k in ("sub", "preferred_username", "locale", "zoneinfo") if k in claims})

    def required(self, view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def signed_in_view(*args: Any, **kwargs: Any) -> Any:
            handle = session.get("signed_in", "")
            with self._lock:
                entry = self._signed_in.get(handle)
            if entry is None:
                code = "session_revoked" if handle else "invalid_token"
                return refusal_response(Unauthorized(code, "Sign in with citylogin."))
            try:
                if entry["token"].get("expires_at", 0) - EXPIRY_MARGIN < time.time() and \
                        not self._refreshed(handle, entry):
                    return refusal_response(Unauthorized("session_revoked", "Your citylogin session has ended."))
            except Unavailable as unavailable:      # an outage is not a sign-out: the sign-in is kept
                return refusal_response(unavailable)
            g.citylogin_claims = entry["claims"]
            g.citylogin = Principal(user_uuid=entry["claims"]["sub"], session_id=entry["claims"].get("sid", ""),
                                    device_id="")
            return view(*args, **kwargs)
        return signed_in_view

    def _refreshed(self, handle: str, entry: dict[str, Any]) -> bool:
        """A new token pair; False (the sign-in ended here) when citylogin refuses the refresh token
        (invalid_grant: the session or the app's grant on it is over); Unavailable when citylogin
        cannot be reached or answers anything else, and the sign-in is kept for the next try."""
        try:
            token = self.citylogin.fetch_access_token(grant_type="refresh_token",
                                                      refresh_token=entry["token"]["refresh_token"])
        except (OAuthError, KeyError) as error:
            if isinstance(error, OAuthError) and error.error != "invalid_grant":
                raise Unavailable(f"citylogin did not renew the sign-in ({error.error}).") from None
            with self._lock:
                self._signed_in.pop(handle, None)
            return False
        except (requests.RequestException, ValueError):
            raise Unavailable("citylogin cannot be reached to renew the sign-in.") from None
        with self._lock:
            entry["token"] = {**entry["token"], **token}
        return True

    def close(self) -> None:
        pass
