"""The seed test plan and the three policies, over HTTP against the all-in-one app."""
from __future__ import annotations

import pytest

from citylogin.client.api import ConcurrentLoginRequired, CityloginError
from tests.support.live import PASSWORD, FakeClock, add_device, on_clock, register_device


def two_devices(make_server, **settings):
    url, ctx = make_server(**settings)
    a = register_device(url)
    b = add_device(ctx, a, name="phone B")
    return a, b, ctx


def problem(response):
    body = response.json()
    return response.status_code, body["code"], body.get("reason")


def test_seed_plan_confirm_displaces_the_first_device(make_server):
    a, b, _ = two_devices(make_server)
    a.login(PASSWORD)
    a_refresh = a.refresh_token
    assert a.request("GET", "/session/me").status_code == 200
    with pytest.raises(ConcurrentLoginRequired) as refused:
        b.login(PASSWORD)
    assert refused.value.status == 409
    assert [d["device_id"] for d in refused.value.active_devices] == [a.key_file.device_id]
    assert refused.value.detail.startswith("Sign in on this device? This account is in use on another device")
    assert f'"{a.key_file.device_name}" will be signed out' in refused.value.detail
    body = b.confirm(refused.value.confirm_token)
    assert body["evicted"] == [{"device_id": a.key_file.device_id, "device_name": a.key_file.device_name}]
    assert b.request("GET", "/session/me").status_code == 200
    response = a.request("GET", "/session/me")
    assert problem(response) == (401, "session_revoked", "displaced")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    refreshed = a.http.post(a.base_url + "/session/refresh", json={"refresh_token": a_refresh},
                            headers={"DPoP": a.proof("POST", a.base_url + "/session/refresh")}, timeout=10)
    assert problem(refreshed)[:2] == (401, "session_revoked")


def test_seed_plan_cancel_keeps_the_first_device(make_server):
    a, b, _ = two_devices(make_server)
    a.login(PASSWORD)
    with pytest.raises(ConcurrentLoginRequired):
        b.login(PASSWORD)
    # Cancelling calls nothing: the first device keeps working.
    assert a.request("GET", "/session/me").status_code == 200
    assert b.access_token is None


def test_confirm_token_is_single_use(make_server):
    a, b, _ = two_devices(make_server)
    a.login(PASSWORD)
    with pytest.raises(ConcurrentLoginRequired) as refused:
        b.login(PASSWORD)
    token = refused.value.confirm_token
    b.confirm(token)
    with pytest.raises(CityloginError) as again:
        b.confirm(token)
    assert (again.value.status, again.value.code) == (401, "invalid_confirm_token")


def test_force_flag_under_ask_evicts_without_a_second_step(make_server):
    a, b, _ = two_devices(make_server)
    a.login(PASSWORD)
    b.login(PASSWORD, force=True)
    assert problem(a.request("GET", "/session/me"))[1:] == ("session_revoked", "displaced")


def test_reject_keeps_the_first_device_even_with_force(make_server):
    a, b, _ = two_devices(make_server, concurrency_policy="reject")
    a.login(PASSWORD)
    for force in (False, True):
        with pytest.raises(CityloginError) as refused:
            b.login(PASSWORD, force=force)
        assert (refused.value.status, refused.value.code) == (409, "concurrent_login_rejected")
    assert a.request("GET", "/session/me").status_code == 200


def test_force_policy_never_asks(make_server):
    a, b, _ = two_devices(make_server, concurrency_policy="force")
    a.login(PASSWORD)
    body = b.login(PASSWORD)
    assert [e["device_id"] for e in body["evicted"]] == [a.key_file.device_id]
    assert problem(a.request("GET", "/session/me"))[1:] == ("session_revoked", "displaced")


@pytest.mark.parametrize("evict", ["oldest_login", "least_recently_used"])
def test_limit_two_with_three_devices_evicts_per_setting(make_server, evict):
    url, ctx = make_server(concurrency_policy="force", max_concurrent_devices=2, evict=evict)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    b, c = add_device(ctx, a, name="B"), add_device(ctx, a, name="C")
    on_clock(clock, a, b, c)
    a.login(PASSWORD)
    clock.advance(60)
    b.login(PASSWORD)
    clock.advance(120)
    # A is the oldest login, but B is the least recently used once A has been used since.
    assert a.request("GET", "/session/me").status_code == 200
    body = c.login(PASSWORD)
    evicted = b if evict == "least_recently_used" else a
    kept = a if evicted is b else b
    assert [e["device_id"] for e in body["evicted"]] == [evicted.key_file.device_id]
    assert problem(evicted.request("GET", "/session/me"))[1:] == ("session_revoked", "displaced")
    assert kept.request("GET", "/session/me").status_code == 200


def test_relogin_from_the_same_device_replaces_its_own_session(make_server):
    a, _, _ = two_devices(make_server)
    a.login(PASSWORD)
    old_session = a.auth_headers("GET", a.base_url + "/session/me")  # the first session's token, and a proof
    a.login(PASSWORD)  # no 409: the same device
    assert a.request("GET", "/session/me").status_code == 200
    stale = a.http.get(a.base_url + "/session/me", headers=old_session, timeout=10)
    assert problem(stale)[:2] == (401, "session_revoked")


def test_logout_and_history(make_server):
    a, _, _ = two_devices(make_server)
    a.login(PASSWORD)
    history = a.request("GET", "/session/history").json()
    assert history["items"][0]["result"] == "success"
    before_logout = a.auth_headers("GET", a.base_url + "/session/me")  # the client forgets its token at logout
    a.logout()
    stale = a.http.get(a.base_url + "/session/me", headers=before_logout, timeout=10)
    assert problem(stale) == (401, "session_revoked", "logged_out")


def test_username_is_matched_as_registered_nfkc_and_case_insensitive(make_server):
    url, ctx = make_server()
    a = register_device(url)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in a.key_file.username.upper())
    a.key_file.username = fullwidth
    a.login(PASSWORD)
    assert a.request("GET", "/session/me").status_code == 200
