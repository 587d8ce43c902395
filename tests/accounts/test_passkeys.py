"""Passkeys over HTTP against the all-in-one app, with a software authenticator whose credentials
and assertions py_webauthn verifies: register, list, rename, remove; sign in with one in place of
the password (never in place of the device's proof); re-authenticate with one. Each bad assertion
gets its own clear 4xx."""
from __future__ import annotations

import re
import secrets
import threading

import pytest
import requests

import accounts.passkey_service as passkey_service
from citylogin.client.api import CityloginError, ConcurrentLoginRequired
from citylogin.client.keys import sign_challenge
from sessions import service as sessions
from sessions.models import RevokeReason
from tests.accounts.test_password_and_deletion import NEW_PASSWORD, Recorder, confirm, reset
from tests.support.deletion_check import leftovers
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, add_device, register_device, settle_background
from tests.support.soft_authenticator import SoftAuthenticator

PUBLIC_URL = "https://login.example.test"


@pytest.fixture
def server(make_server):
    return make_server(public_url=PUBLIC_URL, max_concurrent_devices=1)


def authed(client, method: str, path: str, body: dict | None = None) -> requests.Response:
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


def add_passkey(client, authenticator: SoftAuthenticator, *, reauth: dict | None = None, name: str | None = None):
    """Options (after re-authenticating), create, register: the new passkey's id."""
    options = authed(client, "POST", "/account/passkeys/options", reauth or {"password": PASSWORD})
    assert options.status_code == 200, options.text
    assert options.headers["Cache-Control"] == "no-store"
    credential = authenticator.create(options.json())
    added = authed(client, "POST", "/account/passkeys", {"credential": credential, **({"name": name} if name else {})})
    assert added.status_code == 201, added.text
    return added.json()["id"]


def assertion(client, authenticator: SoftAuthenticator, *, username: str | None = None, **choice) -> dict:
    options = client.passkey_options(username=username)
    return authenticator.get(options, **choice)


def login_problem(client, passkey: dict, **kwargs) -> tuple[int, str, str | None]:
    with pytest.raises(CityloginError) as refused:
        client.login(passkey=passkey, **kwargs)
    return refused.value.status, refused.value.code, None


def passkey_user(server):
    url, ctx = server
    client = register_device(url)
    client.login(PASSWORD)
    authenticator = SoftAuthenticator(PUBLIC_URL)
    credential_id = add_passkey(client, authenticator, name="Laptop passkey")
    return client, authenticator, credential_id


def test_a_passkey_is_added_listed_renamed_and_removed_after_re_authenticating(server):
    url, ctx = server
    client = register_device(url)
    client.login(PASSWORD)
    assert problem(authed(client, "POST", "/account/passkeys/options", {}))[:2] == (400, "missing_fields")
    assert problem(authed(client, "POST", "/account/passkeys/options",
                          {"password": "not the password"}))[:2] == (401, "invalid_credentials")
    options = authed(client, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    assert options["rp"]["id"] == "login.example.test"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    authenticator = SoftAuthenticator(PUBLIC_URL)
    credential = authenticator.create(options)
    added = authed(client, "POST", "/account/passkeys", {"credential": credential, "name": "Work laptop"})
    assert added.status_code == 201 and added.json() == {"id": credential["id"], "name": "Work laptop"}
    # The creation challenge is used up: the same credential again is refused.
    assert problem(authed(client, "POST", "/account/passkeys", {"credential": credential}))[:2] == (
        401, "invalid_credentials")

    listed = authed(client, "GET", "/account/passkeys").json()["passkeys"]
    assert [(p["id"], p["name"], p["backed_up"], p["last_used_at"]) for p in listed] == [
        (credential["id"], "Work laptop", False, None)]
    # A second passkey's options exclude the first.
    again = authed(client, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    assert [c["id"] for c in again["excludeCredentials"]] == [credential["id"]]

    renamed = authed(client, "PATCH", f"/account/passkeys/{credential['id']}", {"name": "Old laptop"})
    assert renamed.json() == {"id": credential["id"], "name": "Old laptop"}
    assert problem(authed(client, "PATCH", "/account/passkeys/AAAAAAAAAAAAAAAAAAAAAA", {"name": "x"}))[:2] == (
        404, "passkey_not_found")
    assert problem(authed(client, "DELETE", f"/account/passkeys/{credential['id']}", {}))[:2] == (
        400, "missing_fields")
    assert problem(authed(client, "DELETE", f"/account/passkeys/{credential['id']}",
                          {"password": "wrong password"}))[:2] == (401, "invalid_credentials")
    removed = authed(client, "DELETE", f"/account/passkeys/{credential['id']}",
                     {"passkey": assertion(client, authenticator, username=client.key_file.username)})
    assert removed.status_code == 204, removed.text
    assert authed(client, "GET", "/account/passkeys").json() == {"passkeys": []}
    assert problem(authed(client, "DELETE", f"/account/passkeys/{credential['id']}",
                          {"password": PASSWORD}))[:2] == (404, "passkey_not_found")


def test_sign_in_with_a_passkey_by_username_or_discoverable_keeps_the_device_proof(server):
    client, authenticator, credential_id = passkey_user(server)
    username = client.key_file.username
    client.logout()
    options = client.passkey_options(username=username)
    assert [c["id"] for c in options["allowCredentials"]] == [credential_id]
    assert options["rpId"] == "login.example.test" and options["userVerification"] == "required"
    issued = client.login(passkey=authenticator.get(options))
    assert issued["token_type"] == "DPoP" and client.request("GET", "/session/me").status_code == 200
    client.logout()

    discoverable = client.passkey_options()
    assert discoverable["allowCredentials"] == []
    key_file = client.key_file
    body = {"passkey": authenticator.get(discoverable), "client_cert": key_file.client_cert_b64()}
    refused = requests.post(client.base_url + "/login/", json=body, timeout=10)
    assert problem(refused)[:2] == (400, "missing_fields")          # the device must still prove itself
    assert set(refused.json()["fields"]) == {"challenge", "signature"}

    challenge = requests.post(client.base_url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    body.update(passkey=assertion(client, authenticator), challenge=challenge,   # no username: the certificate's
                signature=sign_challenge(key_file.private_key(), challenge))    # account, whose passkey it is
    signed_in = requests.post(client.base_url + "/login/", json=body, timeout=10)
    assert signed_in.status_code == 200, signed_in.text
    client.use_tokens(signed_in.json())
    assert client.request("GET", "/session/me").status_code == 200
    listed = authed(client, "GET", "/account/passkeys").json()["passkeys"]
    assert listed[0]["last_used_at"] is not None
    history = authed(client, "GET", "/session/history").json()["items"]
    assert [i["result"] for i in history[:2]] == ["success", "success"]


def test_each_bad_assertion_gets_a_clear_refusal(server):
    url, ctx = server
    client, authenticator, credential_id = passkey_user(server)
    username = client.key_file.username
    client.logout()

    authenticator.origin = "https://phish.example.test"
    assert login_problem(client, assertion(client, authenticator, username=username))[:2] == (
        401, "invalid_credentials")
    authenticator.origin, authenticator.rp_id = PUBLIC_URL, "phish.example.test"
    assert login_problem(client, assertion(client, authenticator, username=username))[:2] == (
        401, "invalid_credentials")
    authenticator.rp_id = None
    authenticator.user_verified = False
    assert login_problem(client, assertion(client, authenticator, username=username))[:2] == (
        401, "invalid_credentials")
    authenticator.user_verified = True

    replayed = assertion(client, authenticator, username=username)
    client.login(passkey=replayed)
    client.logout()
    assert login_problem(client, replayed)[:2] == (401, "invalid_credentials")   # its challenge is used up

    other = register_device(url)                       # another user's passkey, with this device
    other.login(PASSWORD)
    other_authenticator = SoftAuthenticator(PUBLIC_URL)
    add_passkey(other, other_authenticator)
    foreign = other_authenticator.get(client.passkey_options())
    assert login_problem(client, foreign)[:2] == (401, "invalid_credentials")

    sent = []
    ctx.notifier.backend.send = sent.append
    client.login(PASSWORD)
    add_passkey(client, SoftAuthenticator(PUBLIC_URL), name="Spare")
    client.logout()
    settle_background(ctx)
    assert [(m.event, "Spare" in m.body) for m in sent] == [("passkey_added", True)]
    sent.clear()
    authenticator.set_counter(credential_id, 0)        # a copy of the authenticator, behind the original
    assert login_problem(client, assertion(client, authenticator, username=username))[:2] == (
        401, "passkey_counter_regressed")
    settle_background(ctx)
    assert [m.event for m in sent if m.user_uuid == client.key_file.user_uuid] == ["passkey_counter"]

    authenticator.set_counter(credential_id, 100)
    client.login(passkey=assertion(client, authenticator, username=username))
    stale = assertion(client, authenticator, username=username)
    assert authed(client, "DELETE", f"/account/passkeys/{credential_id}", {"password": PASSWORD}).status_code == 204
    client.logout()
    assert login_problem(client, stale)[:2] == (401, "invalid_credentials")     # a removed passkey


def test_a_synced_passkey_whose_counter_stays_zero_signs_in_again_and_again(server):
    url, _ = server
    client = register_device(url)
    client.login(PASSWORD)
    authenticator = SoftAuthenticator(PUBLIC_URL, backup_eligible=True, backed_up=True, counter_step=0)
    add_passkey(client, authenticator)
    assert authed(client, "GET", "/account/passkeys").json()["passkeys"][0]["backed_up"] is True
    for _ in range(2):
        client.logout()
        client.login(passkey=assertion(client, authenticator))


def test_a_passkey_login_over_the_limit_asks_and_its_confirm_displaces_the_other_device(server):
    url, ctx = server
    client, authenticator, _ = passkey_user(server)
    other = add_device(ctx, client, name="Phone")
    client.logout()
    other.login(PASSWORD)
    with pytest.raises(ConcurrentLoginRequired) as refused:
        client.login(passkey=assertion(client, authenticator))
    assert [d["device_id"] for d in refused.value.active_devices] == [other.key_file.device_id]
    evicted = client.confirm(refused.value.confirm_token)["evicted"]
    assert [d["device_id"] for d in evicted] == [other.key_file.device_id]
    assert problem(other.request("GET", "/session/me")) == (401, "session_revoked", "displaced")


def test_re_authentication_by_passkey_for_every_sensitive_action_uses_each_assertion_once(server):
    client, authenticator, credential_id = passkey_user(server)
    username = client.key_file.username

    def reauth() -> dict:
        return assertion(client, authenticator, username=username)

    codes = authed(client, "POST", "/account/recovery_codes", {"passkey": reauth()})
    assert codes.status_code == 201 and len(codes.json()["recovery_codes"]) == 10
    used = reauth()
    assert authed(client, "POST", "/account/email", {"passkey": used,
                                                      "new_email": f"{username}-new@example.com"}).status_code == 202
    assert problem(authed(client, "POST", "/account/recovery_codes", {"passkey": used}))[:2] == (
        401, "invalid_credentials")
    assert problem(authed(client, "POST", "/account/recovery_codes",
                          {"password": PASSWORD, "passkey": reauth()}))[:2] == (400, "invalid_field")
    changed = authed(client, "POST", "/account/password", {"passkey": reauth(),
                                                           "new_password": "a brand new passphrase 42"})
    assert changed.status_code == 204, changed.text
    assert authed(client, "DELETE", "/account", {"passkey": reauth()}).status_code == 204
    ctx = server[1]
    left = leftovers(ctx.dynamodb, ctx.tables, user_uuid=client.key_file.user_uuid, username=username,
                     email=f"{username}-new@example.com")
    assert not [line for line in left if line.startswith(ctx.tables.passkeys)], left   # its passkeys went too


def test_failed_passkeys_count_toward_the_lockout(server):
    client, authenticator, _ = passkey_user(server)
    username = client.key_file.username
    client.logout()
    authenticator.origin = "https://phish.example.test"
    codes = [login_problem(client, assertion(client, authenticator, username=username))[1] for _ in range(6)]
    assert codes == ["invalid_credentials"] * 5 + ["too_many_attempts"]


def test_one_assertion_sent_at_once_by_many_threads_signs_in_once(make_server):
    """The challenge's use and the counter move in one transaction: of parallel logins with one
    assertion (a copied request), exactly one gets a session, on DynamoDB Local. The seven refusals
    would lock the account after five (a 429 for the later ones, as soon as the fifth is recorded
    before they are checked): the lockout is not what this test is about, so it is set above them."""
    server = make_server(public_url=PUBLIC_URL, max_concurrent_devices=1, login_max_failures=100)
    url, ctx = server
    client, authenticator, _ = passkey_user(server)
    client.logout()
    shared = assertion(client, authenticator)
    key_file = client.key_file
    outcomes: list[int] = []
    start = threading.Barrier(8)

    def attempt() -> None:
        from citylogin.client.api import Client
        device = Client(url, key_file=key_file)
        start.wait()
        try:
            device.login(passkey=shared, force=True)
            outcomes.append(200)
        except CityloginError as refused:
            outcomes.append(refused.status)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [200] + [401] * 7


def test_a_new_passkey_from_another_origin_for_another_account_under_a_known_id_or_over_the_limit_is_refused(
        server, monkeypatch):
    url, _ = server
    client = register_device(url)
    client.login(PASSWORD)
    phished = SoftAuthenticator("https://phish.example.test")
    options = authed(client, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    refused = authed(client, "POST", "/account/passkeys", {"credential": phished.create(options)})
    assert problem(refused)[:2] == (401, "invalid_credentials")

    other = register_device(url)
    other.login(PASSWORD)
    theirs = authed(other, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    mine = SoftAuthenticator(PUBLIC_URL)
    refused = authed(client, "POST", "/account/passkeys", {"credential": mine.create(theirs)})  # its challenge
    assert problem(refused)[:2] == (401, "invalid_credentials")

    # an authenticator that offers an id already registered (a broken or malicious one) is refused
    known = add_passkey(client, mine)
    options = authed(client, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    refused = authed(client, "POST", "/account/passkeys", {"credential": mine.create(options, credential_id=known)})
    assert problem(refused)[:2] == (409, "passkey_exists")
    assert [p["id"] for p in authed(client, "GET", "/account/passkeys").json()["passkeys"]] == [known]
    authed(client, "DELETE", f"/account/passkeys/{known}", {"password": PASSWORD}).raise_for_status()

    monkeypatch.setattr("accounts.passkey_service.MAX_PASSKEYS", 2)
    add_passkey(client, SoftAuthenticator(PUBLIC_URL))
    add_passkey(client, SoftAuthenticator(PUBLIC_URL))
    options = authed(client, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    refused = authed(client, "POST", "/account/passkeys", {"credential": SoftAuthenticator(PUBLIC_URL).create(options)})
    assert problem(refused)[:2] == (409, "passkey_limit_reached")
    assert len(authed(client, "GET", "/account/passkeys").json()["passkeys"]) == 2


def test_a_passkey_never_stands_in_for_the_device(server):
    """Another account's device (its own key, certificate and proof) with this account's passkey:
    the certificate is not this account's, and without a username the passkey is not that account's."""
    url, _ = server
    client, authenticator, _ = passkey_user(server)
    stranger = register_device(url)
    client.logout()
    with pytest.raises(CityloginError) as refused:   # the stranger's device, this account's name and passkey
        stranger.key_file = stranger.key_file.__class__(**{**stranger.key_file.__dict__,
                                                           "username": client.key_file.username})
        stranger.login(passkey=assertion(client, authenticator, username=client.key_file.username))
    assert (refused.value.status, refused.value.code) == (401, "certificate_mismatch")
    key_file = stranger.key_file
    challenge = requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    body = {"passkey": assertion(client, authenticator), "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
    assert problem(requests.post(url + "/login/", json=body, timeout=10))[:2] == (401, "invalid_credentials")


def test_passkey_options_count_toward_the_challenges_of_an_address(make_server):
    url, ctx = make_server(public_url=PUBLIC_URL, challenges_per_minute_per_ip=3, trusted_proxies=1)
    ctx.clock = clock = FakeClock()
    clock.moment = clock.moment.replace(second=15)  # no new minute window during the test
    address = {"X-Forwarded-For": f"198.51.100.{secrets.randbelow(250) + 1}, 203.0.113.{secrets.randbelow(250) + 1}"}
    answers = [requests.post(url + "/login/passkey/options", headers=address, timeout=10) for _ in range(2)]
    answers.append(requests.post(url + "/login/challenge", json={}, headers=address, timeout=10))
    refused = requests.post(url + "/login/passkey/options", json={}, headers=address, timeout=10)
    assert [a.status_code for a in answers] == [200, 200, 201]
    assert problem(refused)[:2] == (429, "rate_limited") and "Retry-After" in refused.headers


def test_a_password_reset_removes_every_passkey_and_says_so(server):
    # Whoever had the old password could have added a passkey: it must not outlive the reset.
    url, ctx = server
    ctx.notifier.backend = recorder = Recorder()
    client, authenticator, credential_id = passkey_user(server)
    username = client.key_file.username
    assert reset(url, f"{username}@example.com").status_code == 202
    token = re.search(r"/#reset=([A-Za-z0-9_-]{40,})", recorder.wait_for("password_reset")[0].body).group(1)
    assert confirm(url, token).status_code == 204
    told = recorder.wait_for("password_changed")[0]
    assert told.subject == "Your password was reset" and "your passkeys (1) were removed" in told.body
    assert stored_passkey_items(ctx, client.key_file.user_uuid) == []  # the count item too

    options = client.passkey_options(username=username)
    assert options["allowCredentials"] == []
    status, code, _ = login_problem(client, authenticator.get(options, credential_id=credential_id))
    assert (status, code) == (401, "invalid_credentials")
    client.login(NEW_PASSWORD)
    assert authed(client, "GET", "/account/passkeys").json()["passkeys"] == []
    add_passkey(client, authenticator, reauth={"password": NEW_PASSWORD})  # the count started again from 0


def test_a_passkey_being_added_by_a_session_that_a_reset_ends_meanwhile_is_refused(server, monkeypatch):
    # The add passed its bearer check; the reset ends every session (then sweeps the passkeys)
    # before the add's transaction commits: its check of the session refuses it.
    url, ctx = server
    client = register_device(url)
    client.login(PASSWORD)
    options = authed(client, "POST", "/account/passkeys/options", {"password": PASSWORD}).json()
    real_write_all = passkey_service.write_all

    def reset_meanwhile(dynamodb, writes):
        sessions.end_all_sessions(ctx, user_uuid=client.key_file.user_uuid, reason=RevokeReason.PASSWORD_RESET)
        return real_write_all(dynamodb, writes)

    monkeypatch.setattr(passkey_service, "write_all", reset_meanwhile)
    refused = authed(client, "POST", "/account/passkeys", {"credential": SoftAuthenticator(PUBLIC_URL).create(options)})
    assert problem(refused)[:2] == (401, "session_revoked")
    assert stored_passkey_items(ctx, client.key_file.user_uuid) == []


def stored_passkey_items(ctx, user_uuid: str) -> list[dict]:
    return ctx.dynamodb.query(TableName=ctx.tables.passkeys, KeyConditionExpression="user_uuid = :u",
                              ExpressionAttributeValues={":u": {"S": user_uuid}}, ConsistentRead=True)["Items"]
