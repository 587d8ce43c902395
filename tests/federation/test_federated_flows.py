"""What a provider's answer (the ticket) lets a browser do, over HTTP on DynamoDB Local (SPEC §16): sign up
(account + first device + link in one transaction, no password), then sign in with that device's proof under
the device rule and the limit, exactly as a password login; an answer carrying someone else's e-mail never
reaches their account; the linked account's devices only; bad bodies are problem+json with a code."""
from __future__ import annotations

import pytest
import requests

from accounts import user_service as users
from federation import identities
from flows.for_federation import link_signed_in
from tests.support.federation_flows import federation_app, identity, post, proof, provider, sign_up, ticket
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, register_device, settle_background
from tests.support.mailbox import Mailbox
from tests.support.waiting import wait_until


@pytest.fixture
def served(base_config):
    with federation_app(base_config) as (url, ctx):
        ctx.notifier.backend = Mailbox()
        yield url, ctx


def mails(ctx, event: str, email: str) -> list:
    return [m for m in ctx.notifier.backend.messages if m.event == event and m.email == email]


def me(url: str, access_token: str) -> tuple[int, str | None]:
    answer = requests.get(url + "/session/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30)
    return answer.status_code, answer.json().get("reason")


def test_sign_up_then_sign_in_with_the_new_device(served):
    url, ctx = served
    name = provider(ctx)
    who = identity(name, email="new.person@example.com", verified=True)
    value = ticket(ctx, who)
    made, device = sign_up(url, value)
    assert made.status_code == 201, made.text
    assert len(made.json()["recovery_codes"]) == 10
    user = users.get_user(ctx, user_uuid=device.key_file.user_uuid)
    assert user.password_hash == "" and user.email == "new.person@example.com" and user.email_verified
    assert identities.owner_of(ctx, issuer=who.issuer, sub=who.sub) == user.user_uuid
    signed = post(url, "/federation/login", proof(device), ticket_value=value)
    assert signed.status_code == 200, signed.text
    assert signed.json()["user_uuid"] == user.user_uuid and me(url, signed.json()["access_token"])[0] == 200
    # the enrolled ticket was good for one sign-in
    again = post(url, "/federation/login", proof(device), ticket_value=value)
    assert problem(again)[:2] == (401, "federation_ticket_invalid")
    # a later answer of the same identity signs in too
    later = post(url, "/federation/login", proof(device), ticket_value=ticket(ctx, who))
    assert later.status_code == 200, later.text
    listed = requests.get(url + "/federation/identities", timeout=30,
                          headers={"Authorization": f"Bearer {later.json()['access_token']}"}).json()["identities"]
    assert [(i["provider"], i["display_name"], i["email"]) for i in listed] == [(name, "Acme", who.email)]


def test_an_unverified_address_is_not_taken_as_verified(served):
    url, ctx = served
    _, device = sign_up(url, ticket(ctx, identity(provider(ctx), email="unverified@example.com", verified=False)))
    user = users.get_user(ctx, user_uuid=device.key_file.user_uuid)
    assert user.email == "unverified@example.com" and not user.email_verified


def test_a_provider_without_signup_makes_no_account(served):
    url, ctx = served
    made, _ = sign_up(url, ticket(ctx, identity(provider(ctx, signup="deny"))))
    assert problem(made)[:2] == (403, "federation_signup_closed")


@pytest.mark.parametrize("verified", [True, False])
def test_an_answer_with_the_victims_address_never_reaches_the_victim(served, verified):
    url, ctx = served
    victim = register_device(url)
    victim_email = f"{victim.key_file.username}@example.com"
    name = provider(ctx)
    attacker = identity(name, email=victim_email, verified=verified)
    # signing in with it on the victim's device: the identity is linked to no account
    refused = post(url, "/federation/login", proof(victim), ticket_value=ticket(ctx, attacker))
    assert problem(refused)[:2] == (404, "identity_not_found")
    # asking for a link mails the victim only, and links nothing until the victim opens it
    asked = post(url, "/federation/link/mail", {}, ticket_value=ticket(ctx, attacker))
    assert asked.status_code == 202, asked.text
    body = wait_until(lambda: mails(ctx, "federation_link", victim_email), what="the link mail")[-1].body
    assert all(m.email == victim_email for m in ctx.notifier.backend.messages if m.event == "federation_link")
    assert identities.owner_of(ctx, issuer=attacker.issuer, sub=attacker.sub) is None
    # signing up with it gives a separate account that does not hold the address
    made, device = sign_up(url, ticket(ctx, attacker))
    assert made.status_code == 201, made.text
    own = users.get_user(ctx, user_uuid=device.key_file.user_uuid)
    assert own.user_uuid != victim.key_file.user_uuid and own.email == "" and not own.email_verified
    assert users.find_user_by_email(ctx, email=victim_email).user_uuid == victim.key_file.user_uuid
    # the victim's link now finds the identity taken: nothing of the victim's changes
    token = body.split("#federation-link=")[1].split()[0]
    confirmed = post(url, "/federation/link/confirm", {"token": token})
    assert problem(confirmed)[:2] == (409, "identity_linked_elsewhere")
    assert not users.get_user(ctx, user_uuid=victim.key_file.user_uuid).identities


def test_the_mailed_link_links_when_the_account_holder_opens_it(served):
    url, ctx = served
    holder = register_device(url)
    email = f"{holder.key_file.username}@example.com"
    who = identity(provider(ctx), email=email, verified=True)
    assert post(url, "/federation/link/mail", {}, ticket_value=ticket(ctx, who)).status_code == 202
    body = wait_until(lambda: mails(ctx, "federation_link", email), what="the link mail")[-1].body
    token = body.split("#federation-link=")[1].split()[0]
    assert post(url, "/federation/link/confirm", {"token": token}).status_code == 200
    assert identities.owner_of(ctx, issuer=who.issuer, sub=who.sub) == holder.key_file.user_uuid
    assert problem(post(url, "/federation/link/confirm", {"token": token}))[:2] == (400, "federation_ticket_invalid")
    wait_until(lambda: mails(ctx, "identity_linked", email), what="the linked mail")
    # a stranger's address: the same answer, no mail
    assert post(url, "/federation/link/mail", {}, ticket_value=ticket(
        ctx, identity(who.provider, email="nobody-here@example.com"))).status_code == 202
    settle_background(ctx)
    assert mails(ctx, "federation_link", "nobody-here@example.com") == []


def test_link_with_password_and_device_then_signed_in(served):
    url, ctx = served
    account = register_device(url)
    who = identity(provider(ctx))
    linked = post(url, "/federation/link", {"username": account.key_file.username, "password": PASSWORD,
                                            **proof(account)}, ticket_value=ticket(ctx, who))
    assert linked.status_code == 200, linked.text
    assert identities.owner_of(ctx, issuer=who.issuer, sub=who.sub) == account.key_file.user_uuid
    wrong = post(url, "/federation/link", {"username": account.key_file.username, "password": "wrong password",
                                           **proof(account)}, ticket_value=ticket(ctx, identity(who.provider)))
    assert problem(wrong)[:2] == (401, "invalid_credentials")


def test_a_federated_sign_in_over_the_limit_asks_and_displaces(base_config):
    with federation_app(base_config, max_concurrent_devices=1) as (url, ctx):
        first = register_device(url)
        first.login(PASSWORD)
        second = add_device(ctx, first, name="Phone")
        who = identity(provider(ctx, display_name="Google"))
        link_signed_in(ctx, user_uuid=first.key_file.user_uuid, session_id=first.tokens()["session_id"],
                       identity=who)
        asked = post(url, "/federation/login", proof(second), ticket_value=ticket(ctx, who))
        status, code, _ = problem(asked)
        assert (status, code) == (409, "concurrent_login")
        assert [d["device_id"] for d in asked.json()["active_devices"]] == [first.key_file.device_id]
        confirmed = requests.post(url + "/login/confirm", json={"confirm_token": asked.json()["confirm_token"]},
                                  timeout=30)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["evicted"] == [{"device_id": first.key_file.device_id,
                                                "device_name": first.key_file.device_name}]
        ended = first.request("GET", "/session/me")
        assert (ended.status_code, ended.json().get("reason")) == (401, "displaced")
        history = requests.get(url + "/session/history", timeout=30, headers={
            "Authorization": f"Bearer {confirmed.json()['access_token']}"}).json()["items"]
        assert history[0]["result"] == "success" and history[0]["provider"] == "Google"
        assert history[0]["device_id"] == second.key_file.device_id
        assert any(item["result"] == "identity_linked" and item["provider"] == "Google" for item in history)


def test_the_device_must_be_the_linked_accounts(served):
    url, ctx = served
    owner, stranger = register_device(url), register_device(url)
    who = identity(provider(ctx))
    owner.login(PASSWORD)
    link_signed_in(ctx, user_uuid=owner.key_file.user_uuid, session_id=owner.tokens()["session_id"], identity=who)
    refused = post(url, "/federation/login", proof(stranger), ticket_value=ticket(ctx, who))
    assert problem(refused)[:2] == (401, "certificate_mismatch")


def test_a_sign_up_device_signs_in_only_with_its_own_enrolled_ticket(served):
    url, ctx = served
    who = identity(provider(ctx))
    value = ticket(ctx, who)
    _, device = sign_up(url, value)
    other = add_device(ctx, device, name="Other")
    refused = post(url, "/federation/login", proof(other), ticket_value=value)
    assert problem(refused)[:2] == (401, "certificate_mismatch")


@pytest.mark.parametrize("path", ["/federation/login", "/federation/signup", "/federation/link",
                                  "/federation/link/confirm"])
def test_bad_bodies_are_problems_with_a_code(served, path):
    url, _ = served
    for body in ("not json", [1, 2], {"username": 7, "client_cert": ["x"], "token": None}):
        answer = requests.post(url + path, data=body if isinstance(body, str) else None,
                               json=None if isinstance(body, str) else body, timeout=30,
                               headers={"Content-Type": "application/json"})
        status, code, _ = problem(answer)
        assert 400 <= status < 500 and code, (path, body, answer.text)


def test_no_ticket_is_federation_ticket_invalid(served):
    url, ctx = served
    device = register_device(url)
    for path, body in (("/federation/login", proof(device)), ("/federation/link/mail", {})):
        assert problem(post(url, path, body, ticket_value="forged"))[:2] == (401, "federation_ticket_invalid")
    made, _ = sign_up(url, "forged")
    assert problem(made)[:2] == (401, "federation_ticket_invalid")
