"""Recovery codes (SPEC §4): shown once at registration, stored as digests, single-use under
races, replaceable, counted toward the lockout; POST /device/recover and GET /account."""
from __future__ import annotations

import re
import threading

import pytest
import requests

from citylogin.client.api import Client, CityloginError
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, register_device

CODE = re.compile(r"[23456789abcdefghjkmnpqrstuvwxyz]{4}-[23456789abcdefghjkmnpqrstuvwxyz]{4}"
                  r"-[23456789abcdefghjkmnpqrstuvwxyz]{4}")


class Recorder:
    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)


def recover(url: str, client: Client, code: str, **extra) -> requests.Response:
    body = {"username": client.key_file.username, "password": PASSWORD, "recovery_code": code, **extra}
    return requests.post(url + "/device/recover", json=body, timeout=30)


def account(client: Client) -> dict:
    return client.get_json("/account")


def scan_text(ctx, table: str) -> str:
    items, start = [], None
    while True:
        page = ctx.dynamodb.scan(TableName=table, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return repr(items)


def test_registration_shows_ten_codes_once_and_stores_only_digests(make_server):
    url, ctx = make_server()
    client = register_device(url)
    codes = client.recovery_codes
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(CODE.fullmatch(c) for c in codes), codes
    stored = "".join(scan_text(ctx, t) for t in (ctx.tables.users, ctx.tables.one_time_tokens, ctx.tables.devices))
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    item = ctx.dynamodb.get_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": client.key_file.user_uuid}},
                                 ConsistentRead=True)["Item"]
    assert len(item["recovery_code_digests"]["SS"]) == 10
    client.login(PASSWORD)
    me = account(client)
    assert me == {"user_uuid": client.key_file.user_uuid, "username": client.key_file.username,
                  "email": f"{client.key_file.username}@example.com", "email_verified": False,
                  "created_at": me["created_at"], "locale": "en", "recovery_codes_left": 10,
                  "max_concurrent_devices": 1, "roles": [], "has_password": True}
    assert me["created_at"].endswith("Z")


def test_a_code_gives_a_working_device_once(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    lost = register_device(url)
    codes = lost.recovery_codes
    found = Client(url)
    key_file = found.recover(codes[0].upper().replace("-", " "), username=lost.key_file.username, password=PASSWORD,
                             device_name="new phone")
    assert key_file.user_uuid == lost.key_file.user_uuid and key_file.device_id != lost.key_file.device_id
    assert found.login(PASSWORD)["device_id"] == key_file.device_id
    assert account(found)["recovery_codes_left"] == 9
    assert [m.event for m in recorder.messages if m.event == "device_recovered"] == ["device_recovered"]

    again = recover(url, lost, codes[0])
    assert problem(again)[:2] == (401, "invalid_recovery_code")
    assert problem(recover(url, lost, "zzzz-zzzz-zzzz"))[:2] == (401, "invalid_recovery_code")
    wrong_password = recover(url, lost, codes[1], password="not the password")
    assert problem(wrong_password)[:2] == (401, "invalid_credentials")
    unknown = requests.post(url + "/device/recover", timeout=30, json={
        "username": "nobody" + lost.key_file.username, "password": PASSWORD, "recovery_code": codes[1]})
    assert problem(unknown)[:2] == (401, "invalid_credentials")
    assert account(found)["recovery_codes_left"] == 9


def test_parallel_redemptions_of_one_code_let_exactly_one_through(make_server):
    url, ctx = make_server(login_max_failures=1000)
    lost = register_device(url)
    code = lost.recovery_codes[3]
    barrier, answers = threading.Barrier(10), []

    def redeem() -> None:
        barrier.wait()
        answers.append(recover(url, lost, code))

    threads = [threading.Thread(target=redeem) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [401] * 9, [(a.status_code, a.text[:120]) for a in answers]
    assert {problem(a)[1] for a in answers if a.status_code == 401} == {"invalid_recovery_code"}
    devices = ctx.dynamodb.query(TableName=ctx.tables.devices, KeyConditionExpression="user_uuid = :u",
                                 ExpressionAttributeValues={":u": {"S": lost.key_file.user_uuid}})["Items"]
    assert len([d for d in devices if not d["device_id"]["S"].startswith("#")]) == 2


def test_new_codes_void_the_old_ones_and_the_count_goes_down(make_server):
    url, _ = make_server()
    client = register_device(url)
    old = client.recovery_codes
    client.login(PASSWORD)
    with pytest.raises(CityloginError) as refused:
        client.replace_recovery_codes("not the password")
    assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")
    new = client.replace_recovery_codes(PASSWORD)
    assert len(set(new)) == 10 and not set(new) & set(old)
    assert account(client)["recovery_codes_left"] == 10
    assert problem(recover(url, client, old[0]))[:2] == (401, "invalid_recovery_code")
    for used, code in enumerate(new[:2], start=1):
        assert recover(url, client, code).status_code == 201
        assert account(client)["recovery_codes_left"] == 10 - used
    no_token = requests.post(url + "/account/recovery_codes", json={"password": PASSWORD}, timeout=30)
    assert bearer_problem(no_token)[0] == 401


def test_wrong_codes_count_toward_the_lockout(make_server):
    url, _ = make_server(login_max_failures=3)
    client = register_device(url)
    for _ in range(3):
        assert problem(recover(url, client, "2222-3333-4444"))[:2] == (401, "invalid_recovery_code")
    locked = recover(url, client, client.recovery_codes[0])
    assert problem(locked)[:2] == (429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) > 0


def test_unbind_other_devices_ends_their_sessions(make_server):
    url, _ = make_server()
    old = register_device(url)
    old.login(PASSWORD)
    new = Client(url)
    new.recover(old.recovery_codes[0], username=old.key_file.username, password=PASSWORD,
                unbind_other_devices=True)
    assert bearer_problem(old.request("GET", "/session/me")) == (401, "session_revoked", "device_unbound")
    new.login(PASSWORD)
    listed = {d["device_id"]: d["status"] for d in new.get_json("/device/list")["devices"]}
    assert listed == {old.key_file.device_id: "revoked", new.key_file.device_id: "active"}
    with pytest.raises(CityloginError) as refused:
        old.login(PASSWORD)
    assert refused.value.code == "device_revoked"


def test_the_device_limit_applies_unless_the_others_are_unbound(make_server):
    url, _ = make_server(max_registered_devices=1)
    client = register_device(url)
    code = client.recovery_codes[0]
    assert problem(recover(url, client, code))[:2] == (409, "device_limit_reached")
    client.login(PASSWORD)
    assert account(client)["recovery_codes_left"] == 10  # the refused transaction used no code
    assert recover(url, client, code, unbind_other_devices=True).status_code == 201
    assert problem(recover(url, client, client.recovery_codes[1]))[:2] == (409, "device_limit_reached")


def test_an_operator_limit_shows_in_the_account(make_server):
    url, ctx = make_server()
    client = register_device(url)
    ctx.dynamodb.update_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": client.key_file.user_uuid}},
                             UpdateExpression="SET max_concurrent_devices = :n",
                             ExpressionAttributeValues={":n": {"N": "3"}})
    client.login(PASSWORD)
    assert account(client)["max_concurrent_devices"] == 3


def test_a_locked_account_cannot_recover(make_server):
    url, ctx = make_server()
    client = register_device(url)
    ctx.dynamodb.update_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": client.key_file.user_uuid}},
                             UpdateExpression="SET locked = :t", ExpressionAttributeValues={":t": {"BOOL": True}})
    assert problem(recover(url, client, client.recovery_codes[0]))[:2] == (403, "account_locked")
