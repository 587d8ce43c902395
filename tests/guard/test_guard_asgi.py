"""The guard in front of a FastAPI (Starlette) app: GuardMiddleware guards the paths `protect`
names, puts the principal in scope["state"]["citylogin"], and refuses with the same 401 as Flask;
a check that needs citylogin (the feed stale) runs off the event loop."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.testclient import TestClient

from citylogin.client.keys import generate_key
from citylogin_guard import Guard, GuardMiddleware, Principal
from tests.guard.checks import DPOP_CHALLENGE, SharedStore, bound_claims, dpop_headers
from tests.guard.conftest import CALL_TIMEOUT, LEEWAY
from tests.support.waiting import wait_until


def make_client(guard: Guard) -> TestClient:
    app = FastAPI()
    app.add_middleware(GuardMiddleware, guard=guard, protect=lambda path: path.startswith("/api/"))

    @app.get("/api/me")
    def me(request: Request) -> dict[str, str]:
        principal = request.state.citylogin
        return {"user": principal.user_uuid, "session": principal.session_id, "device": principal.device_id}

    @app.websocket("/api/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.state.citylogin.user_uuid})
        await websocket.close()

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    return TestClient(app)


@pytest.fixture
def client(guard: Guard):
    with make_client(guard) as client:
        yield client


def test_a_valid_token_reaches_the_route_and_unprotected_paths_need_none(client, transmitter):
    token = transmitter.access_token(sub="user-1", session_id="s-1", did="device-1")
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"user": "user-1", "session": "s-1", "device": "device-1"}
    assert client.get("/health").json() == {"ok": True}


def test_refusals_are_401_problems_with_a_bearer_challenge(client, transmitter):
    token = transmitter.access_token(session_id="s-2")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    transmitter.revoke("s-2", reason="admin_revoked")
    wait_until(lambda: client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401,
               timeout=1.0, what="the revoked session refused")
    for headers, code in [({}, "invalid_token"), ({"Authorization": f"Bearer {token}"}, "session_revoked"),
                          ({"Authorization": f"Bearer {transmitter.access_token(expires_in=-60)}"}, "token_expired")]:
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code and response.json()["status"] == 401


def test_a_websocket_is_guarded_too(client, transmitter):
    token = transmitter.access_token(sub="user-3")
    with client.websocket_connect("/api/live", headers={"Authorization": f"Bearer {token}"}) as socket:
        assert socket.receive_json() == {"user": "user-3"}
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/api/live") as socket:
            socket.receive_json()
    assert refused.value.code == 1008 and refused.value.reason == "invalid_token"


def test_a_bound_token_passes_with_its_proof_and_a_bad_one_gets_the_dpop_challenge(client, transmitter):
    key = generate_key("ecdsa-p256")
    token = transmitter.access_token(sub="user-4", **bound_claims(key))
    mine = "http://testserver/api/me"  # the URL the app sees (TestClient's host), its query aside
    assert client.get("/api/me?page=2", headers=dpop_headers(key, token, "GET", mine)).json()["user"] == "user-4"
    live = dpop_headers(key, token, "GET", "ws://testserver/api/live")
    with client.websocket_connect("/api/live", headers=live) as socket:
        assert socket.receive_json() == {"user": "user-4"}
    replayed = dpop_headers(key, token, "GET", mine)
    assert client.get("/api/me", headers=replayed).status_code == 200
    refusals = [dpop_headers(key, token, "POST", mine), dpop_headers(generate_key("ed25519"), token, "GET", mine),
                {"Authorization": f"Bearer {token}"}, replayed]
    for headers in refusals:
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "invalid_dpop_proof"
        assert response.headers["www-authenticate"] == DPOP_CHALLENGE
        assert response.headers["content-type"] == "application/problem+json"


def test_an_apps_own_replay_store_is_called_off_the_event_loop(transmitter):
    store = SharedStore()
    with Guard(transmitter.url, transmitter.client_id, transmitter.client_secret, leeway=LEEWAY,
               replay_store=store, call_timeout=CALL_TIMEOUT) as guard:
        wait_until(guard.heard, timeout=30, what="the feed heard")
        time.sleep(guard.leeway + 0.05)  # tokens from now on are the feed's alone: no introspection
        key = generate_key("ed25519")
        token = transmitter.access_token(**bound_claims(key))
        with make_client(guard) as client:
            loop_thread = client.portal.call(threading.current_thread)
            headers = dpop_headers(key, token, "GET", "http://testserver/api/me")
            assert client.get("/api/me", headers=headers).status_code == 200
            assert client.get("/api/me", headers=headers).json()["code"] == "invalid_dpop_proof"
        assert len(store.spent) == 1 and len(store.threads) == 2
        assert all(thread is not loop_thread for thread in store.threads)


class RecordingGuard(Guard):
    """A real guard that notes in which thread each check runs, and whether it may block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checks: list[tuple[bool, threading.Thread]] = []

    def check(self, authorization: str | None, *, may_block: bool, **request: Any) -> Principal:
        self.checks.append((may_block, threading.current_thread()))
        return super().check(authorization, may_block=may_block, **request)


def test_with_the_feed_stale_the_middleware_introspects_off_the_event_loop(transmitter):
    with RecordingGuard(transmitter.url, transmitter.client_id, transmitter.client_secret, stale_after=0.5,
                        call_timeout=CALL_TIMEOUT) as guard:
        wait_until(guard.heard, timeout=30, what="the feed heard")
        transmitter.poll_status = 503
        wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")
        token = transmitter.access_token()
        with make_client(guard) as client:
            loop_thread = client.portal.call(threading.current_thread)
            assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert transmitter.introspections == 1
        (first_may_block, first_thread), (then_may_block, then_thread) = guard.checks
        assert (first_may_block, first_thread) == (False, loop_thread)
        assert then_may_block and then_thread is not loop_thread


def test_citylogin_down_is_a_503_with_retry_after_and_a_session_known_ended_stays_401(make_guard, transmitter):
    guard = make_guard(stale_after=0.5, retry_after=4)
    live, ended = transmitter.access_token(session_id="s-up"), transmitter.access_token(session_id="s-gone")
    with make_client(guard) as client:
        for token in (live, ended):
            assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        transmitter.revoke("s-gone", reason="logged_out")
        wait_until(lambda: "s-gone" in guard.ended_sessions, timeout=30, what="the feed telling the session ended")
        transmitter.stop()
        wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")

        unverifiable = client.get("/api/me", headers={"Authorization": f"Bearer {live}"})
        assert unverifiable.status_code == 503, unverifiable.text
        assert unverifiable.headers["retry-after"] == "4" and "www-authenticate" not in unverifiable.headers
        assert unverifiable.headers["content-type"] == "application/problem+json"
        assert unverifiable.json()["code"] == "session_unverifiable" and unverifiable.json()["status"] == 503
        assert unverifiable.json()["retry_after"] == 4
        refused = client.get("/api/me", headers={"Authorization": f"Bearer {ended}"})
        assert refused.status_code == 401 and refused.json()["code"] == "session_revoked"
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        # a WebSocket whose token cannot be judged is told to come back later (1013), not refused (1008)
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/api/live", headers={"Authorization": f"Bearer {live}"}) as socket:
                socket.receive_json()
        assert closed.value.code == 1013 and closed.value.reason == "session_unverifiable"
