"""An imported password hash (SPEC §17) at its account's first sign-ins, over HTTP on DynamoDB Local: the
first login that matches it replaces it with citylogin's Argon2id in the login's own transaction, the
same password keeps working, a wrong one counts toward the lockout, and a change or reset racing the
login is never undone. Recovery and re-authentication replace it too (the rehash on their check)."""
from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from accounts import credential_service, user_service
from accounts.credential_service import InvalidCredentials
from citylogin.client.api import Client, CityloginError
from common.crypto.imported_hashes import canonical_hash, scheme_key
from common.crypto.passwords import IMPORTED_PREFIX, hash_parameters, is_imported
from common.keys.imported_schemes import record_schemes
from tests.common.crypto.test_imported_checks import imported_hashes
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, register_device

NEW_PASSWORD = "a brand new long passphrase"
WRONG = "not the password at all"
SCHEMES = ["bcrypt", "argon2id", "pbkdf2", "scrypt"]


def import_hash(ctx, client: Client, scheme: str, password: str = PASSWORD) -> str:
    """`client`'s account given an imported hash of `password`, as an import stores it: its scheme key
    recorded first and learnt by the server (as at its next key-ring reload)."""
    stored = IMPORTED_PREFIX + canonical_hash(imported_hashes(password)[scheme])
    assert record_schemes(ctx.dynamodb, ctx.tables.key_ring, [scheme_key(stored[len(IMPORTED_PREFIX):])],
                          encryptor=ctx.key_ring.encryptor) == []
    ctx.password_parameters.refresh(max_age=0)
    ctx.dynamodb.update_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": client.key_file.user_uuid}},
                             UpdateExpression="SET password_hash = :h, imported_from = :from, imported_at = :at",
                             ExpressionAttributeValues={":h": {"S": stored}, ":from": {"S": "keycloak"},
                                                        ":at": {"S": "2026-01-02T03:04:05Z"}})
    return stored


def stored_hash(ctx, client: Client) -> str:
    return user_service.get_user(ctx, user_uuid=client.key_file.user_uuid).password_hash


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_first_login_replaces_the_imported_hash_with_argon2id(make_server, scheme):
    url, ctx = make_server()
    client = register_device(url)
    imported = import_hash(ctx, client, scheme)
    assert user_service.get_user(ctx, user_uuid=client.key_file.user_uuid).password_upgraded is False
    assert client.login(PASSWORD)["user_uuid"] == client.key_file.user_uuid
    upgraded = stored_hash(ctx, client)
    assert upgraded != imported and not is_imported(upgraded)
    assert hash_parameters(upgraded) == ctx.passwords.parameters
    assert user_service.get_user(ctx, user_uuid=client.key_file.user_uuid).password_upgraded is True
    client.logout()
    assert client.login(PASSWORD)["user_uuid"] == client.key_file.user_uuid  # the same password, its new hash
    assert stored_hash(ctx, client) == upgraded


def test_a_wrong_password_of_an_imported_account_counts_toward_the_lockout(make_server):
    url, ctx = make_server(login_max_failures=3, login_max_failures_per_ip=100000)
    client = register_device(url)
    imported = import_hash(ctx, client, "bcrypt")
    for _ in range(3):
        with pytest.raises(CityloginError) as refused:
            client.login(WRONG)
        assert refused.value.code == "invalid_credentials"
    with pytest.raises(CityloginError) as locked:
        client.login(PASSWORD)
    assert (locked.value.status, locked.value.code) == (429, "too_many_attempts")
    assert stored_hash(ctx, client) == imported  # nothing matched: nothing replaced


def test_an_upgrade_racing_a_password_change_never_puts_the_old_password_back(make_server):
    """The login read the imported hash and its password matched it; a change lands before the
    login's transaction: the transaction is refused (401) and the standalone upgrade writes nothing."""
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    import_hash(ctx, client, "pbkdf2")
    user_uuid = client.key_file.user_uuid
    read_by_the_login = user_service.get_user(ctx, user_uuid=user_uuid)
    assert ctx.passwords.check(read_by_the_login.password_hash, PASSWORD)
    upgrade = credential_service.password_upgrade(ctx.passwords, user=read_by_the_login, secret=PASSWORD)
    assert upgrade is not None
    changed = client.request("POST", "/account/password",
                             json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 204  # the change lands in between
    seat = credential_service.seat_write(ctx, user_uuid=user_uuid, upgrade=upgrade)
    with pytest.raises(ClientError):
        ctx.dynamodb.transact_write_items(TransactItems=[seat.item])
    assert isinstance(seat.refusal(), InvalidCredentials)
    credential_service.upgrade_alone(ctx, upgrade)
    stored = user_service.get_user(ctx, user_uuid=user_uuid).password_hash
    assert ctx.passwords.check(stored, NEW_PASSWORD) and not ctx.passwords.check(stored, PASSWORD)


def test_an_upgrade_racing_a_password_reset_never_puts_the_old_password_back(make_server):
    """As above, with a reset link confirmed between the login's check and its transaction."""
    from tests.accounts.test_password_and_deletion import RESET_LINK, Recorder, confirm, reset

    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    client = register_device(url)
    import_hash(ctx, client, "argon2id")
    user_uuid = client.key_file.user_uuid
    read_by_the_login = user_service.get_user(ctx, user_uuid=user_uuid)
    assert ctx.passwords.check(read_by_the_login.password_hash, PASSWORD)
    upgrade = credential_service.password_upgrade(ctx.passwords, user=read_by_the_login, secret=PASSWORD)
    assert upgrade is not None
    assert reset(url, f"{client.key_file.username}@example.com").status_code == 202
    [sent] = recorder.wait_for("password_reset")
    assert confirm(url, RESET_LINK.search(sent.body).group(2), NEW_PASSWORD).status_code == 204
    seat = credential_service.seat_write(ctx, user_uuid=user_uuid, upgrade=upgrade)
    with pytest.raises(ClientError):
        ctx.dynamodb.transact_write_items(TransactItems=[seat.item])
    credential_service.upgrade_alone(ctx, upgrade)
    stored = user_service.get_user(ctx, user_uuid=user_uuid).password_hash
    assert ctx.passwords.check(stored, NEW_PASSWORD) and not ctx.passwords.check(stored, PASSWORD)
    with pytest.raises(CityloginError) as refused:
        client.login(PASSWORD)
    assert refused.value.code == "invalid_credentials"
    assert client.login(NEW_PASSWORD)["user_uuid"] == user_uuid


def race_login_and_change(first: Client, second: Client) -> dict[str, object]:
    """`second` logs in while `first` changes the password (asked with the old one), on two threads."""
    answers: dict[str, object] = {}

    def log_in() -> None:
        try:
            answers["login"] = second.login(PASSWORD)
        except CityloginError as refused:
            answers["login"] = refused.code

    def change() -> None:
        answers["change"] = first.request("POST", "/account/password", json={
            "current_password": PASSWORD, "new_password": NEW_PASSWORD}).status_code
    threads = [threading.Thread(target=log_in), threading.Thread(target=change)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_logins_racing_password_changes_never_bring_the_old_password_back(make_server):
    url, ctx = make_server(login_max_failures=1000)
    for _ in range(4):
        first = register_device(url)
        second = add_device(ctx, first, name="tablet")
        first.login(PASSWORD)
        import_hash(ctx, first, "scrypt")
        answers = race_login_and_change(first, second)
        stored = stored_hash(ctx, first)
        assert not is_imported(stored), answers
        if answers["change"] == 204:
            assert ctx.passwords.check(stored, NEW_PASSWORD) and not ctx.passwords.check(stored, PASSWORD), answers
        else:  # refused: the old password is still the password, in citylogin's hash
            assert ctx.passwords.check(stored, PASSWORD), answers


def test_recovery_replaces_the_imported_hash(make_server):
    url, ctx = make_server()
    lost = register_device(url)
    import_hash(ctx, lost, "argon2id")
    found = Client(url)
    found.recover(lost.recovery_codes[0], username=lost.key_file.username, password=PASSWORD, device_name="new phone")
    upgraded = stored_hash(ctx, lost)
    assert not is_imported(upgraded) and ctx.passwords.check(upgraded, PASSWORD)
    assert found.login(PASSWORD)["user_uuid"] == lost.key_file.user_uuid


def test_a_password_asked_again_replaces_the_imported_hash(make_server):
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    import_hash(ctx, client, "bcrypt")
    wrong = client.request("POST", "/account/recovery_codes", json={"password": WRONG})
    assert problem(wrong)[:2] == (401, "invalid_credentials")
    assert is_imported(stored_hash(ctx, client))
    assert client.request("POST", "/account/recovery_codes", json={"password": PASSWORD}).status_code == 201
    upgraded = stored_hash(ctx, client)
    assert not is_imported(upgraded) and ctx.passwords.check(upgraded, PASSWORD)


def test_pairing_a_device_with_the_password_replaces_the_imported_hash(make_server):
    url, ctx = make_server()
    first = register_device(url)
    first.login(PASSWORD)
    import_hash(ctx, first, "scrypt")
    payload = first.request_pairing()["qr_code"]
    second = Client(url)
    with pytest.raises(CityloginError):
        second.pair(payload, username=first.key_file.username, password=WRONG)
    assert is_imported(stored_hash(ctx, first))
    second.pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)
    upgraded = stored_hash(ctx, first)
    assert not is_imported(upgraded) and ctx.passwords.check(upgraded, PASSWORD)
