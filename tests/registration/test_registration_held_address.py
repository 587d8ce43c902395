"""Registering with an e-mail address that another account holds (SPEC §4): the answer is that of a
free address, the new account is stored without the address's claim and never counts as its owner
(reset, mail, lookups), the holder's account is untouched and its owner is told by mail, at most
once an hour."""
from __future__ import annotations

import re
import threading

import pytest
import requests

from accounts import user_service as users
from accounts.user_store import EMAIL_UNCLAIMED, email_claim
from citylogin.client.api import Client
from flows import registration
from oidc.core import claims as oidc_claims
from tests.conftest import unique_name
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, settle_background, verify_address
from common.runtime.context import AppContext

NOTICE = "registered_with_your_address"
VERIFY_LINK = re.compile(r"/#verify=([A-Za-z0-9_-]+)")
RESET_LINK = re.compile(r"/#reset=([A-Za-z0-9_-]+)")


class Recorder:
    def __init__(self) -> None:
        self.messages: list = []

    def send(self, message) -> None:
        self.messages.append(message)

    def to(self, email: str) -> list:
        return [m for m in self.messages if m.email and m.email.casefold() == email.casefold()]

    def of(self, user_uuid: str) -> list:
        return [m for m in self.messages if m.user_uuid == user_uuid]


@pytest.fixture
def server(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def post_registration(url: str, *, email: str, username: str | None = None) -> requests.Response:
    return requests.post(url + "/registration/", timeout=60, json={
        "username": username or unique_name(), "email": email, "password": PASSWORD})


def registered(url: str, email: str) -> Client:
    client = Client(url)
    client.register(username=unique_name(), email=email, password=PASSWORD)
    return client


def logged_in(url: str, email: str) -> Client:
    client = registered(url, email)
    client.login(PASSWORD)
    return client


def raw_user(ctx: AppContext, user_uuid: str) -> dict:
    return ctx.dynamodb.get_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": user_uuid}},
                                 ConsistentRead=True)["Item"]


def raw_claim(ctx: AppContext, email: str) -> dict | None:
    return ctx.dynamodb.get_item(TableName=ctx.tables.claims, Key={"claim": {"S": email_claim(email)}},
                                 ConsistentRead=True).get("Item")


def reset(url: str, email: str) -> requests.Response:
    return requests.post(url + "/account/password_reset", json={"email": email}, timeout=30)


def test_a_held_address_gets_the_answer_of_a_free_one(server):
    url, ctx, _ = server
    address = f"{unique_name()}@example.com"
    free = post_registration(url, email=address)
    held = post_registration(url, email=address.upper())
    assert (held.status_code, held.headers["Content-Type"]) == (free.status_code, free.headers["Content-Type"])
    assert free.status_code == 201
    assert sorted(held.json()) == sorted(free.json())
    assert held.json()["message"] == free.json()["message"]
    assert len(held.json()["recovery_codes"]) == len(free.json()["recovery_codes"]) == 10
    assert users.email_holder(ctx, email=address) == free.json()["uuid"]
    stored = raw_user(ctx, held.json()["uuid"])
    assert stored["email"]["S"].casefold() == address.casefold() and stored[EMAIL_UNCLAIMED] == {"BOOL": True}
    assert EMAIL_UNCLAIMED not in raw_user(ctx, free.json()["uuid"])


def test_the_holder_is_told_and_nothing_is_sent_to_the_address_for_the_new_account(server):
    url, ctx, recorder = server
    address = f"{unique_name()}@example.com"
    holder = registered(url, address)
    newcomer = registered(url, address.upper())
    settle_background(ctx)
    assert recorder.of(newcomer.key_file.user_uuid) == []  # no welcome, no verification link, anywhere
    [notice] = [m for m in recorder.messages if m.event == NOTICE]
    assert (notice.user_uuid, notice.email) == (holder.key_file.user_uuid, address)
    assert holder.key_file.username in notice.body and newcomer.key_file.username not in notice.body
    assert "#verify=" not in notice.body and "#reset=" not in notice.body  # nothing that acts by itself
    assert [m.event for m in recorder.to(address)] == ["registered", "verify_email", NOTICE]


def test_the_notice_goes_to_an_address_at_most_once_an_hour(server):
    url, ctx, recorder = server
    ctx.clock = clock = FakeClock()
    address = f"{unique_name()}@example.com"
    holder = registered(url, address)
    for _ in range(3):
        assert post_registration(url, email=address).status_code == 201
    settle_background(ctx)
    assert [m.user_uuid for m in recorder.to(address) if m.event == NOTICE] == [holder.key_file.user_uuid]
    clock.advance(3600)
    assert post_registration(url, email=address).status_code == 201
    settle_background(ctx)
    assert [m.user_uuid for m in recorder.to(address) if m.event == NOTICE] == [holder.key_file.user_uuid] * 2
    stored = repr(ctx.dynamodb.scan(TableName=ctx.tables.rate_limits)["Items"]).casefold()
    assert address.casefold() not in stored


def test_nothing_of_the_holders_account_changes(server):
    url, ctx, _ = server
    address = f"{unique_name()}@example.com"
    holder = logged_in(url, address)
    before = raw_user(ctx, holder.key_file.user_uuid), raw_claim(ctx, address)
    newcomer = registered(url, address)
    settle_background(ctx)
    assert (raw_user(ctx, holder.key_file.user_uuid), raw_claim(ctx, address)) == before
    assert before[1] == {"claim": {"S": email_claim(address)}, "user_uuid": {"S": holder.key_file.user_uuid}}
    assert holder.get_json("/account")["email"] == address
    assert newcomer.key_file.user_uuid != holder.key_file.user_uuid


def test_a_reset_for_the_address_mails_a_link_for_the_holder_only(server):
    url, ctx, recorder = server
    address = f"{unique_name()}@example.com"
    holder = registered(url, address)
    registered(url, address)
    assert reset(url, address.upper()).status_code == 202
    settle_background(ctx)
    [sent] = [m for m in recorder.messages if m.event == "password_reset"]
    assert (sent.user_uuid, sent.email) == (holder.key_file.user_uuid, address)
    token = RESET_LINK.search(sent.body).group(1)
    confirmed = requests.post(url + "/account/password_reset/confirm", timeout=30,
                              json={"token": token, "new_password": "a brand new long passphrase"})
    assert confirmed.status_code == 204
    assert holder.login("a brand new long passphrase")["user_uuid"] == holder.key_file.user_uuid


def test_the_new_account_shows_the_address_unverified_and_its_mail_goes_nowhere(server):
    url, ctx, recorder = server
    address = f"{unique_name()}@example.com"
    holder = registered(url, address)
    newcomer = logged_in(url, address)
    me = newcomer.get_json("/account")
    assert (me["email"], me["email_verified"]) == (address, False)
    assert newcomer.request("POST", "/account/verify_email/resend").status_code == 202
    changed = newcomer.request("POST", "/account/password", json={
        "current_password": PASSWORD, "new_password": "another long passphrase"})
    assert changed.status_code == 204
    settle_background(ctx)
    mails = recorder.of(newcomer.key_file.user_uuid)
    assert "password_changed" in [m.event for m in mails] and all(not m.email for m in mails)
    assert [m.event for m in recorder.to(address)] == ["registered", "verify_email", NOTICE]
    assert users.find_user_by_email(ctx, email=address).user_uuid == holder.key_file.user_uuid


def test_apps_are_not_told_an_address_the_account_does_not_hold(server):
    url, ctx, _ = server
    address = f"{unique_name()}@example.com"
    holder, newcomer = registered(url, address), registered(url, address)
    # Unverified, the holder's address is not told either (SPEC §14 Userinfo): the two look the same.
    assert oidc_claims.of_user(ctx, user_uuid=holder.key_file.user_uuid, scope="openid email") == {}
    assert oidc_claims.of_user(ctx, user_uuid=newcomer.key_file.user_uuid, scope="openid email profile").keys() == \
        {"preferred_username", "locale", "zoneinfo"}
    verify_address(ctx, user_uuid=holder.key_file.user_uuid)
    assert oidc_claims.of_user(ctx, user_uuid=holder.key_file.user_uuid, scope="openid email") == \
        {"email": address, "email_verified": True}
    assert "email" not in oidc_claims.of_user(ctx, user_uuid=newcomer.key_file.user_uuid, scope="openid email")


def test_the_new_account_takes_an_address_only_by_verifying_a_change(server):
    url, ctx, recorder = server
    address, own = f"{unique_name()}@example.com", f"{unique_name()}@example.net"
    holder = registered(url, address)
    newcomer = logged_in(url, address)

    # Asking for the held address again: the link goes to its mailbox, and the claim stays where it is.
    assert newcomer.request("POST", "/account/email", json={"password": PASSWORD, "new_email": address}).status_code \
        == 202
    token = VERIFY_LINK.search(recorder.to(address)[-1].body).group(1)
    assert problem(requests.post(url + "/account/verify_email", json={"token": token}, timeout=30))[:2] == \
        (409, "email_taken")

    assert newcomer.request("POST", "/account/email", json={"password": PASSWORD, "new_email": own}).status_code \
        == 202
    assert [m.event for m in recorder.of(newcomer.key_file.user_uuid) if m.email] == ["verify_email", "verify_email"]
    token = VERIFY_LINK.search(recorder.to(own)[-1].body).group(1)
    assert requests.post(url + "/account/verify_email", json={"token": token}, timeout=30).status_code == 200
    me = newcomer.get_json("/account")
    assert (me["email"], me["email_verified"]) == (own, True)
    assert users.email_holder(ctx, email=own) == newcomer.key_file.user_uuid
    assert users.email_holder(ctx, email=address) == holder.key_file.user_uuid
    assert EMAIL_UNCLAIMED not in raw_user(ctx, newcomer.key_file.user_uuid)
    assert users.get_user(ctx, user_uuid=newcomer.key_file.user_uuid).email == own  # mail goes there now


def test_the_holders_deletion_does_not_hand_the_address_over(server):
    url, ctx, recorder = server
    address = f"{unique_name()}@example.com"
    holder = logged_in(url, address)
    newcomer = logged_in(url, address)
    holder.delete_account(PASSWORD)
    assert raw_claim(ctx, address) is None
    assert reset(url, address).status_code == 202
    settle_background(ctx)
    assert [m for m in recorder.messages if m.event == "password_reset"] == []
    assert users.get_user(ctx, user_uuid=newcomer.key_file.user_uuid).email == ""
    assert newcomer.get_json("/account")["email_verified"] is False
    assert newcomer.request("POST", "/account/verify_email/resend").status_code == 202
    settle_background(ctx)
    assert [m for m in recorder.of(newcomer.key_file.user_uuid) if m.email] == []
    newcomer.delete_account(PASSWORD)  # its username is freed; the address was never its to free
    assert registered(url, address).key_file.user_uuid == users.email_holder(ctx, email=address)
    assert post_registration(url, email=f"{unique_name()}@example.com",
                             username=newcomer.key_file.username).status_code == 201


@pytest.mark.parametrize("round_", range(2))
def test_racing_registrations_with_one_free_address_leave_exactly_one_holder(server, round_):
    url, ctx, _ = server
    name = unique_name()
    variants = [f"{name}@Example.com", f"{name}@example.com".upper(), f"{name}@example.com"] * 2
    barrier, answers = threading.Barrier(len(variants)), [None] * len(variants)

    def post(i: int) -> None:
        barrier.wait()
        answers[i] = post_registration(url, email=variants[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(variants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [a.status_code for a in answers] == [201] * len(variants), [a.text for a in answers]
    uuids = [a.json()["uuid"] for a in answers]
    holder = users.email_holder(ctx, email=variants[0])
    assert holder in uuids
    unclaimed = [u for u in uuids if EMAIL_UNCLAIMED in raw_user(ctx, u)]
    assert sorted(unclaimed) == sorted(u for u in uuids if u != holder)


def test_a_stale_read_is_corrected_by_the_transaction(server, monkeypatch):
    """The claim read before the transaction only picks the likely path: an address taken after
    it leaves the account without it, one freed after it is taken."""
    url, ctx, _ = server
    taken = f"{unique_name()}@example.com"
    first = post_registration(url, email=taken).json()["uuid"]
    monkeypatch.setattr(users, "email_holder", lambda ctx, *, email: None)  # "free" when read
    late = post_registration(url, email=taken)
    assert late.status_code == 201 and EMAIL_UNCLAIMED in raw_user(ctx, late.json()["uuid"])
    assert raw_claim(ctx, taken)["user_uuid"]["S"] == first

    free = f"{unique_name()}@example.com"
    monkeypatch.setattr(users, "email_holder", lambda ctx, *, email: "someone")  # "held" when read
    early = post_registration(url, email=free)
    assert early.status_code == 201 and EMAIL_UNCLAIMED not in raw_user(ctx, early.json()["uuid"])
    assert raw_claim(ctx, free)["user_uuid"]["S"] == early.json()["uuid"]


def test_an_address_that_keeps_changing_hands_is_a_503_not_a_half_written_account(server, monkeypatch):
    url, ctx, _ = server
    attempts = []

    def flapping(ctx, **kwargs):
        attempts.append(kwargs["holds_email"])
        raise users.EmailTaken() if kwargs["holds_email"] else users.EmailNotTaken()

    monkeypatch.setattr(users, "create_user", flapping)
    name = unique_name()
    answer = post_registration(url, email=f"{name}@example.com", username=name)
    assert problem(answer)[:2] == (503, "service_unavailable")
    assert len(attempts) == registration.CLAIM_ATTEMPTS
    assert users.find_user(ctx, username=name) is None
