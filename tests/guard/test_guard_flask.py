"""The guard in a Flask app: @guard.required lets a valid token through with the principal in
flask.g.citylogin, and answers anything else with 401, a Bearer challenge and problem+json."""
from __future__ import annotations

import pytest
from flask import Flask, g

from citylogin.client_keys import generate_key
from citylogin_guard import Code, Guard, Unauthorized
from tests.guard.checks import DPOP_CHALLENGE, bound_claims, dpop_headers
from tests.support.waiting import wait_until


@pytest.fixture
def client(guard: Guard):
    app = Flask(__name__)
    guard.init_app(app)

    @app.get("/api/me")
    @guard.required
    def me():
        return {"user": g.citylogin.user_uuid, "session": g.citylogin.session_id, "device": g.citylogin.device_id}

    @app.get("/api/checked-in-view")
    def checked_in_view():
        raise Unauthorized(Code.SESSION_UNVERIFIABLE, "checked by hand")

    @app.get("/public")
    def public():
        return {"open": True}

    return app.test_client()


def assert_refused(response, code: str) -> dict:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert set(body) >= {"type", "title", "status", "code", "detail"} and body["status"] == 401
    assert body["code"] == code
    return body


def test_a_valid_token_reaches_the_view_with_its_principal(client, transmitter):
    token = transmitter.access_token(sub="user-7", session_id="s-7", did="device-7")
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {"user": "user-7", "session": "s-7", "device": "device-7"}
    assert client.get("/public").status_code == 200


def test_no_token_a_bad_token_and_a_revoked_session_get_401_problems(client, transmitter):
    assert_refused(client.get("/api/me"), "invalid_token")
    assert_refused(client.get("/api/me", headers={"Authorization": "Bearer x.y.z"}), "invalid_token")
    token = transmitter.access_token(session_id="s-8")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    transmitter.revoke("s-8", reason="logged_out")
    wait_until(lambda: client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401,
               timeout=1.0, what="the revoked session refused")
    body = assert_refused(client.get("/api/me", headers={"Authorization": f"Bearer {token}"}), "session_revoked")
    assert body["reason"] == "logged_out"


def test_a_bound_token_reaches_the_view_with_a_proof_for_it_and_is_refused_without(client, transmitter):
    key = generate_key("ml-dsa-87")
    token = transmitter.access_token(sub="user-9", **bound_claims(key))
    url = "http://localhost/api/me"  # Flask's test client serves localhost
    assert client.get("/api/me", headers=dpop_headers(key, token, "GET", url)).get_json()["user"] == "user-9"
    for headers in (dpop_headers(key, token, "GET", "http://localhost/public"), {"Authorization": f"DPoP {token}"}):
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401 and response.get_json()["code"] == "invalid_dpop_proof"
        assert response.headers["WWW-Authenticate"] == DPOP_CHALLENGE


def test_an_unauthorized_raised_in_a_view_renders_through_init_app(client):
    assert_refused(client.get("/api/checked-in-view"), "session_unverifiable")
