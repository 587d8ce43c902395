"""The invariants of SPEC §16 under real concurrent requests on DynamoDB Local: one ticket makes one account
and one sign-in; an identity is linked to one account; two unlinks of an account's last two ways in leave one
(409 last_way_in for the other). Unlink's refusals: 404 identity_not_found, and the last way in kept."""
from __future__ import annotations


import pytest
import requests

from federation import identities
from flows.for_federation import link_signed_in
from tests.support.federation_flows import at_once, federation_app, identity, post, proof, provider, sign_up, ticket
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, register_device

RACERS = 4


@pytest.fixture
def served(base_config):
    with federation_app(base_config, max_concurrent_devices=0) as (url, ctx):
        yield url, ctx



def unlink(url: str, access_token: str, link_id: str) -> requests.Response:
    return requests.delete(f"{url}/federation/identities/{link_id}", timeout=60,
                           headers={"Authorization": f"Bearer {access_token}"})


def test_signups_racing_with_one_ticket_make_one_account(served):
    url, ctx = served
    who = identity(provider(ctx))
    value = ticket(ctx, who)
    answers = at_once([lambda: sign_up(url, value)[0] for _ in range(RACERS)])
    made = [a.json()["uuid"] for a in answers if a.status_code == 201]
    assert len(made) == 1, [a.text for a in answers]
    # a loser reads the ticket spent, or (reading after the winner committed) the identity linked
    assert {problem(a)[:2] for a in answers if a.status_code != 201} <= {
        (401, "federation_ticket_invalid"), (409, "identity_linked_elsewhere")}
    assert identities.owner_of(ctx, issuer=who.issuer, sub=who.sub) == made[0]


def test_links_of_one_identity_to_several_accounts_link_one(served):
    url, ctx = served
    accounts = [register_device(url) for _ in range(RACERS)]
    for account in accounts:
        account.login(PASSWORD)
    who = identity(provider(ctx))

    def link(account):
        def call():
            try:
                return link_signed_in(ctx, user_uuid=account.key_file.user_uuid,
                                      session_id=account.tokens()["session_id"], identity=who)
            except identities.IdentityLinkedElsewhere as refused:
                return refused
        return call
    results = at_once([link(a) for a in accounts])
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    owner = identities.owner_of(ctx, issuer=who.issuer, sub=who.sub)
    winners = [a.key_file.user_uuid for a, r in zip(accounts, results, strict=True) if not isinstance(r, Exception)]
    assert winners == [owner]


def test_sign_ins_racing_with_one_ticket_sign_in_once(served):
    url, ctx = served
    account = register_device(url)
    account.login(PASSWORD)
    devices = [add_device(ctx, account, name=f"device {i}") for i in range(RACERS)]
    who = identity(provider(ctx))
    link_signed_in(ctx, user_uuid=account.key_file.user_uuid, session_id=account.tokens()["session_id"], identity=who)
    value = ticket(ctx, who)
    proofs = [proof(d) for d in devices]
    answers = at_once([lambda p=p: post(url, "/federation/login", p, ticket_value=value) for p in proofs])
    assert sorted(a.status_code for a in answers) == [200] + [401] * (RACERS - 1), [a.text for a in answers]


def test_two_unlinks_racing_for_the_last_two_ways_in_leave_one(served):
    url, ctx = served
    name = provider(ctx)
    first, second = identity(name), identity(name)
    value = ticket(ctx, first)
    _, device = sign_up(url, value)
    signed = post(url, "/federation/login", proof(device), ticket_value=value).json()
    link_signed_in(ctx, user_uuid=device.key_file.user_uuid, session_id=signed["session_id"], identity=second)
    links = [identities.link_id(i.issuer, i.sub) for i in (first, second)]
    answers = at_once([lambda link=link: unlink(url, signed["access_token"], link) for link in links])
    assert sorted(a.status_code for a in answers) == [204, 409], [a.text for a in answers]
    assert [problem(a)[1] for a in answers if a.status_code == 409] == ["last_way_in"]
    left = requests.get(url + "/federation/identities", timeout=30,
                        headers={"Authorization": f"Bearer {signed['access_token']}"}).json()["identities"]
    assert len(left) == 1
    # the one left is the last way in; an unknown one is not found
    assert problem(unlink(url, signed["access_token"], left[0]["link_id"]))[:2] == (409, "last_way_in")
    assert problem(unlink(url, signed["access_token"], "0" * 32))[:2] == (404, "identity_not_found")


def test_an_account_with_a_password_unlinks_its_only_identity(served):
    url, ctx = served
    account = register_device(url)
    account.login(PASSWORD)
    who = identity(provider(ctx))
    link_signed_in(ctx, user_uuid=account.key_file.user_uuid, session_id=account.tokens()["session_id"], identity=who)
    gone = account.request("DELETE", f"/federation/identities/{identities.link_id(who.issuer, who.sub)}")
    assert gone.status_code == 204, gone.text
    assert identities.owner_of(ctx, issuer=who.issuer, sub=who.sub) is None
    history = account.request("GET", "/session/history").json()["items"]
    assert history[0]["result"] == "identity_unlinked"
