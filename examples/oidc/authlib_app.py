"""A server-side Flask app that signs people in with citylogin through Authlib's Flask client: the
OpenID Connect code flow with PKCE S256 and a nonce, the ID token checked against citylogin's keys,
the tokens kept on this server (the browser holds only a cookie naming its sign-in), a refresh that
rotates the refresh token, and a logout that ends the citylogin session too (RP-Initiated Logout).

Register it once, then run it (it listens on http://127.0.0.1:8000/):

    .venv/bin/citylogin apps add "Authlib app" --json \\
        --redirect-uri http://127.0.0.1:8000/callback --post-logout-redirect-uri http://127.0.0.1:8000/
    CITYLOGIN_URL=http://localhost:5000 CLIENT_ID=app_... CLIENT_SECRET=... \\
        .venv/bin/python examples/oidc/authlib_app.py
"""
from __future__ import annotations

import os
import secrets
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, session, url_for

SCOPE = "openid profile email offline_access"   # offline_access: a refresh token


def create_app(citylogin_url: str, client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)            # signs the cookie; a restart signs everyone out
    oauth = OAuth(app)
    citylogin = oauth.register(
        "citylogin", client_id=client_id, client_secret=client_secret,
        server_metadata_url=f"{citylogin_url}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"})
    signed_in: dict[str, dict[str, Any]] = {}           # the cookie's handle -> its tokens, on the server

    def current() -> dict[str, Any] | None:
        return signed_in.get(session.get("handle", ""))

    @app.get("/")
    def home():
        token = current()
        if token is None:
            return '<a href="/login">Sign in with citylogin</a>'
        user = token["userinfo"]                        # the ID token's claims, checked by Authlib
        return {"user": user["preferred_username"], "sub": user["sub"], "sid": user["sid"],
                "has_refresh_token": "refresh_token" in token, "expires_at": token["expires_at"]}

    @app.get("/login")
    def login():
        return citylogin.authorize_redirect(url_for("callback", _external=True))

    @app.get("/callback")
    def callback():
        token = citylogin.authorize_access_token()      # redeems the code; checks the ID token, nonce and iss
        handle = secrets.token_urlsafe(32)
        signed_in[handle] = token                       # access_token, refresh_token, id_token, userinfo
        session["handle"] = handle
        return redirect("/")

    @app.post("/refresh")
    def refresh():
        """Call this when token["expires_at"] is near: a new pair; the old refresh token is spent."""
        token = current()
        if token is None:
            return {"error": "signed_out"}, 401
        fresh = citylogin.fetch_access_token(grant_type="refresh_token", refresh_token=token["refresh_token"])
        rotated = fresh["refresh_token"] != token["refresh_token"]
        token.update(fresh)
        return {"rotated": rotated, "expires_at": token["expires_at"]}

    @app.post("/logout")
    def logout():
        """Signs out here, then sends the browser to citylogin to end its session there too."""
        token = signed_in.pop(session.pop("handle", ""), None)
        if token is None:
            return redirect("/")
        end_session = citylogin.load_server_metadata()["end_session_endpoint"]
        return redirect(end_session + "?" + urlencode({
            "id_token_hint": token["id_token"], "client_id": client_id, "state": "signed-out",
            "post_logout_redirect_uri": url_for("home", _external=True)}))

    return app


if __name__ == "__main__":
    create_app(os.environ.get("CITYLOGIN_URL", "http://localhost:5000"), os.environ["CLIENT_ID"],
               os.environ["CLIENT_SECRET"]).run(host="127.0.0.1", port=8000)
