"""A confidential app that asks for response_mode=form_post (OAuth 2.0 Form Post Response Mode), in its
own process, for the browser tests: /start sends the browser to citylogin with PKCE, a state and a
nonce; /callback takes the POSTed response, checks its state and issuer, redeems the code with its
secret and reads userinfo; /received tells the test what arrived and how.

    python -m tests.support.form_post_app PORT CITYLOGIN_URL CLIENT_ID CLIENT_SECRET
"""
from __future__ import annotations

import base64
import hashlib
import html
import secrets
import sys
import threading
from urllib.parse import urlencode

import requests
from flask import Flask, jsonify, redirect, request
from werkzeug.serving import run_simple


def create_app(port: int, citylogin: str, client_id: str, client_secret: str) -> Flask:
    app = Flask("form_post_app")
    callback = f"http://127.0.0.1:{port}/callback"
    waiting: dict[str, str] = {}          # state -> PKCE verifier
    received: list[dict] = []
    lock = threading.Lock()

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/start")
    def start():
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with lock:
            waiting[state] = verifier
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": callback, "scope": "openid profile",
                  "state": state, "nonce": secrets.token_urlsafe(8), "response_mode": "form_post",
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        return redirect(f"{citylogin}/oidc/authorize?{urlencode(params)}", code=302)

    @app.post("/callback")
    def form_post_callback():
        arrived = {"method": request.method, "content_type": request.content_type,
                   "query": request.query_string.decode(), "fields": list(request.form.keys()),
                   "error": request.form.get("error")}
        with lock:
            verifier = waiting.pop(request.form.get("state", ""), None)
        if verifier is None or request.form.get("iss") != citylogin or "code" not in request.form:
            with lock:
                received.append({**arrived, "signed_in": None})
            return _page("signed-out", request.form.get("error") or "refused")
        tokens = requests.post(citylogin + "/oidc/token", auth=(client_id, client_secret), timeout=10, data={
            "grant_type": "authorization_code", "code": request.form["code"], "redirect_uri": callback,
            "code_verifier": verifier}).json()
        person = requests.get(citylogin + "/oidc/userinfo", timeout=10,
                              headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
        with lock:
            received.append({**arrived, "signed_in": person.get("preferred_username"),
                             "id_token": "id_token" in tokens})
        return _page("signed-in", person.get("preferred_username", ""))

    @app.get("/received")
    def what_arrived():
        with lock:
            return jsonify(received)

    return app


def _page(state: str, who: str) -> str:
    return f'<!DOCTYPE html><html><body data-state="{state}"><p id="who">{html.escape(who)}</p></body></html>'


if __name__ == "__main__":
    port = int(sys.argv[1])
    run_simple("127.0.0.1", port, create_app(port, *sys.argv[2:5]), threaded=True)
