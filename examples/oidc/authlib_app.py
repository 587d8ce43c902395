"""A server-side Flask app that signs people in with citylogin through Authlib's Flask client: the
OpenID Connect code flow with PKCE S256 and a nonce, the ID token checked against citylogin's keys,
the tokens kept on this server (each visitor's browser holds only a cookie naming its sign-in), a
page at `/` that says who is signed in, a refresh that rotates the refresh token, and a "Sign out"
button that ends the citylogin session too (RP-Initiated Logout).

Register it once, then run it (`--port`, `--host`; the secret comes from the environment or a file,
never the command line, which other users of the machine can read):

    .venv/bin/citylogin apps add "Authlib app" --json \\
        --redirect-uri http://127.0.0.1:8000/callback --post-logout-redirect-uri http://127.0.0.1:8000/ \\
        > authlib-app.json
    CITYLOGIN_URL=http://localhost:5000 CLIENT_ID="$(jq -r .client_id authlib-app.json)" \\
        CLIENT_SECRET="$(jq -r .client_secret authlib-app.json)" \\
        .venv/bin/python examples/oidc/authlib_app.py --port 8000

(or CLIENT_SECRET_FILE=path, a file holding the secret), then open http://127.0.0.1:8000/.

Signed requests (RFC 9101 request objects, docs/guides/oidc/authlib.md): with SIGNING_KEY_FILE, a file
holding the app's private RSA key as a JWK, and no secret, the app signs each authorization request into a
request object and authenticates at the token endpoint with a client assertion (private_key_jwt), both by
that key; register its public half with `--jwks public.json --require-signed-request-object`.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import Flask, redirect, render_template_string, request, session, url_for
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Response

SCOPE = "openid profile email offline_access"   # offline_access: a refresh token

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authlib app</title></head>
<body data-state="{{ 'signed-in' if user else 'signed-out' }}">
  <h1>Authlib app</h1>
  <p id="status" role="status">{{ notice }}</p>
  {% if user %}
  <p>Signed in as <strong id="who">{{ user["preferred_username"] }}</strong></p>
  <form method="post" action="{{ url_for('logout') }}"><button id="sign-out" type="submit">Sign out</button></form>
  {% else %}
  <p><a id="sign-in" href="{{ url_for('login') }}">Sign in with citylogin</a></p>
  {% endif %}
</body></html>"""
NOTICES = {"signed-out": "Signed out of this app and citylogin."}


def create_app(citylogin_url: str, client_id: str, client_secret: str | None = None, *,
               signing_key: RSAKey | None = None) -> Flask:
    """The app, authenticating with its secret, or with `signing_key` (its private key), which then also
    signs each authorization request into a request object."""
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)            # signs the cookie; a restart signs everyone out
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    oauth = OAuth(app)
    by_key = {"client_auth_methods": [PrivateKeyJWT()]} if signing_key else {}
    citylogin = oauth.register(
        "citylogin", client_id=client_id, client_secret=signing_key or client_secret,
        server_metadata_url=f"{citylogin_url}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256",
                       **({"token_endpoint_auth_method": "private_key_jwt"} if signing_key else {})}, **by_key)
    signed_in: dict[str, dict[str, Any]] = {}           # the cookie's handle -> its tokens, on the server
    lock = threading.Lock()

    def current() -> dict[str, Any] | None:
        with lock:
            return signed_in.get(session.get("handle", ""))

    @app.get("/")
    def home() -> str:
        token = current()
        error = request.args.get("error")
        notice = f"Not signed in ({error})." if error else NOTICES.get(request.args.get("state", ""), "")
        return render_template_string(PAGE, user=token["userinfo"] if token else None, notice=notice)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    def me() -> dict[str, Any]:
        """The visitor's sign-in: the ID token's claims, as Authlib checked them."""
        token = current()
        if token is None:
            return {"signed_in": False}
        user = token["userinfo"]
        return {"signed_in": True, "user": user["preferred_username"], "sub": user["sub"], "sid": user["sid"],
                "has_refresh_token": "refresh_token" in token, "expires_at": token["expires_at"]}

    @app.get("/login")
    def login() -> Response:
        if signing_key is None:
            return citylogin.authorize_redirect(url_for("callback", _external=True))
        return signed_redirect(citylogin, signing_key, client_id, url_for("callback", _external=True))

    @app.get("/callback")
    def callback() -> Response:
        try:
            token = citylogin.authorize_access_token()  # redeems the code; checks the ID token, nonce and iss
        except OAuthError as error:                     # e.g. access_denied: the person declined
            return redirect(url_for("home", error=error.error or "error"))
        handle = secrets.token_urlsafe(32)
        with lock:
            signed_in[handle] = token                   # access_token, refresh_token, id_token, userinfo
        session.clear()
        session["handle"] = handle
        return redirect(url_for("home"))

    @app.post("/refresh")
    def refresh() -> dict[str, Any] | tuple[dict[str, str], int]:
        """Call this when token["expires_at"] is near: a new pair; the old refresh token is spent."""
        token = current()
        if token is None:
            return {"error": "signed_out"}, 401
        fresh = citylogin.fetch_access_token(grant_type="refresh_token", refresh_token=token["refresh_token"])
        rotated = fresh["refresh_token"] != token["refresh_token"]
        token.update(fresh)
        return {"rotated": rotated, "expires_at": token["expires_at"]}

    @app.post("/logout")
    def logout() -> Response:
        """The "Sign out" button: signs out here, then sends the browser to citylogin to end its session
        there too; citylogin sends it back to / (registered with --post-logout-redirect-uri)."""
        with lock:
            token = signed_in.pop(session.pop("handle", ""), None)
        if token is None:
            return redirect(url_for("home"))
        end_session = citylogin.load_server_metadata()["end_session_endpoint"]
        return redirect(end_session + "?" + urlencode({
            "id_token_hint": token["id_token"], "client_id": client_id, "state": "signed-out",
            "post_logout_redirect_uri": url_for("home", _external=True)}))

    return app


def signed_redirect(citylogin: Any, key: RSAKey, client_id: str, redirect_uri: str) -> Response:
    """The authorization request Authlib makes (state, nonce, PKCE, kept in the session as always), sent
    as a request object signed with the app's key (RFC 9101): every parameter inside; outside, the ones
    OAuth requires of every request (OpenID Connect Core §6.1)."""
    made = citylogin.create_authorization_url(redirect_uri)
    citylogin.save_authorize_data(redirect_uri=redirect_uri, **made)
    params = dict(parse_qsl(urlsplit(made["url"]).query))
    now = int(time.time())
    claims = {**params, "iss": client_id, "aud": citylogin.load_server_metadata()["issuer"], "iat": now,
              "nbf": now, "exp": now + 300, "jti": secrets.token_urlsafe(16)}
    request_object = jwt.encode({"alg": "RS256", "typ": "oauth-authz-req+jwt", "kid": key.kid}, claims, key)
    outside = {name: params[name] for name in ("response_type", "client_id", "scope", "redirect_uri")}
    endpoint = citylogin.load_server_metadata()["authorization_endpoint"]
    return redirect(f"{endpoint}?{urlencode({**outside, 'request': request_object})}")


def setting(environ: Mapping[str, str], name: str) -> str:
    """`name` from the environment, or read from the file `name`_FILE names."""
    value = environ.get(name) or (Path(environ[f"{name}_FILE"]).read_text() if environ.get(f"{name}_FILE") else "")
    if not value.strip():
        raise SystemExit(f"authlib_app: set {name} (or {name}_FILE, a file holding it) in the environment")
    return value.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description="A Flask app that signs people in with citylogin (Authlib).")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    arguments = parser.parse_args()
    url, client_id = os.environ.get("CITYLOGIN_URL", "http://localhost:5000"), setting(os.environ, "CLIENT_ID")
    if os.environ.get("SIGNING_KEY_FILE"):
        key = RSAKey.import_key(json.loads(Path(os.environ["SIGNING_KEY_FILE"]).read_text()))
        app = create_app(url, client_id, signing_key=key)
    else:
        app = create_app(url, client_id, setting(os.environ, "CLIENT_SECRET"))
    app.run(host=arguments.host, port=arguments.port, threaded=True)


if __name__ == "__main__":
    main()
