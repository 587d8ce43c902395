"""The data export of an account with a linked identity (SPEC §16, §4 GET /account/export): its claims list the
identity's claim (provider, issuer, sub), the readable copy labels the linked identities (provider, e-mail, when
linked) in English and Japanese, and a provider round trip under way for the account (its state item, which
holds the nonce and the PKCE verifier while it lives) shows only its kind and expiry."""
from __future__ import annotations

import re

import pytest

from federation import identities, transactions
from tests.conftest import unique_name
from tests.support.federation_flows import Person, federation_app, identity, provider

KEY = re.compile(r"\b(?:web|export|mail|error)\.[a-z_]+(?:\.[a-z0-9_]+)+\b")   # a catalogue key left as it is


@pytest.fixture
def person(base_config):
    with federation_app(base_config, max_concurrent_devices=0) as (url, ctx):
        name = provider(ctx)
        yield Person(url, ctx, name, who=identity(name, email=unique_name("ada") + "@example.com", verified=True))


def keep_link_round_trip(person: Person) -> transactions.Started:
    """A "link another" round trip the account started and has not finished: its state item, as start keeps it."""
    started = transactions.begin(provider=person.who.provider, purpose="link", return_to="/#account",
                                 user_uuid=person.user_uuid, session_id=person.session_id)
    transactions.keep(person.ctx.dynamodb, person.ctx.tables, started, now=person.ctx.epoch())
    return started


def test_the_export_lists_the_identity_claim_and_never_a_round_trips_nonce_or_verifier(person):
    started = keep_link_round_trip(person)
    document = person.call("GET", "/account/export", {}).json()
    claim = "identity#" + identities.link_id(person.who.issuer, person.who.sub)
    [listed] = [item for item in document["claims"] if item["claim"] == claim]
    assert listed | {"provider": person.who.provider, "issuer": person.who.issuer, "sub": person.who.sub} == listed
    states = [item for item in document["one_time_tokens"] if item["kind"] == transactions.KIND]
    assert states and all(set(item) == {"kind", "expires_epoch"} for item in states)
    text = str(document)
    assert started.trip.nonce not in text and started.trip.verifier not in text
    assert [entry["email"] for entry in document["users"][0]["identities"].values()] == [person.who.email]


@pytest.mark.parametrize(("locale", "label", "claimed"), [
    ("en", "Linked accounts from elsewhere", "An account from elsewhere, linked to yours"),
    ("ja", "連携している外部のアカウント", "あなたのアカウントに連携した外部のアカウント")])
def test_the_readable_copy_names_the_linked_identities(person, locale, label, claimed):
    keep_link_round_trip(person)
    copy = person.call("GET", f"/account/export?format=readable&locale={locale}", {}).json()
    sections = {section["source"]: section for section in copy["sections"]}
    fields = {field["label"]: field["value"] for entry in sections["users"]["entries"] for field in entry["fields"]}
    assert person.who.provider in fields[label] and str(person.who.email) in fields[label]
    claims = [field["value"] for entry in sections["claims"]["entries"] for field in entry["fields"]]
    assert claimed in claims and person.who.sub in claims
    for source in ("users", "claims", "one_time_tokens"):
        assert not KEY.search(str(sections[source])), sections[source]
