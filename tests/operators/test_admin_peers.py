"""Operators act only on accounts of a lower role (SPEC §15), through the HTTP API: viewer < support <
admin. A support operator can not lock, unbind or reset another support operator (one rogue operator
would lock out its peers), an admin acts on an admin only through `citylogin admin`, and nobody grants a
role above their own. Every refusal is 403 forbidden and changes nothing: the account's item, its
session, its device, its audit trail and its mail stay as they were."""
from __future__ import annotations

import pytest
import requests

from accounts.models import Role
from relying_parties import service as apps
from citylogin.client.api import Client
from tests.support.fixtures import app_servers, problem
from tests.support.live import settle_background
from tests.support.operators import operator


class Recorder:
    def __init__(self) -> None:
        self.messages: list = []

    def send(self, message) -> None:
        self.messages.append(message)


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    """One app for the module (refusals change nothing, so the tests share it) and its mail."""
    from tests.conftest import FAST_ARGON2, RAISED_LIMITS
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir), "table_prefix": table_prefix,
              "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS, "dynamodb_parameter_validation": True,
              "deletion_sweep_interval": 0, "ssf_push_interval": 0, "session_sweep_interval": 0}
    with app_servers(config) as start:
        url, ctx = start()
        ctx.notifier.backend = recorder = Recorder()
        yield url, ctx, recorder


def actions(target: Client) -> dict[str, dict]:
    """Every action of the admin API with a body it would carry out."""
    return {"lock": {}, "unlock": {}, "revoke-sessions": {}, f"devices/{target.key_file.device_id}/unbind": {},
            "limit": {"limit": 3}, "resend-verification": {}, "password-reset": {},
            "roles": {"role": "viewer", "grant": False}}


def act(op, target: Client, action: str, **body):
    return op.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/{action}",
                      json={"reason": "ticket 12", **body})


def state(ctx, recorder: Recorder, target: Client) -> dict:
    """What an action would change, read back from DynamoDB (and the mail the account was sent)."""
    settle_background(ctx)
    item = ctx.dynamodb.get_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": target.key_file.user_uuid}},
                                 ConsistentRead=True)["Item"]
    email = f"{target.key_file.username}@example.com"
    return {"user": item, "session": target.request("GET", "/session/me").status_code,
            "mail": len([m for m in recorder.messages if m.email == email])}


def audit_rows(viewer: Client, target: Client) -> list:
    return viewer.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"]


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.ADMIN])
def test_no_action_reaches_a_peer(server, role):
    url, ctx, recorder = server
    acting, peer = operator(url, ctx, role), operator(url, ctx, role)
    before = state(ctx, recorder, peer)
    for action, body in actions(peer).items():
        answer = act(acting, peer, action, **body)
        assert problem(answer)[:2] == (403, "forbidden"), (role, action, answer.text)
    assert state(ctx, recorder, peer) == before and before["session"] == 200
    assert audit_rows(acting, peer) == []


def test_no_action_reaches_a_higher_role(server):
    url, ctx, recorder = server
    support, admin = operator(url, ctx, Role.SUPPORT), operator(url, ctx, Role.ADMIN)
    before = state(ctx, recorder, admin)
    for action, body in actions(admin).items():
        assert problem(act(support, admin, action, **body))[:2] == (403, "forbidden"), action
    assert state(ctx, recorder, admin) == before and audit_rows(admin, admin) == []


def test_an_operator_acts_on_none_of_its_own_roles(server):
    url, ctx, recorder = server
    admin = operator(url, ctx, Role.ADMIN)
    before = state(ctx, recorder, admin)
    for role in ("admin", "support", "viewer"):
        assert problem(act(admin, admin, "roles", role=role, grant=False))[:2] == (403, "forbidden"), role
    assert problem(act(admin, admin, "lock"))[:2] == (403, "forbidden")
    assert state(ctx, recorder, admin) == before


def test_every_action_reaches_a_lower_role(server):
    url, ctx, _ = server
    support = operator(url, ctx, Role.SUPPORT)
    viewer = operator(url, ctx, Role.VIEWER)
    done = []
    for action, body in actions(viewer).items():
        if action == "roles":
            continue  # an admin's action: below
        answer = act(support, viewer, action, **body)
        assert answer.status_code == 200, (action, answer.text)
        done.append(answer)
    assert done[0].json()["locked"] is True and done[1].json()["locked"] is False
    assert [r["action"] for r in audit_rows(support, viewer)][::-1] == [
        "lock", "unlock", "revoke_sessions", "unbind", "limit", "resend_verification", "password_reset"]


def test_an_admin_changes_the_roles_of_lower_ones_up_to_its_own(server):
    url, ctx, _ = server
    admin, support = operator(url, ctx, Role.ADMIN), operator(url, ctx, Role.SUPPORT)
    raised = act(admin, support, "roles", role="admin", grant=True)  # not above the admin's own
    assert raised.status_code == 200 and "admin" in raised.json()["roles"]
    # ... and from then on it is a peer: only the CLI takes the role back
    assert problem(act(admin, support, "roles", role="admin", grant=False))[:2] == (403, "forbidden")
    viewer = operator(url, ctx, Role.VIEWER)
    lowered = act(admin, viewer, "roles", role="viewer", grant=False)
    assert lowered.status_code == 200 and lowered.json()["roles"] == []


def test_no_one_grants_a_role_above_their_own(server):
    url, ctx, recorder = server
    support, target = operator(url, ctx, Role.SUPPORT), operator(url, ctx, Role.VIEWER)
    robot = apps.add_app(ctx, name="support robot", push_url=None, admin_role="support")
    before = state(ctx, recorder, target)
    for role in ("support", "admin"):
        assert problem(act(support, target, "roles", role=role, grant=True))[:2] == (403, "forbidden")
    assert problem(act(support, support, "roles", role="admin", grant=True))[:2] == (403, "forbidden")
    assert state(ctx, recorder, target) == before
    token = _client_credentials(url, robot.app.client_id, robot.client_secret)
    peer = operator(url, ctx, Role.SUPPORT)
    for who, action in ((target, "roles"), (peer, "lock")):
        answer = requests.post(f"{url}/admin/accounts/{who.key_file.user_uuid}/{action}",
                               json={"reason": "robot", "role": "support", "grant": True},
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert problem(answer)[:2] == (403, "forbidden"), action
    assert state(ctx, recorder, target) == before and peer.request("GET", "/session/me").status_code == 200


def _client_credentials(url: str, client_id: str, secret: str) -> str:
    answer = requests.post(url + "/oidc/token", data={"grant_type": "client_credentials", "scope": "admin"},
                           auth=(client_id, secret), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]
