"""A passkey's removal keeps a way in (SPEC §16): an account with no password and no linked identity keeps its
last passkey (409 last_way_in), and the removal's own transaction holds to the way in it leaves, so an unlink and
a passkey removal racing (real threads, DynamoDB Local) cannot both commit and leave the account with none."""
from __future__ import annotations


import pytest
import requests

from accounts import passkey_service as passkeys
from accounts import user_service as users
from federation import identities
from tests.support.federation_flows import Person, at_once, federation_app, provider
from tests.support.fixtures import problem
from tests.support.soft_authenticator import SoftAuthenticator

PUBLIC_URL = "https://login.example.test"
ROUNDS = 3


@pytest.fixture
def served(base_config):
    with federation_app(base_config, max_concurrent_devices=0, public_url=PUBLIC_URL) as (url, ctx):
        yield url, ctx, provider(ctx)


def add_passkey(person: Person, authenticator: SoftAuthenticator) -> str:
    options = person.call("POST", "/account/passkeys/options", {"reauth_token": person.token()})
    assert options.status_code == 200, options.text
    added = person.call("POST", "/account/passkeys", {"credential": authenticator.create(options.json())})
    assert added.status_code == 201, added.text
    return added.json()["id"]


def remove(person: Person, credential_id: str, secret: dict) -> requests.Response:
    return person.call("DELETE", f"/account/passkeys/{credential_id}", secret)


def unlink(person: Person) -> requests.Response:
    link = identities.link_id(person.who.issuer, person.who.sub)
    return person.call("DELETE", f"/federation/identities/{link}", {})


def by_passkey(person: Person, authenticator: SoftAuthenticator, credential_id: str | None = None) -> dict:
    options = requests.post(person.url + "/login/passkey/options", json={}, timeout=60).json()
    return {"passkey": authenticator.get(options, credential_id=credential_id)}


def test_the_last_passkey_of_an_account_with_no_other_way_in_stays(served):
    url, ctx, name = served
    person = Person(url, ctx, name)
    authenticator = SoftAuthenticator(PUBLIC_URL)
    credential = add_passkey(person, authenticator)
    assert unlink(person).status_code == 204  # the passkey is its way in now
    refused = remove(person, credential, by_passkey(person, authenticator))
    assert problem(refused)[:2] == (409, "last_way_in")
    # the transaction itself holds to the way in the removal was decided on (an unlink came in between)
    with pytest.raises(users.LastWayIn):
        passkeys.remove_passkey(ctx, user_uuid=person.user_uuid, credential_id=credential, keeps="identity")
    listed = person.call("GET", "/account/passkeys", {}).json()["passkeys"]
    assert [p["id"] for p in listed] == [credential]



def race_unlink_and_removal(person: Person) -> list[requests.Response]:
    """The account's only identity unlinked while its only passkey is removed, at once."""
    credential = add_passkey(person, SoftAuthenticator(PUBLIC_URL))
    token = person.token()
    return at_once([lambda: unlink(person), lambda: remove(person, credential, {"reauth_token": token})])


def test_an_unlink_and_a_passkey_removal_racing_leave_a_way_in(served):
    url, ctx, name = served
    for _ in range(ROUNDS):
        person = Person(url, ctx, name)
        answers = race_unlink_and_removal(person)
        assert sorted(a.status_code for a in answers) == [204, 409], [a.text for a in answers]
        assert [problem(a)[1] for a in answers if a.status_code == 409] == ["last_way_in"]
        user = users.get_user(ctx, user_uuid=person.user_uuid)
        count = passkeys.passkey_count_read(ctx.tables, user_uuid=person.user_uuid)
        left = count.parse(ctx.dynamodb.get_item(TableName=count.table, Key=count.key, ConsistentRead=True).get("Item"))
        assert bool(user.identities) or left > 0


def test_two_removals_racing_for_the_last_two_passkeys_leave_one(served):
    url, ctx, name = served
    person = Person(url, ctx, name)
    authenticator = SoftAuthenticator(PUBLIC_URL)
    credentials = [add_passkey(person, authenticator) for _ in range(2)]
    assert unlink(person).status_code == 204
    # each removal confirmed by the passkey it removes (two uses of one passkey would race on its counter)
    tokens = [by_passkey(person, authenticator, credential) for credential in credentials]
    answers = at_once([lambda pair=pair: remove(person, *pair) for pair in zip(credentials, tokens, strict=True)])
    assert sorted(a.status_code for a in answers) == [204, 409], [a.text for a in answers]
    assert len(person.call("GET", "/account/passkeys", {}).json()["passkeys"]) == 1
