"""The person's own History (SPEC §4 GET /session/history, §15): every operator action named by its
`action` and nothing of who acted or why; a login refused while the account is locked, by an operator
or by wrong passwords, is a `locked_out` row; and every value the server can write there has words in
both languages."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from accounts.models import Role
from citylogin.client.api import Client
from citylogin.client.errors import CityloginError
from devices import service as devices
from operators import export as operator_export
from operators import mail as operator_mail
from operators import service as operators
from sessions.models import HistoryItem, HistoryResult
from tests.support.live import PASSWORD, settle_background
from tests.support.operators import operator, operator_behind_faults, person

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = {tag: json.loads((ROOT / "common" / "locales" / f"{tag}.json").read_text()) for tag in ("en", "ja")}
# What the History panel and the console show for a result and an operator action (citylogin/webui/static/activity.js)
RESULT_LABEL, ACTION_LABEL = "web.history.result_{}", "web.history.action_{}"
# Who acted and why are the operators' (the admin API's history and audit trail), never the person's
OPERATORS_ONLY = {"operator", "operator_uuid", "operator_session", "operator_client", "operator_role", "reason"}


def operator_actions() -> set[str]:
    """Every action an operator's row may name: the account's, the export, and an undelivered mail's."""
    return ({value.name for value in vars(operators).values() if isinstance(value, operators.Action)}
            | {operator_export.EXPORT.name, operator_mail.RESEND, operator_mail.DROP})


def test_every_result_and_operator_action_has_words_in_both_languages():
    keys = ({RESULT_LABEL.format(result.value) for result in HistoryResult}
            | {ACTION_LABEL.format(action) for action in operator_actions()} | {"web.history.result_other"})
    for tag, catalogue in CATALOGUES.items():
        assert keys - set(catalogue) == set(), tag
        assert all(catalogue[key].strip() for key in keys), tag
    script = (ROOT / "citylogin" / "webui" / "static" / "activity.js").read_text()
    assert "`web.history.result_${item.result}`" in script and "`web.history.action_${item.action}`" in script


def test_the_refusals_a_login_counts_are_history_results():
    """A wrong certificate or proof after the right password is written as its error code (flows.login)."""
    for refusal in (devices.CertificateMismatch, devices.InvalidProof, devices.DeviceRevoked,
                    devices.CertificateExpired):
        assert HistoryResult(refusal.code.value)


def act(op: Client, target: Client, action: str, **body):
    answer = op.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/{action}", json=body)
    assert answer.status_code == 200, answer.text
    return answer


def refused_login(client: Client) -> tuple[int, str]:
    with pytest.raises(CityloginError) as raised:
        client.login(PASSWORD)
    return raised.value.status, raised.value.code


def test_operator_actions_are_named_and_locked_logins_recorded(make_server):
    url, ctx = make_server()
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    act(support, target, "limit", reason="two phones", limit=2)
    act(support, target, "password-reset", reason="forgot it")
    act(support, target, "lock", reason="ticket 7: phone stolen")
    assert refused_login(target) == (403, "account_locked")
    act(support, target, "unlock", reason="ticket 7: found it")
    target.login(PASSWORD)
    settle_background(ctx)
    items = target.get_json("/session/history")["items"]
    assert [(i["result"], i.get("action")) for i in items] == [
        ("success", None), ("admin_action", "unlock"), ("locked_out", None), ("admin_action", "lock"),
        ("admin_action", "password_reset"), ("admin_action", "limit"), ("success", None)]
    refused = items[2]
    assert refused["device_id"] == target.key_file.device_id and refused["ip"] == "127.0.0.1"
    for item in items:
        assert set(item) <= set(HistoryItem.model_fields) and not OPERATORS_ONLY & set(item), item
        assert "ticket 7" not in json.dumps(item) and support.key_file.user_uuid not in json.dumps(item)


def test_a_login_while_wrong_passwords_lock_the_account_is_recorded(make_server):
    url, ctx = make_server()
    target = person(url)
    for _ in range(ctx.settings.login_max_failures):
        with pytest.raises(CityloginError):
            target.login("not the password 1")
    assert refused_login(target) == (429, "too_many_attempts")  # the right password, while locked
    settle_background(ctx)
    results = [i["result"] for i in target.get_json("/session/history")["items"]]
    assert results[0] == "locked_out" and results.count("invalid_credentials") == ctx.settings.login_max_failures


def test_the_history_and_the_audit_trail_are_read_consistently(make_server, dynamodb_endpoint):
    """A list reread right after an action holds that action's row: on DynamoDB an eventually consistent
    query may answer without it (DynamoDB Local never does, so the request itself is checked)."""
    with operator_behind_faults(make_server, dynamodb_endpoint, Role.SUPPORT) as setting:
        act(setting.operator, setting.target, "limit", reason="two phones", limit=2)
        setting.faults.exchanges.clear()
        user_uuid = setting.target.key_file.user_uuid
        for listing in ("history", "audit"):
            answer = setting.there.request("GET", f"/admin/accounts/{user_uuid}/{listing}")
            assert answer.status_code == 200 and answer.json()["items"], answer.text
        queries = [json.loads(e.body) for e in setting.faults.exchanges if e.operation == "Query"]
        partitions = {q["ExpressionAttributeValues"][":u"]["S"] for q in queries if q["TableName"].endswith("history")}
        assert partitions == {user_uuid, "audit#" + user_uuid}
        assert all(q.get("ConsistentRead") is True for q in queries if q["TableName"].endswith("history"))
