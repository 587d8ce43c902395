"""The Python client at the device limit, against the all-in-one app on DynamoDB Local: the 409
concurrent_login lists the devices that could go, and the person's choice (`displace`) signs out exactly
that one, by `confirm`, by the same login again or by a screen's approval; a choice that is not one of
them is refused, and a chosen device that ended meanwhile brings a fresh list."""
from __future__ import annotations

import pytest

from citylogin.client.api import Client, CityloginError, ConcurrentLoginRequired
from tests.support.device_flow import ask, screen_app
from tests.support.live import PASSWORD, add_device, register_device


@pytest.fixture
def full(make_server):
    """An account at its limit of two: `first` (logged in first: the default to go), `second`, and
    `third`, not logged in; and the server's context."""
    url, ctx = make_server(max_concurrent_devices=2)
    first = register_device(url)
    first.login(PASSWORD)
    second = add_device(ctx, first, name="phone", device_class="mobile")
    second.login(PASSWORD)
    third = add_device(ctx, first, name="laptop", device_class="desktop")
    return first, second, third, ctx


def refused(client: Client) -> ConcurrentLoginRequired:
    with pytest.raises(ConcurrentLoginRequired) as asked:
        client.login(PASSWORD)
    return asked.value


def assert_displaced(client: Client) -> None:
    answer = client.request("GET", "/session/me")
    assert answer.status_code == 401, answer.text
    assert (answer.json()["code"], answer.json()["reason"]) == ("session_revoked", "displaced")


def assert_live(client: Client) -> None:
    assert client.me()["session_id"] == client.session_id


def test_the_409_lists_each_device_that_could_go_with_its_session_and_the_default(full):
    first, second, third, _ = full
    asked = refused(third)
    assert (asked.needed, asked.action) == (1, {"kind": "login"})
    assert [(d.session_id, d.device_id, d.device_name, d.current, d.default) for d in asked.devices] == [
        (first.session_id, first.key_file.device_id, first.key_file.device_name, False, True),
        (second.session_id, second.key_file.device_id, "phone", False, False)]
    assert asked.devices[1].device_class == "mobile" and asked.devices[1].apps == ()
    assert asked.devices[0].login_at and asked.devices[0].last_seen_at
    assert asked.defaults == [first.session_id]
    assert asked.active_devices[1]["session_id"] == second.session_id  # the server's JSON, as before


def test_confirm_with_displace_signs_out_the_chosen_device_not_the_default(full):
    first, second, third, _ = full
    asked = refused(third)
    answer = third.confirm(asked.confirm_token, displace=[second.session_id])
    assert [d["device_id"] for d in answer["evicted"]] == [second.key_file.device_id]
    assert_displaced(second)
    assert_live(first)
    assert_live(third)


def test_the_same_login_again_with_displace_signs_out_the_chosen_device(full):
    first, second, third, _ = full
    refused(third)
    answer = third.login(PASSWORD, displace=[second.session_id])  # naming it is the person's yes
    assert [d["device_id"] for d in answer["evicted"]] == [second.key_file.device_id]
    assert_displaced(second)
    assert_live(first)


def test_a_choice_not_listed_is_refused_and_the_token_still_confirms_the_default(full):
    first, second, third, _ = full
    asked = refused(third)
    with pytest.raises(CityloginError) as wrong:
        third.confirm(asked.confirm_token, displace=["0" * 32])
    assert (wrong.value.status, wrong.value.code, wrong.value.body.get("field")) == (400, "invalid_field", "displace")
    assert_live(first)
    assert_live(second)
    answer = third.confirm(asked.confirm_token)  # nothing changed, the token is not spent: the default goes
    assert [d["device_id"] for d in answer["evicted"]] == [first.key_file.device_id]
    assert_displaced(first)
    assert_live(second)


def test_a_chosen_device_that_ended_meanwhile_brings_a_fresh_list(full):
    first, second, third, ctx = full
    asked = refused(third)
    gone = second.session_id
    second.logout()
    fourth = add_device(ctx, first, name="tablet")
    fourth.login(PASSWORD)  # the freed seat is taken again
    with pytest.raises(ConcurrentLoginRequired) as again:
        third.confirm(asked.confirm_token, displace=[gone])
    fresh = again.value
    assert [d.session_id for d in fresh.devices] == [first.session_id, fourth.session_id]
    assert fresh.confirm_token and fresh.confirm_token != asked.confirm_token
    third.confirm(fresh.confirm_token, displace=[fourth.session_id])
    assert_displaced(fourth)
    assert_live(first)


def test_approving_a_screen_at_the_limit_signs_out_the_device_the_person_chose(make_server):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=2)
    credentials = screen_app(ctx)
    phone = register_device(url)
    phone.login(PASSWORD)
    laptop = add_device(ctx, phone, name="laptop", device_class="desktop")
    laptop.login(PASSWORD)
    code = ask(url, credentials).json()["user_code"]
    with pytest.raises(ConcurrentLoginRequired) as asked:
        phone.approve_screen(code, device_name="Living-room TV")
    in_use = asked.value
    assert in_use.action["kind"] == "screen" and in_use.action["device_name"] == "Living-room TV"
    assert in_use.confirm_token is None
    assert [(d.session_id, d.current, d.default) for d in in_use.devices] == [
        (phone.session_id, True, True), (laptop.session_id, False, False)]  # the phone's own seat is the default
    approved = phone.approve_screen(code, device_name="Living-room TV", displace=[laptop.session_id])
    assert approved["status"] == "approved"
    assert [d["device_id"] for d in approved["evicted"]] == [laptop.key_file.device_id]
    assert_displaced(laptop)
    assert_live(phone)
