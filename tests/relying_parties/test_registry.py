"""The app registry as every process sees it (SPEC §14): each change of an app moves the registry's
version in the change's own transaction and a process's copy follows it; a stored record that cannot
be read is left out with one ERROR naming it, and never fails the app list (CLI, admin API) or another
app's delivery; one app whose delivery raises never stops the pushes to the others."""
from __future__ import annotations

import base64
import gc
import json
import logging
import os

import jwt
import pytest
from click.testing import CliRunner

from accounts.models import Role
from relying_parties import push
from relying_parties import service as apps
from relying_parties.models import OidcClient
from relying_parties.registry import AppRegistry, app_registry
from relying_parties.store import AppStore, UnreadableRecord, parse_record
from citylogin.cli.main import main
from common.errors import InvalidField
from tests.support.fixtures import cli_environment
from tests.support.live import PASSWORD, register_device
from tests.support.operators import operator
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

GOOD = {"client_id": "app_x", "name": "x", "secret_digest": "d", "created_at": "2025-01-01T00:00:00Z",
        "created_epoch": 1735689600}


@pytest.fixture(scope="module")
def kek() -> str:
    """One key-encryption key for the module's tables (their key ring is sealed under the first one)."""
    return base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize("change, problem", [
    ({"name": None}, "name: missing"),                       # what a PATCH of {"name": null} once left
    ({"name": 5}, "name: string_type"),
    ({"redirect_uris": "https://a.example/cb"}, "redirect_uris: list_type"),   # a string is not a list of them
    ({"redirect_uris": {"https://a.example/cb"}}, "redirect_uris: list_type"),  # nor a DynamoDB string set
    ({"consent": 1}, "consent: bool_type"),
    ({"created_epoch": "1735689600"}, "created_epoch: int_type"),
    ({"jwks": "{not json"}, "jwks: not a JSON object"),
    ({"created_at": "not a time"}, "created_at: not a moment"),    # the console's dates refuse it
    ({"secret_rotated_at": "2025-13-01T00:00:00Z"}, "secret_rotated_at: not a moment"),
    ({"id_token_alg": "none"}, "id_token_alg: not an algorithm of the key ring"),
    ({"device_flow": "true"}, "device_flow: bool_type"),
    ({"device_class": "watch"}, "device_class: not a device class"),   # a screen counts under one of the five
    ({"contacts": "ops@notes.example"}, "contacts: list_type"),
    ({"allow_unsigned_request_objects": "yes"}, "allow_unsigned_request_objects: bool_type"),
    ({"profile": "fapi1"}, "profile: not a profile"),
])
def test_a_record_of_another_shape_is_unreadable_and_names_the_field(change, problem):
    assert parse_record(GOOD).name == "x"
    with pytest.raises(UnreadableRecord) as refused:
        parse_record({**GOOD, **change})
    assert problem in refused.value.problem


REGISTERED = {"jwks_uri": "https://notes.example/jwks", "logo_uri": "https://notes.example/logo.png",
              "client_uri": "https://notes.example/", "policy_uri": "https://notes.example/privacy",
              "tos_uri": "https://notes.example/terms", "contacts": ["ops@notes.example"],
              "userinfo_signed_response_alg": "ES256", "token_endpoint_auth_method": "private_key_jwt",
              "grant_types": ["authorization_code", "refresh_token"],
              "request_uris": ["https://notes.example/request#abc"], "request_object_signing_alg": "ES256",
              "allow_unsigned_request_objects": False, "require_signed_request_object": True, "profile": "fapi2"}


def test_a_registered_apps_metadata_is_read_back_under_its_standard_names():
    app = parse_record({**GOOD, **REGISTERED, "registration_token_digest": "secret-digest", "registered_with": "o"})
    oidc = app.oidc()
    assert oidc.token_endpoint_auth_method() == "private_key_jwt" and oidc.profile == "fapi2"
    assert oidc.contacts == ("ops@notes.example",) and oidc.require_signed_request_object is True
    shown = app.public()
    assert {name: shown[name] for name in REGISTERED if name != "token_endpoint_auth_method"} == {
        name: value for name, value in REGISTERED.items() if name != "token_endpoint_auth_method"}
    assert shown["token_endpoint_auth_method"] == "private_key_jwt" and shown["registered_with"] == "o"
    assert "secret-digest" not in json.dumps(shown)
    # an app added before any of it: the defaults, today's derived auth method
    assert parse_record(GOOD).public()["token_endpoint_auth_method"] == "client_secret_basic"
    assert parse_record(GOOD).public()["profile"] is None and parse_record(GOOD).public()["contacts"] == []


class _Items:
    """A DynamoDB client that holds a few stored items of the apps table."""

    def __init__(self, *items: dict) -> None:
        self.items = items

    def query(self, **_) -> dict:
        return {"Items": list(self.items)}

    def get_item(self, **_) -> dict:
        return {"Item": self.items[0]}


def test_a_number_boto3_cannot_read_leaves_out_its_record_alone(caplog):
    good = {"registry": {"S": "apps"}, **{name: {"N": str(value)} if isinstance(value, int) else {"S": value}
                                          for name, value in GOOD.items()}}
    # DynamoDB keeps 1E+125 (one digit); read back as 126 digits, boto3's 38-digit context refuses it
    huge = {**good, "client_id": {"S": "app_huge"}, "created_epoch": {"N": "1" + "0" * 125}}
    store = AppStore(_Items(huge, good), "apps")
    assert [app.client_id for app in store.list()] == ["app_x"]
    assert store.get("app_huge") is None
    assert len(_unreadable_errors(caplog, "app_huge")) == 1
    assert "created_epoch: not readable" in _unreadable_errors(caplog, "app_huge")[0].getMessage()


def test_every_change_of_an_app_moves_the_version_and_the_registry_follows(make_server, kek):
    url, ctx = make_server(key_encryption_key=kek)
    store = AppStore(ctx.dynamodb, ctx.tables.apps)
    registry = AppRegistry(store)  # checked by the test alone: no watching thread
    assert registry.check()
    spa = apps.add_app(ctx, name="SPA", push_url=None, oidc=OidcClient(
        redirect_uris=("https://spa.example:8443/cb", "http://127.0.0.1/cb"), public=True,
        web_origins=("https://Other.example/", "https://other.example")))
    server_app = apps.add_app(ctx, name="server", push_url=None, oidc=OidcClient(
        redirect_uris=("https://server.example/cb",)))
    version = store.version()
    assert registry.check()
    snapshot = registry.current()
    assert app_registry(ctx).current().client_origins == snapshot.client_origins  # the process's own copy
    assert snapshot.version == version and {a.client_id for a in snapshot.apps} >= {spa.app.client_id,
                                                                                  server_app.app.client_id}
    assert spa.app.web_origins == ["https://other.example"]     # serialized once, as a browser sends it
    # a public client's redirect URIs' origins and its web origins; never a confidential client's
    assert snapshot.client_origins == {"https://spa.example:8443", "http://127.0.0.1", "https://other.example"}
    assert not registry.check()                                 # nothing moved: no list read

    for change in (lambda: apps.update_app(ctx, client_id=spa.app.client_id, name="SPA 2", changed=frozenset({"name"})),
                   lambda: apps.rotate_secret(ctx, client_id=server_app.app.client_id),
                   lambda: apps.remove_app(ctx, client_id=spa.app.client_id)):
        change()
        assert store.version() == version + 1
        version += 1
        assert registry.check() and registry.current().version == version
    assert registry.current().client_origins == frozenset()
    with pytest.raises(InvalidField):  # a confidential client's pages hold no secret: no web origins
        apps.add_app(ctx, name="no", push_url=None, oidc=OidcClient(
            redirect_uris=("https://server.example/cb",), web_origins=("https://server.example",)))


def _put_unreadable(ctx, client_id: str, push_url: str, **attributes) -> None:
    item = {"registry": {"S": "apps"}, "client_id": {"S": client_id}, "secret_digest": {"S": "x"},
            "created_at": {"S": "2025-01-01T00:00:00Z"}, "created_epoch": {"N": "1735689600"},
            "push_url": {"S": push_url}, **attributes}
    ctx.dynamodb.put_item(TableName=ctx.tables.apps, Item=item)


def _unreadable_errors(caplog, client_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.ERROR and client_id in r.getMessage()]


@pytest.mark.slow  # a receiver process
def test_an_unreadable_record_is_left_out_with_one_error_and_every_other_app_is_served(
        make_server, base_config, kek, tmp_path, caplog):
    with receiver() as sink:
        url, ctx = make_server(key_encryption_key=kek, ssf_push_interval=0.2)
        good = apps.add_app(ctx, name="good", push_url=sink + "/push")
        # Written by hand, or by another release: no name at all (a null removed it), a wrongly typed one, and
        # a number boto3 cannot read
        _put_unreadable(ctx, "app_unnamed", sink + "/push")
        _put_unreadable(ctx, "app_mistyped", sink + "/push", name={"S": "m"}, redirect_uris={"S": "https://m/cb"})
        _put_unreadable(ctx, "app_huge", sink + "/push", name={"S": "h"}, created_epoch={"N": "1E+125"})

        listed = CliRunner().invoke(main, ["apps", "list", "--json"],
                                    env=cli_environment(base_config, kek=kek, data_dir=str(tmp_path)))
        assert listed.exit_code == 0, listed.output
        assert good.app.client_id in {a["client_id"] for a in json.loads(listed.stdout)}
        admin = operator(url, ctx, Role.ADMIN)
        for _ in range(2):
            answer = admin.request("GET", "/admin/apps")
            assert answer.status_code == 200, answer.text
            shown = {a["client_id"] for a in answer.json()["apps"]}
            assert good.app.client_id in shown and not shown & {"app_unnamed", "app_mistyped", "app_huge"}
        assert apps.show_app(ctx, client_id=good.app.client_id).name == "good"

        device = register_device(url)        # the pusher of this process delivers to the good app
        device.login(PASSWORD)
        ended = device.session_id
        device.logout()
        got = wait_until(lambda: received(sink)["sets"] or None, timeout=15, what="the good app's push")
        claims = jwt.decode(got[0], options={"verify_signature": False})
        assert claims["aud"] == good.app.client_id and ended in json.dumps(claims)
    for client_id in ("app_unnamed", "app_mistyped", "app_huge"):  # once per process, however many readings
        assert len(_unreadable_errors(caplog, client_id)) == 1, [r.getMessage() for r in caplog.records]


def test_the_watching_thread_ends_with_its_registry(make_server, kek):
    """An app a test lets go takes its registry's thread with it: left watching, it would read the
    module's tables after they are deleted, and log and count its failures in a later test."""
    _, ctx = make_server(key_encryption_key=kek)
    registry = AppRegistry(AppStore(ctx.dynamodb, ctx.tables.apps), every=0.05)
    registry.current()  # the first read starts the watching
    thread = registry._thread
    assert thread is not None and thread.is_alive()
    del registry
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.slow  # a receiver process
def test_one_apps_delivery_that_raises_never_stops_the_pushes_to_the_others(make_server, kek, monkeypatch, caplog):
    deliver = push.SetPush.deliver
    with receiver() as sink:
        url, ctx = make_server(key_encryption_key=kek, ssf_push_interval=0.2)
        broken = apps.add_app(ctx, name="broken", push_url=sink + "/push")
        fine = apps.add_app(ctx, name="fine", push_url=sink + "/push")

        def deliver_or_raise(self, event, app):
            if app.client_id == broken.app.client_id:
                raise RuntimeError("a bug met by this app's delivery alone")
            return deliver(self, event, app)
        monkeypatch.setattr(push.SetPush, "deliver", deliver_or_raise)
        device = register_device(url)
        for _ in range(2):
            device.login(PASSWORD)
            device.logout()
        got = wait_until(lambda: len(received(sink)["sets"]) >= 2 or None, timeout=15, what="two pushes")
        assert got
        audiences = {jwt.decode(s, options={"verify_signature": False})["aud"] for s in received(sink)["sets"]}
        assert audiences == {fine.app.client_id}
        # named in an ERROR (once per burst), by the broken app's own turn, which may come after fine's
        wait_until(lambda: _unreadable_errors(caplog, broken.app.client_id) or None, timeout=15,
                   what="the ERROR naming the app whose delivery raised")


def test_apps_add_takes_a_public_clients_web_origins_as_origins_alone(make_server, base_config, kek, tmp_path):
    make_server(key_encryption_key=kek)
    env = cli_environment(base_config, kek=kek, data_dir=str(tmp_path))

    def add(*options: str):
        return CliRunner().invoke(main, ["apps", "add", "SPA", "--json", "--redirect-uri", "https://spa.example/cb",
                                         *options], env=env)
    added = add("--public", "--web-origin", "HTTPS://App.Example:443/", "--web-origin", "http://localhost:5173")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["web_origins"] == ["http://localhost:5173", "https://app.example"]
    for bad in ("https://app.example/spa", "https://user@app.example", "ftp://app.example", "app.example",
                "https://app.example?x=1", "https://app.example#f", "null"):
        refused = add("--public", "--web-origin", bad)
        assert refused.exit_code == 2 and "origin" in refused.output, (bad, refused.output)
    confidential = add("--web-origin", "https://app.example")
    assert confidential.exit_code == 2 and "--public" in confidential.output


def test_the_logos_origins_are_each_once_the_oldest_apps_first_and_bounded():
    """The sign-in page's img-src (SPEC §14, RFC 7591 logo_uri): apps registering by the hundred can not grow the
    page's Content-Security-Policy header without end, nor push out the logos of the apps that were there first."""
    from relying_parties.models import AppRecord
    from relying_parties.registry import MAX_LOGO_ORIGINS, logo_origins
    from citylogin.webui.assets import with_image_sources

    def app(i: int, logo: str | None) -> AppRecord:
        return AppRecord(client_id=f"app_{i:04d}", name="A", secret_digest="d", created_at="2026-01-01T00:00:00Z",
                         created_epoch=0, logo_uri=logo)

    apps = (app(0, "https://Logo.Example:443/a.png"), app(1, "https://logo.example/b.png"), app(2, None),
            app(3, "javascript:alert(1)"), *(app(10 + i, f"https://l{i}.example/x.png") for i in range(80)))
    origins = logo_origins(apps)
    assert origins[:2] == ("https://logo.example", "https://l0.example") and len(origins) == MAX_LOGO_ORIGINS
    policy = "default-src 'self'; img-src 'self' data:; connect-src 'self'"
    assert with_image_sources(policy, origins[:2]) == \
        "default-src 'self'; img-src 'self' data: https://logo.example https://l0.example; connect-src 'self'"
    assert with_image_sources(policy, ()) == policy
