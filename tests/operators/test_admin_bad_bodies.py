"""Bad bodies at every admin route that writes (SPEC §15, §3): a null, a wrong type, an empty string or a
huge value is 400 problem+json with its field, and nothing is written — read back from DynamoDB. Once,
`PATCH /admin/apps/<id>` with `{"name": null}` answered 500 after writing the null, and every reader of
the registry failed from then on (the app list, the console, every process's pusher)."""
from __future__ import annotations

import pytest

from accounts.models import Role
from relying_parties import service as apps
from relying_parties.store import REGISTRY, VERSION_KEY
from citylogin.client.api import Client
from tests.support.fixtures import problem
from tests.support.operators import operator, person

pytestmark = pytest.mark.slow  # 72 bodies; tests/operators/test_admin_peers.py keeps the admin API in the fast tier

GOOD_URI = "https://notes.example/callback"

BAD_APP_CHANGES = [
    {"name": None}, {"name": 5}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "x" * 5000},
    {"name": ["Notes"]}, {"name": "tab\there"},
    {"consent": None}, {"consent": "yes"}, {"consent": 1}, {"require_par": None}, {"require_dpop": 0},
    {"id_token_alg": None}, {"id_token_alg": "HS256"}, {"id_token_alg": ""},
    {"redirect_uris": None}, {"redirect_uris": GOOD_URI}, {"redirect_uris": [5]}, {"redirect_uris": [""]},
    {"redirect_uris": [None]}, {"redirect_uris": [GOOD_URI] * 21},
    {"redirect_uris": ["https://a.example/" + "x" * 3000]},
    {"post_logout_redirect_uris": None}, {"post_logout_redirect_uris": {}},
    {"push_url": ""}, {"push_url": 5}, {"push_url": "ftp://push.example/x"}, {"backchannel_logout_uri": ""},
    {"backchannel_logout_uri": []}, {"jwks": "keys"}, {"jwks": []}, {"jwks": {"keys": "none"}},
    {"admin_role": "owner"}, {"admin_role": 1}, {"admin_role": ""},
    {"web_origins": None}, {"web_origins": "https://spa.example"}, {"web_origins": [5]},
    {"reason": 5}, {"reason": "x" * 501},
    # whether a client is public can not change; a member the change does not know is no change
    {"public": True}, {"public": False}, {"public": None}, {"nmae": "Typo"}, {"client_secret": "mine"},
    {"client_id": "other"}, {"name": "Renamed", "consnet": True}, {"redirect_uris": [GOOD_URI], "Name": "x"},
    # a good field beside a bad one: the good one is not written either
    {"name": "Renamed", "consent": None}, {"name": "Renamed", "redirect_uris": None},
    {"redirect_uris": ["https://notes.example/other"], "require_par": "true"},
]


@pytest.fixture(scope="module")
def registry(base_config_module):
    """One app server for the module, an admin on it and an app to change."""
    from tests.support.fixtures import app_servers
    with app_servers(base_config_module) as start:
        url, ctx = start()
        admin = operator(url, ctx, Role.ADMIN)
        added = admin.request("POST", "/admin/apps", json={"name": "Notes", "redirect_uris": [GOOD_URI],
                                                           "push_url": "https://notes.example/push"})
        assert added.status_code == 201, added.text
        yield url, ctx, admin, added.json()["client_id"]


@pytest.fixture(scope="module")
def base_config_module(dynamodb_endpoint, data_dir, table_prefix):
    from tests.conftest import FAST_ARGON2, RAISED_LIMITS
    return {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir), "table_prefix": table_prefix,
            "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS, "dynamodb_parameter_validation": True,
            "deletion_sweep_interval": 0, "ssf_push_interval": 0, "session_sweep_interval": 0}


def stored_app(ctx, client_id: str) -> dict:
    return ctx.dynamodb.get_item(TableName=ctx.tables.apps, Key={"registry": {"S": REGISTRY},
                                                                 "client_id": {"S": client_id}},
                                 ConsistentRead=True)["Item"]


def registry_version(ctx) -> dict | None:
    return ctx.dynamodb.get_item(TableName=ctx.tables.apps, Key=VERSION_KEY, ConsistentRead=True).get("Item")


@pytest.mark.parametrize("body", BAD_APP_CHANGES, ids=[str(b)[:60] for b in BAD_APP_CHANGES])
def test_a_bad_app_change_is_400_and_writes_nothing(registry, body):
    url, ctx, admin, client_id = registry
    before, version = stored_app(ctx, client_id), registry_version(ctx)
    answer = admin.request("PATCH", f"/admin/apps/{client_id}", json=body)
    status, code, _ = problem(answer)
    assert (status, code) == (400, "invalid_field"), answer.text
    assert answer.json()["field"].split(".")[0] in body
    assert stored_app(ctx, client_id) == before and registry_version(ctx) == version
    assert admin.request("GET", "/admin/apps").status_code == 200
    assert [a.name for a in apps.list_apps(ctx) if a.client_id == client_id] == ["Notes"]


def test_null_still_removes_an_optional_field_and_the_registry_stays_readable(registry):
    url, ctx, admin, client_id = registry
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={"push_url": None, "jwks": None,
                                                                     "admin_role": None,
                                                                     "backchannel_logout_uri": None})
    assert changed.status_code == 200, changed.text
    assert "push_url" not in stored_app(ctx, client_id) and changed.json()["name"] == "Notes"
    emptied = admin.request("PATCH", f"/admin/apps/{client_id}", json={"post_logout_redirect_uris": []})
    assert emptied.status_code == 200 and emptied.json()["redirect_uris"] == [GOOD_URI]
    assert admin.request("GET", "/admin/apps").status_code == 200


@pytest.mark.parametrize("body", [{"name": None}, {"name": "Ok", "public": None}, {"name": "Ok", "public": "no"},
                                  {"name": "Ok", "consent": None}, {"name": "Ok", "redirect_uris": None},
                                  {"name": ""}, {"name": "Ok", "redirect_uris": [GOOD_URI] * 21},
                                  # a member the new app does not know, as PATCH refuses it
                                  {"name": "Ok", "redirect_uri": GOOD_URI}, {"name": "Ok", "consnet": True},
                                  {"name": "Ok", "client_secret": "mine"}, {"name": "Ok", "Name": "x"}])
def test_a_bad_new_app_is_400_and_adds_nothing(registry, body):
    url, ctx, admin, _ = registry
    before = {a.client_id for a in apps.list_apps(ctx)}
    answer = admin.request("POST", "/admin/apps", json=body)
    assert problem(answer)[:2] == (400, "invalid_field"), answer.text
    assert answer.json()["field"].split(".")[0] in body
    assert {a.client_id for a in apps.list_apps(ctx)} == before


def stored_user(ctx, user_uuid: str) -> dict:
    return ctx.dynamodb.get_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": user_uuid}},
                                 ConsistentRead=True)["Item"]


BAD_ACTIONS = [
    ("limit", {"reason": "r", "limit": True}), ("limit", {"reason": "r", "limit": "3"}),
    ("limit", {"reason": "r", "limit": 2.5}), ("limit", {"reason": "r", "limit": 1001}),
    ("limit", {"reason": "r", "limit": -1}), ("limit", {"reason": "r", "limit": 10**30}),
    ("limit", {"reason": "r", "limit": [2]}),
    ("lock", {"reason": 5}), ("lock", {"reason": "x" * 501}), ("lock", {"reason": ["why"]}),
    ("lock", {"reason": "r", "password": ""}), ("lock", {"reason": "r", "password": 5}),
    ("lock", {"reason": "r", "passkey": "yes"}), ("revoke-sessions", {"reason": "r", "password": "x" * 1025}),
    ("roles", {"reason": "r", "role": None, "grant": True}), ("roles", {"reason": "r", "role": 5, "grant": True}),
    ("roles", {"reason": "r", "role": "", "grant": True}), ("roles", {"reason": "r", "role": "support", "grant": None}),
    ("roles", {"reason": "r", "role": "support", "grant": "true"}),
    ("roles", {"reason": "r", "role": "support", "grant": 1}),
]


@pytest.mark.parametrize("action,body", BAD_ACTIONS, ids=[f"{a}-{str(b)[:40]}" for a, b in BAD_ACTIONS])
def test_a_bad_action_body_is_400_and_writes_nothing(registry, action, body):
    url, ctx, admin, _ = registry
    target = _target(url)
    before = stored_user(ctx, target.key_file.user_uuid)
    answer = admin.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/{action}", json=body)
    assert problem(answer)[:2] == (400, "invalid_field"), answer.text
    assert stored_user(ctx, target.key_file.user_uuid) == before
    assert target.request("GET", "/session/me").status_code == 200
    assert admin.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"] == []


_people: dict[str, Client] = {}


def _target(url: str) -> Client:
    """One person acted upon (refusals change nothing, so all the refusals share them)."""
    if url not in _people:
        _people[url] = person(url)
    return _people[url]
