"""Sign in with citylogin by OpenID Connect (NOTES_PROTECTION=oidc): the notes server is a confidential
client of citylogin's OpenID Provider, through Authlib's Flask client as any Flask app would use it
(discovery, the code flow with PKCE, the ID token checked against citylogin's keys).

The browser holds only a cookie that names its sign-in; the tokens stay on this server. Each API
request asks citylogin's userinfo with the app's access token, so a session that ended at citylogin
(another device took the seat, a logout, an operator) is refused on the very next request."""
from __future__ import annotations

import secrets
import threading
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, g, jsonify, redirect, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from refusals import Principal, Unauthorized, refusal_response

SCOPES = "openid profile"
USERINFO_TIMEOUT = 5


class OidcSignIn:
    """The protection of NOTES_PROTECTION=oidc: /signin, /signin/callback, /signout and /api/me."""

    def __init__(self, citylogin_url: str, client_id: str, client_secret: str) -> None:
        self.oauth = OAuth()
        self.citylogin = self.oauth.register(
            "citylogin", client_id=client_id, client_secret=client_secret,
            server_metadata_url=f"{citylogin_url}/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPES, "code_challenge_method": "S256"})
        self._signed_in: dict[str, dict[str, Any]] = {}    # cookie handle -> {"token", "claims"}
        self._lock = threading.Lock()

    def init_app(self, app: Flask) -> None:
        app.secret_key = secrets.token_bytes(32)           # signs the cookie; a restart signs everyone out
        app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
        self.oauth.init_app(app)
        app.add_url_rule("/signin", "signin", self.sign_in)
        app.add_url_rule("/signin/callback", "signin_callback", self.callback)
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

    def sign_out(self) -> Response:
        with self._lock:
            self._signed_in.pop(session.pop("signed_in", ""), None)
        return Response(status=204)

    def me(self) -> Response:
        return jsonify(g.citylogin_userinfo)

    def required(self, view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def signed_in_view(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                entry = self._signed_in.get(session.get("signed_in", ""))
            if entry is None:
                return refusal_response(Unauthorized("invalid_token", "Sign in with citylogin first."))
            answer = self._userinfo(entry["token"]["access_token"])
            if answer.status_code == 401:
                with self._lock:
                    self._signed_in.pop(session.pop("signed_in", ""), None)
                return refusal_response(Unauthorized("session_revoked", "Your citylogin session has ended."))
            if answer.status_code != 200:
                return jsonify(type="about:blank", status=503, code="citylogin_unavailable",
                               detail="citylogin did not answer; try again."), 503
            g.citylogin_userinfo = answer.json()
            g.citylogin = Principal(user_uuid=entry["claims"]["sub"], session_id=entry["claims"].get("sid", ""),
                                    device_id="")
            return view(*args, **kwargs)
        return signed_in_view

    def _userinfo(self, access_token: str) -> requests.Response:
        endpoint = self.citylogin.load_server_metadata()["userinfo_endpoint"]
        try:
            return requests.get(endpoint, headers={"Authorization": f"Bearer {access_token}"},
                                timeout=USERINFO_TIMEOUT)
        except requests.RequestException:
            failed = requests.Response()
            failed.status_code = 503
            return failed

    def close(self) -> None:
        pass

