"""The person chooses which device goes (SPEC §5), over HTTP against the all-in-one app: the 409
concurrent_login lists every device that could go (`current`, `default`, its class, client and apps) and
says what the person is doing; a login's confirmation, a forced login and a screen's approval take
`displace`; a choice that is not listed or too small is 400 invalid_field and changes nothing (the
confirmation stays usable); a chosen session that ended meanwhile asks again with the new list."""
from __future__ import annotations

import uuid

import pytest

from accounts import user_service as users
from citylogin.client.api import Client, CityloginError, ConcurrentLoginRequired
from tests.support.device_flow import ask, poll, screen_app
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, register_device


def _confirm(device: Client, confirm_token: str, displace: list[str]) -> dict:
    """POST /login/confirm naming the sessions to sign out (as a client that lets the person choose)."""
    return device._keep_tokens(device._post("/login/confirm", {"confirm_token": confirm_token,
                                                               "displace": displace}, bind=True))


def _asked(device: Client) -> ConcurrentLoginRequired:
    with pytest.raises(ConcurrentLoginRequired) as refused:
        device.login(PASSWORD)
    return refused.value


def _me(device: Client) -> tuple[int, str | None]:
    response = device.request("GET", "/session/me")
    return response.status_code, response.json().get("reason")


@pytest.fixture
def three(make_server):
    """Limit 2: devices a and b signed in (a first), c about to sign in."""
    url, ctx = make_server(max_concurrent_devices=2)
    a = register_device(url)
    b, c = add_device(ctx, a, name="Tablet B", device_class="tablet"), add_device(ctx, a, name="Laptop C")
    a.login(PASSWORD)
    b.login(PASSWORD)
    return url, ctx, a, b, c


def test_the_question_lists_every_device_that_could_go_and_says_what_is_being_done(three):
    _, _, a, b, c = three
    asked = _asked(c)
    assert asked.status == 409
    problem_body = asked.body
    listed = problem_body["active_devices"]
    assert [d["device_id"] for d in listed] == [a.key_file.device_id, b.key_file.device_id]
    assert [d["session_id"] for d in listed] == [a.tokens()["session_id"], b.tokens()["session_id"]]
    assert [(d["default"], d["current"]) for d in listed] == [(True, False), (False, False)]
    assert listed[1]["device_class"] == "tablet" and listed[1]["device_name"] == "Tablet B"
    assert listed[0]["user_agent"].startswith("citylogin-python") and listed[0]["apps"] == []
    assert {"login_at", "last_seen_at", "ip"} <= set(listed[0])
    assert problem_body["needed"] == 1 and problem_body["action"] == {"kind": "login"}
    assert asked.detail.startswith("Sign in on this device?")
    assert f'"{a.key_file.device_name}" will be signed out' in asked.detail


def test_a_confirmation_naming_a_device_signs_out_that_one_and_keeps_the_default(three):
    _, _, a, b, c = three
    asked = _asked(c)
    chosen = asked.active_devices[1]["session_id"]
    answer = _confirm(c, asked.confirm_token, [chosen])
    assert answer["evicted"] == [{"device_id": b.key_file.device_id, "device_name": "Tablet B"}]
    assert _me(b) == (401, "displaced")
    assert _me(a)[0] == 200 and _me(c)[0] == 200


def test_a_forced_login_naming_a_device_signs_out_that_one(three):
    _, _, a, b, c = three
    chosen = b.tokens()["session_id"]
    challenge = c._post("/login/challenge", {})["challenge"]
    from citylogin.client.keys import sign_challenge
    key_file = c.require_key_file()
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge),
            "displace": [chosen]}   # a choice is itself the confirmation: no force needed
    answer = c._keep_tokens(c._post("/login/", body, bind=True))
    assert [e["device_id"] for e in answer["evicted"]] == [b.key_file.device_id]
    assert _me(b) == (401, "displaced") and _me(a)[0] == 200


@pytest.mark.parametrize("choice", ["unknown", "other_account", "malformed"])
def test_a_choice_not_listed_is_400_displace_and_changes_nothing(three, choice):
    url, _, a, b, c = three
    asked = _asked(c)
    stranger = register_device(url)
    stranger.login(PASSWORD)
    displace = {"unknown": [str(uuid.uuid4())], "other_account": [stranger.tokens()["session_id"]],
                "malformed": ["not a session id!"]}[choice]
    with pytest.raises(CityloginError) as refused:
        _confirm(c, asked.confirm_token, displace)
    assert (refused.value.status, refused.value.code) == (400, "invalid_field")
    assert refused.value.body["field"] == ("displace.0" if choice == "malformed" else "displace")
    assert _me(a)[0] == 200 and _me(b)[0] == 200 and stranger.request("GET", "/session/me").status_code == 200
    # The refused choice did not use the confirmation up: the person chooses again.
    answer = _confirm(c, asked.confirm_token, [b.tokens()["session_id"]])
    assert [e["device_id"] for e in answer["evicted"]] == [b.key_file.device_id]


def test_too_few_chosen_is_400_displace(three):
    _, ctx, a, b, c = three
    users.set_concurrent_limit(ctx, user_uuid=a.key_file.user_uuid, limit=1)   # two must go now
    asked = _asked(c)
    assert asked.body["needed"] == 2
    assert [d["default"] for d in asked.active_devices] == [True, True]
    with pytest.raises(CityloginError) as refused:
        _confirm(c, asked.confirm_token, [b.tokens()["session_id"]])
    assert (refused.value.status, refused.value.body["field"]) == (400, "displace")
    assert _me(a)[0] == 200 and _me(b)[0] == 200
    answer = _confirm(c, asked.confirm_token, [b.tokens()["session_id"], a.tokens()["session_id"]])
    assert {e["device_id"] for e in answer["evicted"]} == {a.key_file.device_id, b.key_file.device_id}


def test_a_chosen_device_that_ended_meanwhile_asks_again_with_the_new_list(three, make_server):
    url, ctx, a, b, c = three
    asked = _asked(c)
    chosen = b.tokens()["session_id"]
    b.logout()
    d = add_device(ctx, a, name="Phone D")
    d.login(PASSWORD)   # the account is at its limit again, without b
    with pytest.raises(ConcurrentLoginRequired) as again:
        _confirm(c, asked.confirm_token, [chosen])
    assert [x["device_id"] for x in again.value.active_devices] == [a.key_file.device_id, d.key_file.device_id]
    assert again.value.confirm_token and again.value.confirm_token != asked.confirm_token
    assert _me(a)[0] == 200 and _me(d)[0] == 200
    answer = _confirm(c, again.value.confirm_token, [d.tokens()["session_id"]])
    assert [e["device_id"] for e in answer["evicted"]] == [d.key_file.device_id]


def test_within_a_full_class_only_that_class_is_listed_and_may_be_chosen(make_server):
    url, ctx = make_server(max_concurrent_devices=3, device_class_limits="mobile=1")
    a = register_device(url)
    phone, laptop = add_device(ctx, a, name="Phone", device_class="mobile"), add_device(ctx, a, name="Laptop")
    new_phone = add_device(ctx, a, name="New phone", device_class="mobile")
    phone.login(PASSWORD)
    laptop.login(PASSWORD)
    asked = _asked(new_phone)
    assert [d["device_name"] for d in asked.active_devices] == ["Phone"]
    with pytest.raises(CityloginError) as refused:
        _confirm(new_phone, asked.confirm_token, [laptop.tokens()["session_id"]])
    assert (refused.value.status, refused.value.body["field"]) == (400, "displace")
    assert _me(phone)[0] == 200 and _me(laptop)[0] == 200


@pytest.mark.parametrize("policy", ["reject", "force"])
def test_reject_displaces_nobody_and_force_follows_the_eviction_order(make_server, policy):
    url, ctx = make_server(max_concurrent_devices=2, concurrency_policy=policy)
    a = register_device(url)
    b, c = add_device(ctx, a, name="B"), add_device(ctx, a, name="C")
    a.login(PASSWORD)
    b.login(PASSWORD)
    if policy == "reject":
        with pytest.raises(CityloginError) as refused:
            c.login(PASSWORD, force=True, displace=[b.tokens()["session_id"]])
        assert (refused.value.status, refused.value.code) == (409, "concurrent_login_rejected")
        assert _me(a)[0] == 200 and _me(b)[0] == 200
    else:
        answer = c.login(PASSWORD, force=True, displace=[b.tokens()["session_id"]])
        assert [e["device_id"] for e in answer["evicted"]] == [a.key_file.device_id]  # the oldest
        assert _me(b)[0] == 200


# --- a screen's approval -------------------------------------------------------------------------

def _approve(device: Client, user_code: str, **extra) -> object:
    return device.request("POST", "/oidc/device/approve",
                          json={"user_code": user_code, "device_name": "Living-room TV", **extra})


def test_at_limit_one_the_approving_phone_is_listed_as_this_device_and_the_default(make_server):
    url, ctx = make_server(host_name="127.0.0.1")   # the default limit: one device
    credentials = screen_app(ctx)
    code = ask(url, credentials).json()
    phone = register_device(url)
    phone.login(PASSWORD)
    asked = _approve(phone, code["user_code"])
    assert problem(asked)[:2] == (409, "concurrent_login")
    body = asked.json()
    assert [(d["device_id"], d["current"], d["default"]) for d in body["active_devices"]] == [
        (phone.key_file.device_id, True, True)]
    assert body["action"] == {"kind": "screen", "device_name": "Living-room TV", "device_class": "tv",
                              "client_name": "Living-room TV app"}
    assert body["detail"].startswith('Sign in on the TV "Living-room TV"?')
    assert "this device will be signed out" in body["detail"]
    ja = phone.request("POST", "/oidc/device/approve", headers={"Accept-Language": "ja"},
                       json={"user_code": code["user_code"], "device_name": "Living-room TV"})
    assert ja.json()["detail"].startswith("テレビ「Living-room TV」でログインしますか")


def test_approving_a_screen_the_person_keeps_the_phone_and_signs_out_another(make_server):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=2)
    credentials = screen_app(ctx)
    code = ask(url, credentials).json()
    phone = register_device(url)
    phone.login(PASSWORD)
    laptop = add_device(ctx, phone, name="Laptop")
    laptop.login(PASSWORD)
    asked = _approve(phone, code["user_code"]).json()
    listed = {d["device_id"]: d for d in asked["active_devices"]}
    assert listed[phone.key_file.device_id]["current"] and listed[phone.key_file.device_id]["default"]
    assert not listed[laptop.key_file.device_id]["current"]
    approved = _approve(phone, code["user_code"], displace=[laptop.tokens()["session_id"]])
    assert approved.status_code == 200, approved.text
    assert approved.json()["evicted"] == [{"device_id": laptop.key_file.device_id, "device_name": "Laptop"}]
    assert _me(phone)[0] == 200 and _me(laptop) == (401, "displaced")
    assert poll(url, credentials, code["device_code"]).status_code == 200
    # The screen now holds a seat: a login's question lists it with its app, not the phone's browser.
    asked_again = _asked(laptop)
    screen = next(d for d in asked_again.active_devices if d["device_class"] == "tv")
    assert screen["apps"] == [{"client_id": credentials.app.client_id, "name": "Living-room TV app"}]
    assert screen["user_agent"] is None
    # Sessions lists the screen by its own client, the app, not by the browser of the phone that approved it.
    listed_sessions = phone.request("GET", "/session/list").json()["sessions"]
    tv = next(x for x in listed_sessions if x["device_class"] == "tv")
    assert (tv["screen_app"], tv["user_agent"]) == ("Living-room TV app", None)
    assert next(x for x in listed_sessions if x["current"])["screen_app"] is None


def test_the_question_names_the_apps_signed_in_on_each_device(make_server):
    """An app's sign-in is kept by its session; the device's next recorded activity writes it to its seat, in the
    write that activity makes anyway, and the question names it from there."""
    from relying_parties import service as apps
    from relying_parties.models import OidcClient
    from tests.support.live import FakeClock, on_clock
    from tests.support.oidc import signed_in_tokens
    url, ctx = make_server(max_concurrent_devices=2)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    b, c = add_device(ctx, a, name="Tablet B"), add_device(ctx, a, name="Laptop C")
    on_clock(clock, a, b, c)
    a.login(PASSWORD)
    b.login(PASSWORD)
    redirect = "https://app.example/callback"
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(redirect,)))
    signed_in_tokens(url, credentials, b, redirect_uri=redirect)
    clock.advance(61)   # past the touch interval: b's next request records its activity
    assert _me(b)[0] == 200
    listed = {d["device_id"]: d["apps"] for d in _asked(c).active_devices}
    assert listed == {a.key_file.device_id: [],
                      b.key_file.device_id: [{"client_id": credentials.app.client_id, "name": "Notes"}]}
