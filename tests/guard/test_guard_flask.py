"""The guard in a Flask app: @guard.required lets a valid token through with the principal in
flask.g.citylogin, and answers anything else with 401, a Bearer challenge and problem+json."""
from __future__ import annotations

import pytest
from flask import Flask, g

from citylogin.client.keys import generate_key
from citylogin_guard import Code, Guard, Unauthorized, Unavailable
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


def test_citylogin_down_is_a_503_for_a_live_token_and_a_401_for_a_session_known_to_have_ended(make_guard,
                                                                                                  transmitter):
    """An outage is not a sign-out: a token the guard cannot judge gets 503 with Retry-After (its code
    session_unverifiable), while a session the feed already said had ended stays refused with 401."""
    guard = make_guard(stale_after=0.5, retry_after=7)
    app = Flask(__name__)
    guard.init_app(app)

    @app.get("/api/me")
    @guard.required
    def me():
        return {"user": g.citylogin.user_uuid}

    client = app.test_client()
    live, ended = transmitter.access_token(session_id="s-live"), transmitter.access_token(session_id="s-ended")
    for token in (live, ended):
        assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    transmitter.revoke("s-ended", reason="displaced")
    wait_until(lambda: "s-ended" in guard.ended_sessions, timeout=30, what="the feed telling the session ended")
    transmitter.stop()                                      # nothing listens on its port any more
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")

    unverifiable = client.get("/api/me", headers={"Authorization": f"Bearer {live}"})
    assert unverifiable.status_code == 503
    assert unverifiable.headers["Retry-After"] == "7" and "WWW-Authenticate" not in unverifiable.headers
    assert unverifiable.headers["Cache-Control"] == "no-store"
    assert unverifiable.mimetype == "application/problem+json"
    assert unverifiable.get_json() == {"type": "about:blank", "title": "Session cannot be verified", "status": 503,
                                       "code": "session_unverifiable", "retry_after": 7,
                                       "detail": "citylogin cannot be reached to check the session."}
    body = assert_refused(client.get("/api/me", headers={"Authorization": f"Bearer {ended}"}), "session_revoked")
    assert body["reason"] == "displaced"
    assert_refused(client.get("/api/me", headers={"Authorization": "Bearer x.y.z"}), "invalid_token")
    expired = transmitter.access_token(session_id="s-live", expires_in=-60)   # signed by a key the guard knows
    assert_refused(client.get("/api/me", headers={"Authorization": f"Bearer {expired}"}), "token_expired")


def test_an_unavailable_raised_in_a_view_renders_as_503_and_existing_handlers_still_catch_it(guard):
    app = Flask(__name__)
    guard.init_app(app)

    @app.get("/api/by-hand")
    def by_hand():
        raise Unavailable("checked by hand", retry_after=3)

    answer = app.test_client().get("/api/by-hand")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "3"
    assert answer.get_json()["code"] == "session_unverifiable" and answer.get_json()["retry_after"] == 3
    with pytest.raises(Unauthorized) as caught:                 # `except Unauthorized` code goes on working
        raise Unavailable("x", retry_after=1)
    assert caught.value.status == 503 and caught.value.code == Code.SESSION_UNVERIFIABLE
    with pytest.raises(ValueError):
        type(guard)(guard._transmitter.base_url, "id", "secret", retry_after=0)
