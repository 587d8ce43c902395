"""The account's e-mail address (SPEC §4): the verification link sent at registration, resend,
a change of address that takes effect when its link is used (the uniqueness claim moves with
it), and PATCH /account's locale."""
from __future__ import annotations

import logging
import re
import threading

import pytest
import requests

from accounts import user_service as users
from citylogin.client.api import Client
from tests.conftest import unique_name
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, register_device

LINK = re.compile(r"(\S+)/#verify=([A-Za-z0-9_-]+)")


class Recorder:
    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)

    def last(self, event: str, email: str):
        return [m for m in self.messages if m.event == event and m.email == email][-1]


def token_in(message) -> str:
    return LINK.search(message.body).group(2)


def verify(url: str, token: str) -> requests.Response:
    return requests.post(url + "/account/verify_email", json={"token": token}, timeout=30)


def email_of(client: Client) -> str:
    return f"{client.key_file.username}@example.com"


def logged_in(url: str) -> Client:
    client = register_device(url)
    client.login(PASSWORD)
    return client


def change_email(client: Client, new_email: str, password: str = PASSWORD) -> requests.Response:
    return client.request("POST", "/account/email", json={"password": password, "new_email": new_email})


def register(url: str, email: str) -> Client:
    client = Client(url)
    client.register(username=unique_name(), email=email, password=PASSWORD)
    return client


@pytest.fixture
def server(make_server):
    url, ctx = make_server(public_url="https://login.example.org")
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def test_the_registration_link_verifies_the_address_once(server):
    url, _, recorder = server
    client = logged_in(url)
    assert client.get_json("/account")["email_verified"] is False
    message = recorder.last("verify_email", email_of(client))
    assert LINK.search(message.body).group(1) == "https://login.example.org"
    token = token_in(message)
    assert len(token) >= 22  # >= 128 bits of URL-safe base64

    answer = verify(url, token)
    assert answer.status_code == 200 and answer.json() == {"email_verified": True}
    assert client.get_json("/account")["email_verified"] is True
    assert problem(verify(url, token))[:2] == (400, "invalid_verification_token")
    assert problem(verify(url, "no-such-token"))[:2] == (400, "invalid_verification_token")


def test_the_token_is_stored_only_as_a_digest_and_expires(server):
    url, ctx, recorder = server
    client = logged_in(url)
    token = token_in(recorder.last("verify_email", email_of(client)))
    stored = repr(ctx.dynamodb.scan(TableName=ctx.tables.one_time_tokens)["Items"])
    assert token not in stored
    ctx.clock = clock = FakeClock()
    clock.advance(24 * 3600 + 1)
    assert problem(verify(url, token))[:2] == (400, "invalid_verification_token")

def test_the_console_notifier_logs_the_whole_message(make_server, caplog):
    url, _ = make_server()
    with caplog.at_level(logging.INFO, logger="citylogin.notify"):
        client = register_device(url)
    assert email_of(client) in caplog.text and "http://localhost:5000/#verify=" in caplog.text


def test_resend_sends_a_new_link_and_is_rate_limited(server):
    url, _, recorder = server
    client = logged_in(url)
    first = token_in(recorder.last("verify_email", email_of(client)))
    answer = client.request("POST", "/account/verify_email/resend")
    assert answer.status_code == 202
    second = token_in(recorder.last("verify_email", email_of(client)))
    assert second != first and verify(url, second).status_code == 200
    for _ in range(4):
        assert client.request("POST", "/account/verify_email/resend").status_code == 202
    limited = client.request("POST", "/account/verify_email/resend")
    assert problem(limited)[:2] == (429, "rate_limited") and int(limited.headers["Retry-After"]) > 0


def test_a_change_of_address_takes_effect_with_its_link_and_moves_the_claim(server):
    url, ctx, recorder = server
    client = logged_in(url)
    old, new = email_of(client), f"{unique_name()}@example.net"
    assert change_email(client, new).status_code == 202
    notice = recorder.last("email_change_requested", old)
    assert new in notice.body and "#verify=" not in notice.body
    token = token_in(recorder.last("verify_email", new))
    assert client.get_json("/account")["email"] == old  # not before the link is used

    assert verify(url, token).status_code == 200
    me = client.get_json("/account")
    assert me["email"] == new and me["email_verified"] is True
    assert users.email_holder(ctx, email=old) is None  # the old address is free
    assert users.email_holder(ctx, email=new.upper()) == client.key_file.user_uuid
    register(url, old)
    assert users.email_holder(ctx, email=old) not in (None, client.key_file.user_uuid)
    # A registration with the new address is not refused (SPEC §4), nor given the address.
    register(url, new.upper())
    assert users.email_holder(ctx, email=new) == client.key_file.user_uuid


def test_a_change_needs_the_password_and_a_valid_address(server):
    url, _, recorder = server
    client = logged_in(url)
    assert problem(change_email(client, "x@example.net", password="wrong password"))[:2] == \
        (401, "invalid_credentials")
    assert [m for m in recorder.messages if m.email == "x@example.net"] == []
    assert problem(change_email(client, "not an address"))[:2] == (400, "invalid_field")


def test_an_address_taken_meanwhile_is_409_and_the_link_stays_usable(server):
    url, _, recorder = server
    client = logged_in(url)
    new = f"{unique_name()}@example.net"
    assert change_email(client, new).status_code == 202
    token = token_in(recorder.last("verify_email", new))
    register(url, new)
    assert problem(verify(url, token))[:2] == (409, "email_taken")
    assert client.get_json("/account")["email"] == email_of(client)


def test_two_accounts_racing_for_one_address_exactly_one_wins(server):
    url, _, recorder = server
    new = f"{unique_name()}@example.net"
    clients = [logged_in(url) for _ in range(2)]
    tokens = []
    for client in clients:
        assert change_email(client, new).status_code == 202
        tokens.append(token_in(recorder.last("verify_email", new)))
    barrier, answers = threading.Barrier(2), [None, None]

    def use(i: int) -> None:
        barrier.wait()
        answers[i] = verify(url, tokens[i])

    threads = [threading.Thread(target=use, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409], [a.text for a in answers]
    loser = answers[0] if answers[0].status_code == 409 else answers[1]
    assert problem(loser)[1] == "email_taken"
    emails = [c.get_json("/account")["email"] for c in clients]
    assert emails.count(new) == 1


def test_patch_sets_the_locale(server):
    url, _, _ = server
    client = logged_in(url)
    answer = client.request("PATCH", "/account", json={"locale": "ja"})
    assert answer.status_code == 200 and answer.json()["locale"] == "ja"
    assert client.get_json("/account")["locale"] == "ja"
    assert problem(client.request("PATCH", "/account", json={"locale": "fr"}))[:2] == (400, "invalid_field")
    assert problem(client.request("PATCH", "/account", json={}))[:2] == (400, "missing_fields")
    assert client.get_json("/account")["locale"] == "ja"
