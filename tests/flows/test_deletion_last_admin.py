"""DELETE /account and the last admin (SPEC §15: the last admin cannot lose the role; §4 DELETE /account):
the write that starts an admin's deletion lowers the count of admins in the same transaction, only while
another admin is counted, so the count never keeps an admin that is gone and the last admin's account is
refused with 409 last_admin, however many admins delete themselves at once. Each test has tables of its
own: the count of admins is the whole deployment's."""
from __future__ import annotations

import threading
import uuid

import pytest

from accounts import user_service as users
from accounts.models import Role
from accounts.role_store import ADMINS_CLAIM
from citylogin.client.api import Client, CityloginError
from operators import service as operators
from operators.models import RoleRequest
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device

# races on fresh tables; tests/accounts/test_password_and_deletion.py keeps deletion in the fast tier
pytestmark = pytest.mark.slow

CLI = operators.Operator(role=Role.ADMIN, name="test", cli=True)


@pytest.fixture
def table_prefix():
    return f"t{uuid.uuid4().hex[:8]}_"  # one deployment per test: the count of admins is all of it


@pytest.fixture
def server(make_server):
    return make_server(max_concurrent_devices=0)


def signed_in(url: str) -> Client:
    client = register_device(url)
    client.login(PASSWORD)
    return client


def admins(ctx, url: str, count: int) -> list[Client]:
    """`count` accounts granted the admin role, counted as `citylogin admin` counts them."""
    made = [signed_in(url) for _ in range(count)]
    for client in made:
        users.set_role(ctx, user_uuid=client.key_file.user_uuid, role=Role.ADMIN, granted=True)
    assert users.count_admins(ctx) == count
    return made


def admin_granted(ctx, url: str) -> Client:
    """One more admin, granted where the count is kept already."""
    client = signed_in(url)
    users.set_role(ctx, user_uuid=client.key_file.user_uuid, role=Role.ADMIN, granted=True)
    return client


def delete(client: Client):
    return client.request("DELETE", "/account", json={"password": PASSWORD})


def counted(ctx) -> int:
    item = ctx.dynamodb.get_item(TableName=ctx.tables.claims, Key={"claim": {"S": ADMINS_CLAIM}},
                                 ConsistentRead=True)["Item"]
    return int(item["holders"]["N"])


def usable_admins(ctx) -> set[str]:
    """The accounts, not being deleted, that hold the admin role, as the users table itself says."""
    items = ctx.dynamodb.scan(TableName=ctx.tables.users, ConsistentRead=True)["Items"]
    return {i["user_uuid"]["S"] for i in items
            if "deleting_since" not in i and "admin" in i.get("roles", {}).get("SS", [])}


def test_the_last_admins_account_is_not_deleted_and_the_count_follows_deletions(server):
    url, ctx = server
    first, second = admins(ctx, url, 2)
    person = signed_in(url)
    assert delete(person).status_code == 204  # no admin role: the count does not move
    assert counted(ctx) == 2

    assert delete(first).status_code == 204
    assert counted(ctx) == 1 and usable_admins(ctx) == {second.key_file.user_uuid}
    with pytest.raises(CityloginError) as refused:  # what `citylogin account delete` prints
        second.delete_account(PASSWORD)
    assert (refused.value.status, refused.value.code) == (409, "last_admin")
    assert "citylogin admin grant" in refused.value.detail
    assert problem(delete(second)) == (409, "last_admin", None)
    assert second.request("GET", "/account").status_code == 200  # untouched, still signed in
    assert usable_admins(ctx) == {second.key_file.user_uuid} and counted(ctx) == 1
    with pytest.raises(users.LastAdminRole):  # the count was right: the last admin keeps the role
        operators.change_role(ctx, operator=CLI, user_uuid=second.key_file.user_uuid,
                              request=RoleRequest(reason="test", role=Role.ADMIN, grant=False))

    third = admin_granted(ctx, url)
    assert delete(second).status_code == 204  # another admin now: this one may go
    assert usable_admins(ctx) == {third.key_file.user_uuid} and counted(ctx) == 1
    assert problem(delete(third)) == (409, "last_admin", None)


@pytest.mark.parametrize("racing", [2, 4])
def test_the_last_admins_deleting_themselves_at_once_leave_one(server, racing):
    """Every admin of the deployment deletes itself at the same moment, through the write that starts a
    deletion: all but one go, and the count says one."""
    url, ctx = server
    holders = admins(ctx, url, racing)
    barrier, outcomes = threading.Barrier(racing), []

    def start_deletion(user_uuid: str) -> None:
        barrier.wait(timeout=60)
        try:
            outcomes.append(users.begin_deletion(ctx, user_uuid=user_uuid, holds_admin=True))
        except users.LastAdminAccount:
            outcomes.append("last_admin")

    threads = [threading.Thread(target=start_deletion, args=(c.key_file.user_uuid,)) for c in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(map(str, outcomes)) == ["True"] * (racing - 1) + ["last_admin"]
    assert len(usable_admins(ctx)) == 1 and counted(ctx) == 1


def test_two_last_admins_deleting_their_accounts_at_once_over_http(server):
    url, ctx = server
    pair = admins(ctx, url, 2)
    barrier, answers = threading.Barrier(2), []

    def delete_at_once(client: Client) -> None:
        barrier.wait(timeout=60)
        answers.append(delete(client))

    threads = [threading.Thread(target=delete_at_once, args=(client,)) for client in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(answer.status_code for answer in answers) == [204, 409]
    assert [problem(answer) for answer in answers if answer.status_code != 204] == [(409, "last_admin", None)]
    assert len(usable_admins(ctx)) == 1 and counted(ctx) == 1


def test_a_role_changed_while_a_deletion_starts_moves_the_count_rightly(server):
    """The flow read the account before a grant or a revocation committed: the write that starts the
    deletion is conditional on the role as read, so it reads it again and counts what is true."""
    url, ctx = server
    first, second = admins(ctx, url, 2)
    person = signed_in(url)
    users.set_role(ctx, user_uuid=person.key_file.user_uuid, role=Role.ADMIN, granted=True)  # after the read
    assert users.begin_deletion(ctx, user_uuid=person.key_file.user_uuid, holds_admin=False)
    assert counted(ctx) == 2 and usable_admins(ctx) == {first.key_file.user_uuid, second.key_file.user_uuid}

    users.set_role(ctx, user_uuid=first.key_file.user_uuid, role=Role.ADMIN, granted=False)
    assert users.begin_deletion(ctx, user_uuid=first.key_file.user_uuid, holds_admin=True)  # no longer one
    assert counted(ctx) == 1
    assert not users.begin_deletion(ctx, user_uuid=first.key_file.user_uuid, holds_admin=False)  # begun already
    assert counted(ctx) == 1 and usable_admins(ctx) == {second.key_file.user_uuid}


def test_admins_made_before_the_count_keep_their_accounts_until_counted(server):
    url, ctx = server
    legacy = [signed_in(url) for _ in range(2)]
    for client in legacy:  # as a release without the count wrote them
        ctx.dynamodb.update_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": client.key_file.user_uuid}},
                                 UpdateExpression="ADD #r :r", ExpressionAttributeNames={"#r": "roles"},
                                 ExpressionAttributeValues={":r": {"SS": ["admin"]}})
    assert problem(delete(legacy[0])) == (409, "last_admin", None)  # not counted: refused, never one too many gone
    assert len(usable_admins(ctx)) == 2

    assert users.count_admins(ctx) == 2  # what `citylogin admin revoke ... admin` does first
    assert delete(legacy[0]).status_code == 204
    assert problem(delete(legacy[1])) == (409, "last_admin", None)
    assert usable_admins(ctx) == {legacy[1].key_file.user_uuid} and counted(ctx) == 1
