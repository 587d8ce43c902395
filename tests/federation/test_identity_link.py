"""Linking an upstream identity to a signed-in account (SPEC §16, flows.identity_link.link_signed_in): the
claim and the account's map in one transaction, the pair linked to one account at most, refused once the
session has ended; owner_of reads who the pair is linked to."""
from __future__ import annotations

import pytest

from accounts import user_service as users
from federation import identities
from federation.models import UpstreamIdentity
from flows.for_federation import link_signed_in
from sessions import service as sessions
from tests.conftest import unique_name
from tests.support.live import PASSWORD, register_device


def upstream(sub: str | None = None, *, email: str | None = None) -> UpstreamIdentity:
    return UpstreamIdentity(provider="google", issuer="https://accounts.google.com", sub=sub or unique_name("sub"),
                            email=email, email_verified=bool(email))


def signed_in(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device, device.key_file.user_uuid, device.tokens()["session_id"]


def test_a_linked_identity_names_its_account_and_is_in_its_map(make_server):
    url, ctx = make_server()
    _, user_uuid, session_id = signed_in(url)
    identity = upstream(email="someone@example.com")
    assert identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub) is None
    linked = link_signed_in(ctx, user_uuid=user_uuid, session_id=session_id, identity=identity)
    assert linked.link_id == identities.link_id(identity.issuer, identity.sub)
    assert identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub) == user_uuid
    user = users.get_user(ctx, user_uuid=user_uuid)
    assert user is not None and set(user.identities or {}) == {linked.link_id}
    assert [i.sub for i in identities.linked_identities(user)] == [identity.sub]


def test_an_identity_links_to_one_account_only(make_server):
    url, ctx = make_server()
    _, first, first_session = signed_in(url)
    _, second, second_session = signed_in(url)
    identity = upstream()
    link_signed_in(ctx, user_uuid=first, session_id=first_session, identity=identity)
    for user_uuid, session_id in ((second, second_session), (first, first_session)):
        with pytest.raises(identities.IdentityLinkedElsewhere):
            link_signed_in(ctx, user_uuid=user_uuid, session_id=session_id, identity=identity)
    assert identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub) == first
    assert users.get_user(ctx, user_uuid=second).identities == {}


def test_a_session_that_ended_links_nothing(make_server):
    url, ctx = make_server()
    device, user_uuid, session_id = signed_in(url)
    device.logout()
    identity = upstream()
    with pytest.raises(sessions.SessionRevoked):
        link_signed_in(ctx, user_uuid=user_uuid, session_id=session_id, identity=identity)
    assert identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub) is None
