"""The admin API (SPEC §15) over HTTP: an operator's own device-bound session with a role finds an
account without a Scan, reads its page and acts on it with a reason; each action is checked against
both roles, re-authenticated when destructive, audited (the audit stream, the account's history and
its audit trail) and told to the person by mail in their language."""
from __future__ import annotations

import json
import logging

import pytest
import requests

from accounts.models import Role
from citylogin.client.api import Client
from operators.telling import what_was_done
from tests.support.dynamo_faults import Shape
from tests.support.fixtures import problem
from tests.support.imported_accounts import IMPORTED_AT, put_imported_account
from tests.support.operators import operator, operator_behind_faults, person, same_session_at
from tests.conftest import unique_name
from tests.support.live import FakeClock, PASSWORD, add_device, on_clock, register_device, settle_background


class Recorder:
    def __init__(self) -> None:
        self.messages = []

    def send(self, message) -> None:
        self.messages.append(message)

    def to(self, email: str, event: str) -> list:
        return [m for m in self.messages if m.email == email and m.event == event]


@pytest.fixture
def server(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def email_of(client: Client) -> str:
    return f"{client.key_file.username}@example.com"


def act(op: Client, target: Client, action: str, **body):
    return op.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/{action}", json=body)


def test_only_a_session_with_a_role_is_let_in(server):
    url, ctx, _ = server
    target = person(url)
    assert problem(requests.get(url + "/admin/accounts?username=x", timeout=10))[:2] == (401, "invalid_token")
    nobody = operator(url, ctx, None)
    assert problem(nobody.request("GET", f"/admin/accounts?username={target.key_file.username}"))[:2] == \
        (403, "forbidden")
    assert problem(act(nobody, target, "lock", reason="no role"))[:2] == (403, "forbidden")
    assert target.request("GET", "/session/me").status_code == 200


def test_search_by_each_exact_key(server):
    url, ctx, _ = server
    viewer = operator(url, ctx, Role.VIEWER)
    target = person(url)
    me = target.get_json("/session/me")
    keys = {"username": target.key_file.username, "email": email_of(target).upper(),
            "user_uuid": target.key_file.user_uuid, "device_id": target.key_file.device_id,
            "session_id": me["session_id"]}
    for key, value in keys.items():
        found = viewer.request("GET", "/admin/accounts", params={key: value})
        assert found.status_code == 200, (key, found.text)
        assert [a["user_uuid"] for a in found.json()["accounts"]] == [target.key_file.user_uuid], key
        assert set(found.json()["accounts"][0]) == {"user_uuid", "username", "email", "locked", "roles", "created_at"}
    for key in keys:
        assert viewer.request("GET", "/admin/accounts", params={key: "no-such-thing"}).json() == {"accounts": []}
    assert viewer.request("GET", "/admin/accounts", params={"device_id": "#registered"}).json() == {"accounts": []}
    assert problem(viewer.request("GET", "/admin/accounts"))[:2] == (400, "invalid_field")
    two = viewer.request("GET", "/admin/accounts", params={"username": "a", "email": "b@example.com"})
    assert problem(two)[:2] == (400, "invalid_field")


def test_the_account_page_shows_every_panel_and_nothing_secret(server):
    url, ctx, _ = server
    viewer = operator(url, ctx, Role.VIEWER)
    target = person(url)
    second = add_device(ctx, target, name="Second phone")
    page = viewer.get_json(f"/admin/accounts/{target.key_file.user_uuid}")
    assert page["username"] == target.key_file.username and page["locked"] is False and page["roles"] == []
    assert {d["device_id"] for d in page["devices"]} == {target.key_file.device_id, second.key_file.device_id}
    mine = next(d for d in page["devices"] if d["device_id"] == target.key_file.device_id)
    assert mine["logged_in"] is True and mine["status"] == "active" and mine["cert_expires_at"]
    assert [s["status"] for s in page["sessions"]] == ["active"]
    assert page["passkeys"] == [] and page["limit"] is None and page["default_limit"] >= 1
    text = json.dumps(page)
    for secret in ("fingerprint", "hash", "digest", "cert_pem", "refresh"):
        assert secret not in text, secret
    assert problem(viewer.request("GET", "/admin/accounts/00000000-0000-4000-8000-000000000000"))[:2] == \
        (404, "not_found")


def test_the_account_page_says_where_an_imported_account_came_from_and_whether_its_password_is_upgraded(server):
    """SPEC §17: the source and time of the import, and whether the source's hash is still the password; null for
    an account made here."""
    url, ctx, _ = server
    viewer = operator(url, ctx, Role.VIEWER)
    name = unique_name()
    kept = put_imported_account(ctx, username=name, email=f"{name}@example.com", source="auth0")
    upgraded = put_imported_account(ctx, username=f"{name}u", email=f"{name}u@example.com",
                                    password_hash=ctx.passwords.hash(PASSWORD))
    pages = {user.user_uuid: viewer.get_json(f"/admin/accounts/{user.user_uuid}") for user in (kept, upgraded)}
    imported = {uuid: (p["imported_from"], p["imported_at"], p["password_upgraded"]) for uuid, p in pages.items()}
    assert imported == {kept.user_uuid: ("auth0", IMPORTED_AT, False),
                        upgraded.user_uuid: ("keycloak", IMPORTED_AT, True)}
    assert "$2b$" not in json.dumps(pages)
    native = viewer.get_json(f"/admin/accounts/{person(url).key_file.user_uuid}")
    assert (native["imported_from"], native["imported_at"], native["password_upgraded"]) == (None, None, None)


def test_support_locks_with_a_reason_audited_recorded_and_told(server, caplog):
    url, ctx, recorder = server
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    assert problem(act(support, target, "lock"))[:2] == (400, "reason_required")
    assert problem(act(support, target, "lock", reason="   "))[:2] == (400, "reason_required")
    assert target.request("GET", "/session/me").status_code == 200  # nothing done
    with caplog.at_level(logging.INFO, logger="citylogin.audit"):
        answer = act(support, target, "lock", reason="ticket 7: phone stolen")
    assert answer.status_code == 200, answer.text
    assert answer.json()["locked"] is True and answer.json()["sessions"][0]["revoked_reason"] == "admin"
    assert problem(target.request("GET", "/session/me"))[:2] == (403, "account_locked")
    line = next(r.audit for r in caplog.records if getattr(r, "audit", {}).get("event") == "operator_action")
    op_session = support.get_json("/session/me")["session_id"]
    assert line["action"] == "lock" and line["user_uuid"] == target.key_file.user_uuid
    assert line["operator_uuid"] == support.key_file.user_uuid and line["operator_session"] == op_session
    assert line["operator_role"] == "support" and line["reason"] == "ticket 7: phone stolen"
    for path in ("history", "audit"):
        items = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/{path}")["items"]
        row = next(i for i in items if i["result"] == "admin_action")
        assert row["action"] == "lock" and row["reason"] == "ticket 7: phone stolen"
        assert row["operator_uuid"] == support.key_file.user_uuid and row["operator_session"] == op_session
        assert not {"event_key", "expires_ttl", "user_uuid"} & set(row)  # the table's fields stay in the table
    settle_background(ctx)
    told = recorder.to(email_of(target), "operator_action")
    assert told and "locked your account" in told[-1].body
    unlocked = act(support, target, "unlock", reason="ticket 7: owner found the phone")
    assert unlocked.status_code == 200 and unlocked.json()["locked"] is False
    target.login(PASSWORD)
    assert target.request("GET", "/session/me").status_code == 200


def test_unlock_ends_a_pause_after_wrong_passwords(server):
    url, ctx, _ = server
    support = operator(url, ctx, Role.SUPPORT)
    target = register_device(url)
    for _ in range(ctx.settings.login_max_failures):
        try:
            target.login("wrong password 1")
        except Exception:  # noqa: BLE001 - 401 then 429, either refuses
            pass
    page = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}")
    assert page["password_locked_until"] is not None
    assert act(support, target, "unlock", reason="ticket 9: locked out").status_code == 200
    target.login(PASSWORD)
    assert support.get_json(f"/admin/accounts/{target.key_file.user_uuid}")["password_locked_until"] is None


def test_roles_limit_what_an_operator_may_do(server):
    url, ctx, _ = server
    viewer = operator(url, ctx, Role.VIEWER)
    support = operator(url, ctx, Role.SUPPORT)
    admin = operator(url, ctx, Role.ADMIN)
    target = person(url)
    assert problem(act(viewer, target, "revoke-sessions", reason="x"))[:2] == (403, "forbidden")
    assert problem(act(support, support, "roles", reason="lift me", role="admin", grant=True))[:2] == \
        (403, "forbidden")
    assert problem(act(support, admin, "lock", reason="above me"))[:2] == (403, "forbidden")
    assert problem(act(support, admin, "unlock", reason="above me"))[:2] == (403, "forbidden")
    assert admin.request("GET", "/session/me").status_code == 200
    granted = act(admin, target, "roles", reason="new support hire", role="support", grant=True)
    assert granted.status_code == 200 and granted.json()["roles"] == ["support"]
    assert problem(act(admin, target, "roles", reason="x", role="owner", grant=True))[:2] == (400, "invalid_field")


def test_a_role_taken_away_is_refused_on_the_next_call_on_another_process(server, make_server):
    url, ctx, _ = server
    other_url, _ = make_server()  # a second app on the same tables: another host
    admin = operator(url, ctx, Role.ADMIN)
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    assert support.request("GET", f"/admin/accounts/{target.key_file.user_uuid}").status_code == 200
    taken = same_session_at(other_url, admin)
    revoked = taken.request("POST", f"/admin/accounts/{support.key_file.user_uuid}/roles",
                            json={"reason": "left the team", "role": "support", "grant": False})
    assert revoked.status_code == 200 and revoked.json()["roles"] == []
    assert problem(support.request("GET", f"/admin/accounts/{target.key_file.user_uuid}"))[:2] == \
        (403, "forbidden")


def test_a_destructive_action_needs_a_recent_sign_in_or_the_password(make_server):
    url, ctx = make_server(admin_reauth_seconds=0)
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    assert problem(act(support, target, "revoke-sessions", reason="x"))[:2] == (401, "reauthentication_required")
    assert problem(act(support, target, "revoke-sessions", reason="x", password="wrong password 1"))[:2] == \
        (401, "invalid_credentials")
    assert target.request("GET", "/session/me").status_code == 200  # nothing done
    assert act(support, target, "limit", reason="not destructive", limit=2).status_code == 200
    done = act(support, target, "revoke-sessions", reason="ticket 3", password=PASSWORD)
    assert done.status_code == 200, done.text
    assert problem(target.request("GET", "/session/me")) == (401, "session_revoked", "admin")


def test_unbind_limit_resend_and_reset(server):
    url, ctx, recorder = server
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    device = target.key_file.device_id
    page = act(support, target, f"devices/{device}/unbind", reason="stranger's device").json()
    assert next(d for d in page["devices"] if d["device_id"] == device)["status"] == "revoked"
    assert problem(target.request("GET", "/session/me")) == (401, "session_revoked", "device_unbound")
    assert problem(act(support, target, "devices/00000000-0000-4000-8000-000000000000/unbind",
                       reason="x"))[:2] == (404, "device_not_found")
    assert act(support, target, "limit", reason="two phones", limit=2).json()["limit"] == 2
    assert act(support, target, "limit", reason="back", limit=None).json()["limit"] is None
    assert problem(act(support, target, "limit", reason="x", limit=-1))[:2] == (400, "invalid_field")
    assert act(support, target, "resend-verification", reason="lost the mail").status_code == 200
    assert act(support, target, "password-reset", reason="forgot it").status_code == 200
    settle_background(ctx)
    assert recorder.to(email_of(target), "verify_email") and recorder.to(email_of(target), "password_reset")
    actions = [i["action"] for i in support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"]]
    assert actions == ["password_reset", "resend_verification", "limit", "limit", "unbind"]


def test_no_verification_link_goes_to_an_address_the_account_does_not_hold(server):
    url, ctx, recorder = server
    support, holder = operator(url, ctx, Role.SUPPORT), person(url)
    newcomer = Client(url)
    newcomer.register(username=f"new{holder.key_file.username}", email=email_of(holder), password=PASSWORD)
    settle_background(ctx)
    before = len([m for m in recorder.messages if m.event == "verify_email"])
    assert act(support, newcomer, "resend-verification", reason="says the mail never came").status_code == 200
    assert act(support, holder, "resend-verification", reason="lost the mail").status_code == 200
    settle_background(ctx)
    sent = [m for m in recorder.messages if m.event == "verify_email"][before:]
    assert [(m.user_uuid, m.email) for m in sent] == [(holder.key_file.user_uuid, email_of(holder))]


def test_pages_and_tampered_cursors(server):
    url, ctx, _ = server
    viewer = operator(url, ctx, Role.VIEWER)
    target = person(url)
    for _ in range(3):
        target.login(PASSWORD)
    settle_background(ctx)
    first = viewer.get_json(f"/admin/accounts/{target.key_file.user_uuid}/history?limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = viewer.get_json(f"/admin/accounts/{target.key_file.user_uuid}/history?limit=2&cursor={first['next_cursor']}")
    assert rest["items"] and rest["items"][0]["at"] <= first["items"][-1]["at"]
    for cursor in ("not-base64-json", "eyJrIjogMX0", "A" * 2000):
        answer = viewer.request("GET", f"/admin/accounts/{target.key_file.user_uuid}/audit?cursor={cursor}")
        assert problem(answer)[:2] == (400, "invalid_field"), cursor


def test_the_person_is_told_in_their_language_and_sees_the_action_in_their_history(server):
    url, ctx, recorder = server
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    assert target.request("PATCH", "/account", json={"locale": "ja"}).status_code == 200
    assert act(support, target, "limit", reason="二台目のため", limit=2).status_code == 200
    settle_background(ctx)
    told = recorder.to(email_of(target), "operator_action")[-1]
    assert "オペレーター" in told.subject and "同時にサインインできる端末の数" in told.body
    assert "二台目" not in told.body  # the reason is the operators' note, not the person's mail
    mine = target.get_json("/session/history")["items"]
    row = next(i for i in mine if i["result"] == "admin_action")
    assert row["action"] == "limit" and "reason" not in row and "operator_uuid" not in row


def test_the_persons_mail_of_a_new_device_limit_says_the_limit(server):
    """Issue 83: a number, no limit for 0, or back to the service's default and what that is now; in English and
    in Japanese."""
    url, ctx, recorder = server
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    default = ctx.settings.max_concurrent_devices
    for limit, said in ((1, "may be signed in at once to 1."), (0, "let any number of your devices be signed in at "
                        "once: no limit."), (None, f"back to the service's default, now {default}.")):
        assert act(support, target, "limit", reason="ticket 9", limit=limit).status_code == 200
        settle_background(ctx)
        assert said in recorder.to(email_of(target), "operator_action")[-1].body, limit
    assert target.request("PATCH", "/account", json={"locale": "ja"}).status_code == 200
    for limit, said in ((3, "端末の数を 3 台にしました。"), (0, "上限をなくしました。"),
                        (None, f"既定値（現在 {default} 台）に戻しました。")):
        assert act(support, target, "limit", reason="ticket 9", limit=limit).status_code == 200
        settle_background(ctx)
        assert said in recorder.to(email_of(target), "operator_action")[-1].body, limit


@pytest.mark.parametrize("language, said", [("en", "back to the service's default, now no limit"),
                                            ("ja", "既定値（現在は上限なし）に戻しました")])
def test_back_to_a_default_of_no_limit_says_so(language, said):
    assert said in what_was_done("limit", done={"limit": "default"}, default_limit=0, language=language)


def test_ended_sessions_and_forms_without_a_token_are_refused(server):
    url, ctx, _ = server
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    laptop = add_device(ctx, support, name="Operator laptop")
    laptop.login(PASSWORD, force=True)  # the operator's login on another device displaces the first session
    assert problem(support.request("GET", f"/admin/accounts/{target.key_file.user_uuid}")) == \
        (401, "session_revoked", "displaced")
    # a form another site could make a browser post: no Authorization, so nothing to ride on
    forged = requests.post(f"{url}/admin/accounts/{target.key_file.user_uuid}/lock", data={"reason": "x"},
                           headers={"Cookie": "session=anything"}, timeout=10)
    assert problem(forged)[:2] == (401, "invalid_token")
    assert target.request("GET", "/session/me").status_code == 200


def test_searches_are_limited_per_operator_on_every_process(make_server):
    url, ctx = make_server(admin_search_limit=3)
    other_url, other_ctx = make_server(admin_search_limit=3)  # a second app on the same tables: another host
    viewer, colleague = operator(url, ctx, Role.VIEWER), operator(url, ctx, Role.VIEWER)
    target = person(url)
    elsewhere = same_session_at(other_url, viewer)
    ctx.clock = other_ctx.clock = clock = FakeClock()  # one minute's window for every search below
    on_clock(clock, viewer, colleague, elsewhere)
    search = {"username": target.key_file.username}
    for _ in range(2):
        assert viewer.request("GET", "/admin/accounts", params=search).status_code == 200
    assert elsewhere.request("GET", "/admin/accounts", params=search).status_code == 200
    for client in (viewer, elsewhere):
        refused = client.request("GET", "/admin/accounts", params={"email": email_of(target)})
        assert problem(refused)[:2] == (429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    found = colleague.request("GET", "/admin/accounts", params=search)  # each operator has their own
    assert found.status_code == 200 and found.json()["accounts"][0]["user_uuid"] == target.key_file.user_uuid
    assert viewer.request("GET", f"/admin/accounts/{target.key_file.user_uuid}").status_code == 200  # not a search


def test_a_reauthentication_renews_the_window_on_every_process_and_a_wrong_password_says_so(make_server):
    url, ctx = make_server(admin_reauth_seconds=300)
    other_url, other_ctx = make_server(admin_reauth_seconds=300)  # a second app on the same tables: another host
    support = operator(url, ctx, Role.SUPPORT)
    target = person(url)
    elsewhere = same_session_at(other_url, support)
    ctx.clock = other_ctx.clock = clock = FakeClock()
    on_clock(clock, support, target, elsewhere)
    window = support.get_json("/admin/me")
    assert window["username"] == support.key_file.username and window["role"] == "support"
    assert window["reauth_seconds"] == 300 and 290 <= window["reauth_seconds_left"] <= 300

    clock.advance(301)                                  # the sign-in is too old now
    assert support.get_json("/admin/me")["reauth_seconds_left"] == 0
    assert problem(act(support, target, "revoke-sessions", reason="x"))[:2] == (401, "reauthentication_required")
    wrong = act(support, target, "revoke-sessions", reason="x", password="wrong password 1")
    assert problem(wrong)[:2] == (401, "invalid_credentials")
    assert wrong.json()["detail"] == "The password is incorrect."            # no username was typed
    wrong_ja = support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/lock",
                               json={"reason": "x", "password": "wrong password 2"}, headers={"Accept-Language": "ja"})
    assert problem(wrong_ja)[:2] == (401, "invalid_credentials")
    assert wrong_ja.json()["detail"] == "パスワードが正しくありません。"
    assert target.request("GET", "/session/me").status_code == 200      # nothing done
    assert support.get_json("/admin/me")["reauth_seconds_left"] == 0  # a wrong password renews nothing

    assert act(support, target, "limit", reason="ticket 4: renews nothing", limit=2).status_code == 200
    done = act(support, target, "password-reset", reason="ticket 4", password=PASSWORD)
    assert done.status_code == 200, done.text
    clock.advance(200)
    renewed = elsewhere.get_json("/admin/me")           # the other process reads it from the session record
    assert 90 <= renewed["reauth_seconds_left"] <= 100
    done = elsewhere.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/revoke-sessions",
                             json={"reason": "ticket 5: no password within the renewed window"})
    assert done.status_code == 200, done.text
    clock.advance(101)
    assert elsewhere.get_json("/admin/me")["reauth_seconds_left"] == 0
    assert problem(act(support, target, "lock", reason="x"))[:2] == (401, "reauthentication_required")


def test_with_dynamodb_failing_an_action_answers_503_in_the_callers_language_and_a_retry_completes_it(
        make_server, dynamodb_endpoint):
    with operator_behind_faults(make_server, dynamodb_endpoint, Role.SUPPORT) as (faults, support, target, there):
        lock = f"/admin/accounts/{target.key_file.user_uuid}/lock"
        body = {"reason": "ticket 6: phone stolen"}

        faults.fail(Shape.INTERNAL_SERVER_ERROR, operations={"UpdateItem", "PutItem", "TransactWriteItems"})
        refused = there.request("POST", lock, json=body, headers={"Accept-Language": "ja"})
        assert problem(refused)[:2] == (503, "service_unavailable")
        assert refused.json()["detail"] == "データベースが応答しません。少し待ってからもう一度お試しください。"
        assert int(refused.headers["Retry-After"]) > 0
        page = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}")
        assert not page["locked"] and target.request("GET", "/session/me").status_code == 200  # nothing done
        assert support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"] == []

        # Only the transactions fail: the flag is set, the sessions and the audit rows are not yet
        # written. The same request again (the console keeps its dialog open for it) finishes the action.
        faults.clear()
        faults.fail(Shape.INTERNAL_SERVER_ERROR, operations={"TransactWriteItems"})
        assert problem(there.request("POST", lock, json=body))[:2] == (503, "service_unavailable")
        faults.clear()
        done = there.request("POST", lock, json=body)
        assert done.status_code == 200 and done.json()["locked"], done.text
        assert problem(target.request("GET", "/session/me"))[:2] == (403, "account_locked")
        trail = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"]
        assert [(row["action"], row["reason"], row["operator_username"]) for row in trail] == \
            [("lock", "ticket 6: phone stolen", support.key_file.username)]
