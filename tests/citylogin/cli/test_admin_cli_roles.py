"""`citylogin admin grant|revoke` and the last admin (SPEC §15): the CLI acts on admins, which the API never
does, but the last account with the admin role keeps it, refused with a clear message, whoever races. The
count of admins moves in the same transaction as the role; admins made before it was kept are counted
from the users table first. Each test has tables of its own: the count is the whole deployment's."""
from __future__ import annotations

import base64
import os
import threading
import uuid

import pytest
from click.testing import CliRunner

from accounts import user_service as users
from accounts.models import Role
from accounts.role_store import ADMINS_CLAIM
from citylogin.cli.main import main
from operators import service as operators
from operators.models import RoleRequest
from tests.support.fixtures import cli_environment
from tests.support.live import register_device

# the CLI in subprocesses and races; tests/operators/test_admin_peers.py keeps the roles in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture
def table_prefix():
    return f"t{uuid.uuid4().hex[:8]}_"  # one deployment per test: the count of admins is all of it


@pytest.fixture
def start(make_server, base_config, tmp_path):
    kek = base64.b64encode(os.urandom(32)).decode()
    url, ctx = make_server(key_encryption_key=kek)
    return url, ctx, cli_environment(base_config, kek=kek, data_dir=str(tmp_path))


def admin_cli(env: dict, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["admin", *args], env=env)
    assert (result.exit_code == 0) is ok, result.output
    assert "Traceback" not in result.output
    return result.output


def account(url: str):
    return register_device(url).key_file


def roles_of(ctx, user_uuid: str) -> set[str]:
    return set(users.get_user(ctx, user_uuid=user_uuid).roles or ())


def admins_in_table(ctx) -> int:
    items = ctx.dynamodb.scan(TableName=ctx.tables.users, ConsistentRead=True)["Items"]
    return sum(1 for i in items if "admin" in i.get("roles", {}).get("SS", []))


def test_the_cli_takes_the_admin_role_from_an_admin_but_never_from_the_last(start):
    url, ctx, env = start
    first, second = account(url), account(url)
    admin_cli(env, "grant", first.username, "admin")
    admin_cli(env, "grant", second.username, "admin")
    admin_cli(env, "grant", second.username, "admin")  # again: idempotent, counted once
    admin_cli(env, "lock", second.username, "--reason", "the CLI acts on admins")
    assert users.get_user(ctx, user_uuid=second.user_uuid).locked
    admin_cli(env, "revoke", first.username, "admin")
    assert roles_of(ctx, first.user_uuid) == set()

    refused = admin_cli(env, "revoke", second.username, "admin", ok=False)
    assert "last account with the admin role" in refused
    assert roles_of(ctx, second.user_uuid) == {"admin"}
    admin_cli(env, "revoke", first.username, "admin")  # holds none: nothing to take, nothing counted
    assert "last account" in admin_cli(env, "revoke", second.username, "admin", ok=False)

    admin_cli(env, "grant", first.username, "admin")
    admin_cli(env, "revoke", second.username, "admin")
    assert roles_of(ctx, second.user_uuid) == set() and admins_in_table(ctx) == 1


def test_admins_made_before_the_count_are_counted_before_one_loses_the_role(start):
    url, ctx, env = start
    legacy = [account(url) for _ in range(2)]
    for key_file in legacy:  # as a release without the count wrote them
        ctx.dynamodb.update_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": key_file.user_uuid}},
                                 UpdateExpression="ADD #r :r", ExpressionAttributeNames={"#r": "roles"},
                                 ExpressionAttributeValues={":r": {"SS": ["admin"]}})
    assert ctx.dynamodb.get_item(TableName=ctx.tables.claims, Key={"claim": {"S": ADMINS_CLAIM}}).get("Item") is None
    with pytest.raises(users.LastAdminRole):  # not counted yet: no admin loses the role
        users.set_role(ctx, user_uuid=legacy[0].user_uuid, role=Role.ADMIN, granted=False)
    admin_cli(env, "revoke", legacy[0].username, "admin")
    assert "last account" in admin_cli(env, "revoke", legacy[1].username, "admin", ok=False)
    assert admins_in_table(ctx) == 1 and roles_of(ctx, legacy[1].user_uuid) == {"admin"}


@pytest.mark.parametrize("admins", [2, 4])
def test_racing_revocations_leave_one_admin(start, admins):
    url, ctx, _ = start
    holders = [account(url) for _ in range(admins)]
    for key_file in holders:
        users.set_role(ctx, user_uuid=key_file.user_uuid, role=Role.ADMIN, granted=True)
    assert users.count_admins(ctx) == admins  # as `citylogin admin revoke` does first
    cli = operators.Operator(role=Role.ADMIN, name="racer", cli=True)
    barrier, outcomes = threading.Barrier(admins), []

    def revoke(user_uuid: str) -> None:
        request = RoleRequest(reason="race", role=Role.ADMIN, grant=False)
        barrier.wait()
        try:
            operators.change_role(ctx, operator=cli, user_uuid=user_uuid, request=request)
            outcomes.append("revoked")
        except users.LastAdminRole:
            outcomes.append("last")

    threads = [threading.Thread(target=revoke, args=(k.user_uuid,)) for k in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["last"] + ["revoked"] * (admins - 1)
    assert admins_in_table(ctx) == 1
    count = ctx.dynamodb.get_item(TableName=ctx.tables.claims, Key={"claim": {"S": ADMINS_CLAIM}},
                                  ConsistentRead=True)["Item"]
    assert count["holders"] == {"N": "1"}
