"""Operators' upstream providers (SPEC §16) through the service the CLI and the admin API share, on DynamoDB
Local: records in the apps table's own partition, names taken once, changes on the version read, and the
client secret (Apple: the private key) sealed under the key-encryption key, opened only for the token
endpoint, in no answer or log."""
from __future__ import annotations

import dataclasses
import logging
import os
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import InvalidField
from common.keys.encryption import AesGcmKeyEncryptor, WrongKeyEncryptionKey
from federation import apple_secret, providers
from federation.provider_store import ProviderChanged, ProviderStore
from tests.conftest import unique_name

SECRET = "s3cr3t-" + os.urandom(8).hex()


@pytest.fixture
def ctx(make_server):
    return make_server(public_url="https://login.example")[1]


def _name() -> str:
    return unique_name("idp")[:20]


def apple_key() -> tuple[str, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def raw_item(ctx, name: str) -> dict:
    return ctx.dynamodb.get_item(TableName=ctx.tables.apps, Key={"registry": {"S": "idp"}, "client_id": {"S": name}},
                                 ConsistentRead=True)["Item"]


def test_a_provider_is_added_listed_shown_changed_and_removed(ctx):
    name = _name()
    added = providers.add_provider(ctx, name=name, preset="google", client_id="cid.apps", client_secret=SECRET + "\n")
    assert (added.issuer, added.display_name, added.scope, added.signup, added.enabled, added.version) == (
        "https://accounts.google.com", "Google", "openid email profile", "allow", True, 1)
    assert name in [p.name for p in providers.list_providers(ctx)]
    assert providers.get_provider(ctx, name) == added
    changed = providers.update_provider(ctx, name=name, display_name="Google Workspace", signup="deny")
    assert (changed.display_name, changed.signup, changed.version, changed.client_id) == (
        "Google Workspace", "deny", 2, "cid.apps")
    assert providers.client_secret(ctx, changed) == SECRET   # the secret stays, without its line break
    disabled = providers.update_provider(ctx, name=name, enabled=False)
    assert name not in [p.name for p in providers.list_providers(ctx)]
    assert name in [p.name for p in providers.list_providers(ctx, include_disabled=True)]
    with pytest.raises(providers.IdpNotFound):
        providers.get_provider(ctx, name)
    assert providers.get_provider(ctx, name, include_disabled=True) == disabled
    providers.remove_provider(ctx, name=name)
    for call in (lambda: providers.get_provider(ctx, name, include_disabled=True),
                 lambda: providers.remove_provider(ctx, name=name),
                 lambda: providers.update_provider(ctx, name=name, display_name="x")):
        with pytest.raises(providers.IdpNotFound):
            call()


def test_a_name_is_taken_once(ctx):
    name = _name()
    providers.add_provider(ctx, name=name, issuer="https://idp.example", client_id="a", client_secret=SECRET)
    with pytest.raises(providers.IdpExists) as refused:
        providers.add_provider(ctx, name=name, issuer="https://other.example", client_id="b", client_secret="x")
    assert (refused.value.status, refused.value.code.value) == (409, "idp_exists")
    assert providers.get_provider(ctx, name).issuer == "https://idp.example"


def test_a_change_computed_from_an_old_version_is_refused_by_the_store(ctx):
    name = _name()
    read = providers.add_provider(ctx, name=name, issuer="https://idp.example", client_id="a", client_secret=SECRET)
    providers.update_provider(ctx, name=name, display_name="Acme")
    store = ProviderStore(ctx.dynamodb, ctx.tables.apps)
    with pytest.raises(ProviderChanged):
        store.replace(dataclasses.replace(read, display_name="Stale", version=2), read_version=read.version)
    assert providers.get_provider(ctx, name).display_name == "Acme"


def test_the_secret_is_sealed_under_the_key_encryption_key_and_bound_to_its_provider(ctx):
    name, other = _name(), _name()
    provider = providers.add_provider(ctx, name=name, issuer="https://idp.example", client_id="a", client_secret=SECRET)
    providers.add_provider(ctx, name=other, issuer="https://idp.example", client_id="a", client_secret="other")
    item = raw_item(ctx, name)
    assert SECRET.encode() not in repr(item).encode() and SECRET not in repr(item)
    assert set(item["sealed_secret"]["M"]) == {"nonce", "ciphertext"}
    assert providers.client_secret(ctx, provider) == SECRET
    identity = providers.secret_identity(name, apple=False)
    with pytest.raises(WrongKeyEncryptionKey):
        AesGcmKeyEncryptor(os.urandom(32), variable="another key").open(provider.sealed_secret, identity=identity)
    moved = dataclasses.replace(providers.get_provider(ctx, other), sealed_secret=provider.sealed_secret)
    with pytest.raises(WrongKeyEncryptionKey):   # moved onto another provider's record, it does not open
        providers.client_secret(ctx, moved)
    assert SECRET not in repr(provider) and SECRET not in repr(providers.ProviderFields(client_secret=SECRET))
    assert SECRET not in str(providers.provider_view(ctx, provider))
    assert providers.provider_view(ctx, provider)["client_secret"] == "set"
    assert providers.provider_view(ctx, provider)["redirect_uri"] == f"https://login.example/federation/{name}/callback"


def test_apples_client_secret_is_a_jwt_signed_with_the_operators_key_and_renewed_before_it_expires(ctx, caplog):
    caplog.set_level(logging.DEBUG)
    pem, public = apple_key()
    name = _name()
    start = ctx.now()
    provider = providers.add_provider(ctx, name=name, preset="apple", client_id="com.example.web",
                                      apple_private_key=pem, apple_team_id="TEAM123456", apple_key_id="KEY1234567")
    assert pem.split("\n")[1] not in repr(raw_item(ctx, name))
    first = providers.client_secret(ctx, provider)
    assert jwt.get_unverified_header(first) == {"alg": "ES256", "kid": "KEY1234567", "typ": "JWT"}
    claims = jwt.decode(first, public, algorithms=["ES256"], audience="https://appleid.apple.com")
    assert (claims["iss"], claims["sub"]) == ("TEAM123456", "com.example.web")
    assert 0 < claims["exp"] - claims["iat"] <= 180 * 24 * 3600
    assert providers.client_secret(ctx, provider) == first        # kept by the process
    original, renewal = ctx.clock, start + timedelta(seconds=apple_secret.RENEW_AFTER + 1)
    try:
        ctx.clock = lambda: start + timedelta(seconds=apple_secret.RENEW_AFTER - 60)
        assert providers.client_secret(ctx, provider) == first
        ctx.clock = lambda: renewal
        renewed = providers.client_secret(ctx, provider)
    finally:
        ctx.clock = original
    assert renewed != first
    later = jwt.decode(renewed, public, algorithms=["ES256"], audience="https://appleid.apple.com",
                       options={"verify_iat": False, "verify_exp": False})
    assert (later["iat"], later["exp"]) == (int(renewal.timestamp()), int(renewal.timestamp()) + apple_secret.LIFETIME)
    # a new key makes a new version, so never meets the secret signed with the old one
    pem2, public2 = apple_key()
    changed = providers.update_provider(ctx, name=name, apple_private_key=pem2)
    jwt.decode(providers.client_secret(ctx, changed), public2, algorithms=["ES256"], audience="https://appleid.apple.com")
    for secret in (first, renewed, pem.split("\n")[1], pem2.split("\n")[1]):
        assert secret not in caplog.text


@pytest.mark.parametrize("args, field", [
    ({"name": "Upper"}, "name"),
    ({"name": "-dash"}, "name"),
    ({"name": "a" * 33}, "name"),
    ({"issuer": "ftp://idp.example"}, "issuer"),
    ({"issuer": "https://user:pw@idp.example"}, "issuer"),
    ({"issuer": "https://idp.example?x=1"}, "issuer"),
    ({"issuer": "https://idp.example#x"}, "issuer"),
    ({"issuer": "https://idp.example:99999"}, "issuer"),
    ({"issuer": "https:///path"}, "issuer"),
    ({"issuer": None}, "issuer"),                       # generic: no issuer of its own
    ({"client_secret": "  \n"}, "client_secret"),
    ({"client_secret": None}, "client_secret"),
    ({"scope": "email profile"}, "scope"),               # no openid
    ({"scope": "openid  email"}, "scope"),
    ({"display_name": "x" * 41}, "display_name"),
    ({"display_name": " "}, "display_name"),
    ({"signup": "maybe"}, "signup"),
    ({"preset": "facebook"}, "preset"),
    ({"apple_team_id": "T"}, "apple_private_key"),        # Apple's fields on another preset
    ({"preset": "apple", "client_secret": None}, "apple_private_key"),
    ({"preset": "apple", "client_secret": None, "apple_private_key": "not a key", "apple_team_id": "T",
      "apple_key_id": "K"}, "apple_private_key"),
])
def test_a_bad_field_is_refused_naming_it(ctx, args, field):
    base = {"name": _name(), "issuer": "https://idp.example", "client_id": "a", "client_secret": SECRET}
    with pytest.raises(InvalidField) as refused:
        providers.add_provider(ctx, **{**base, **args})
    assert refused.value.extra["field"] == field
    assert SECRET not in str(refused.value.body())


def test_http_issuers_only_where_private_addresses_may_be_fetched(make_server):
    base = {"issuer": "http://127.0.0.1:9999", "client_id": "a", "client_secret": SECRET}
    _, strict = make_server(oidc_fetch_private_addresses=False)
    with pytest.raises(InvalidField):
        providers.add_provider(strict, name=_name(), **base)
    _, lenient = make_server(oidc_fetch_private_addresses=True)
    assert providers.add_provider(lenient, name=_name(), **base).issuer == "http://127.0.0.1:9999"


def test_the_list_of_enabled_providers_is_kept_briefly_and_follows_this_processs_changes(ctx):
    name = _name()
    before = providers.list_providers(ctx)
    providers.add_provider(ctx, name=name, issuer="https://idp.example", client_id="a", client_secret=SECRET)
    assert [p.name for p in providers.list_providers(ctx)] == sorted([p.name for p in before] + [name])
    # written behind this process's back (the CLI, another host): the operators' full list reads it now
    ProviderStore(ctx.dynamodb, ctx.tables.apps).delete(name)
    assert name not in [p.name for p in providers.list_providers(ctx, include_disabled=True)]
