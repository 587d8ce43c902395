"""The audit stream (issue 9, operability): a JSON line per security event with the ids, the
client IP and the request id, from the service functions, never a secret."""
from __future__ import annotations

import contextvars
import json
import logging
import re
import time

import pytest

from citylogin.client.api import CityloginError, Client
from tests.conftest import unique_name
from tests.support.live import PASSWORD, add_device, register_device
from common.web.audit import AuditEvent, audit
from common.web.log_setup import AUDIT_LOGGER, JsonFormatter

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def audit_lines(caplog):
    """audit_lines() -> the audit entries logged so far, each as its JSON line parsed."""
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)

    def lines() -> list[dict]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    return lines


@pytest.fixture
def no_audit_file():
    """Take the audit file handler a test added off the process-wide logger again."""
    yield
    audit_logger = logging.getLogger(AUDIT_LOGGER)
    for handler in list(audit_logger.handlers):
        audit_logger.removeHandler(handler)
        handler.close()


def events(lines: list[dict]) -> list[str]:
    return [line["event"] for line in lines]


def one(lines: list[dict], event: str, **fields) -> dict:
    found = [line for line in lines if line["event"] == event and all(line.get(k) == v for k, v in fields.items())]
    assert len(found) == 1, (event, fields, lines)
    return found[0]


def test_login_refresh_pairing_and_unbind_are_audited(make_server, audit_lines):
    url, ctx = make_server(concurrency_policy="force")
    first = register_device(url)
    user_uuid, first_device = first.key_file.user_uuid, first.key_file.device_id
    with pytest.raises(CityloginError):
        first.login("not the password")
    first.login(PASSWORD)
    first.refresh()
    pairing = first.request_pairing()
    second = Client(url)
    second.pair(pairing["qr_code"], username=first.key_file.username, password=PASSWORD, device_name=unique_name())
    second_device = second.key_file.device_id
    second.login(PASSWORD)  # force: displaces the first device
    first.login(PASSWORD)   # and back
    assert first.request("POST", "/device/unbind", json={"device_id": second_device}).status_code == 200

    lines = audit_lines()
    assert one(lines, "login_failure", user_uuid=user_uuid)["reason"] == "invalid_credentials"
    success = [x for x in lines if x["event"] == "login_success"]
    assert [(x["user_uuid"], x["device_id"]) for x in success] == [
        (user_uuid, first_device), (user_uuid, second_device), (user_uuid, first_device)]
    assert all(x["session_id"] and x["ip"] == "127.0.0.1" and len(x["request_id"]) == 32 for x in success)
    assert one(lines, "pairing_token_created", user_uuid=user_uuid)["device_id"] == first_device
    assert one(lines, "pairing_token_redeemed", user_uuid=user_uuid, device_id=second_device)[
        "created_by_device"] == first_device
    evicted = [x for x in lines if x["event"] == "session_evicted"]
    assert [(x["device_id"], x["by_device"], x["reason"]) for x in evicted] == [
        (first_device, second_device, "displaced"), (second_device, first_device, "displaced")]
    assert evicted[0]["session_id"] == success[0]["session_id"]
    assert one(lines, "device_unbound", device_id=second_device)["by_device"] == first_device
    for line in lines:
        assert ISO_UTC.match(line["at"]), line
        assert not {"password", "token", "refresh_token", "access_token", "digest"} & set(line)


def test_refresh_token_reuse_and_logout_are_audited(make_server, audit_lines):
    url, _ = make_server(refresh_reuse_grace=0)
    device = register_device(url)
    device.login(PASSWORD)
    stolen = device.refresh_token
    device.refresh()
    time.sleep(1.1)  # past the grace window
    device.refresh_token = stolen
    with pytest.raises(CityloginError) as reused:
        device.refresh()
    assert reused.value.code == "refresh_token_reused"

    lines = audit_lines()
    session_id = one(lines, "login_success")["session_id"]
    reuse = one(lines, "refresh_token_reused", session_id=session_id)
    assert reuse["device_id"] == device.key_file.device_id and reuse["ip"] == "127.0.0.1"
    assert one(lines, "session_revoked", session_id=session_id)["reason"] == "refresh_reuse"
    assert events(lines).index("refresh_token_reused") < events(lines).index("session_revoked")


def test_lockout_is_audited(make_server, audit_lines):
    url, _ = make_server(login_max_failures=2)
    device = register_device(url)
    for _ in range(3):
        with pytest.raises(CityloginError):
            device.login("wrong")
    lines = audit_lines()
    assert [x.get("reason") for x in lines if x["event"] == "login_failure"] == [
        "invalid_credentials", "invalid_credentials", "locked_out"]
    lockout = one(lines, "lockout")
    assert lockout["scope"] == "username" and lockout["user_uuid"] == device.key_file.user_uuid
    assert lockout["locked_seconds"] > 0


def test_the_audit_file_holds_json_lines(make_server, tmp_path, no_audit_file):
    path = tmp_path / "audit.log"
    url, _ = make_server(audit_log=str(path), log_format="json")
    device = register_device(url)
    device.login(PASSWORD)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert events(lines) == ["login_success"]
    assert lines[0]["user_uuid"] == device.key_file.user_uuid


def test_json_log_lines_carry_the_audit_fields_at_the_top(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    # In a context no request ran in: a Flask test client's response that an earlier test in this
    # process left unclosed keeps its request current in this thread.
    contextvars.Context().run(audit, AuditEvent.DEVICE_UNBOUND, user_uuid="u-1", device_id="d-1", by_device="d-2")
    line = json.loads(JsonFormatter().format([r for r in caplog.records if r.name == AUDIT_LOGGER][-1]))
    assert line["logger"] == AUDIT_LOGGER and line["event"] == "device_unbound"
    assert (line["user_uuid"], line["device_id"], line["by_device"]) == ("u-1", "d-1", "d-2")
    assert "message" not in line and "request_id" not in line  # no request here


@pytest.mark.parametrize("field", ["password", "refresh_token", "token_digest", "password_hash", "private_key",
                                   "api_key", "passkey_private_key", "passkey_signature"])
def test_a_field_named_like_a_secret_is_refused(field):
    with pytest.raises(ValueError):
        audit(AuditEvent.LOGIN_SUCCESS, **{field: "x"})


def test_a_count_of_passkeys_is_no_secret():
    audit(AuditEvent.PASSWORD_RESET, user_uuid="u-1", passkeys_removed=2)


def test_an_added_device_logs_in_with_its_own_ids(make_server, audit_lines):
    url, ctx = make_server(max_concurrent_devices=2)
    first = register_device(url)
    second = add_device(ctx, first)
    second.login(PASSWORD)
    line = one(audit_lines(), "login_success")
    assert (line["user_uuid"], line["device_id"]) == (first.key_file.user_uuid, second.key_file.device_id)
    assert "session_evicted" not in events(audit_lines())


def test_an_event_outside_the_enum_is_refused():
    with pytest.raises(TypeError):
        audit("made_up_event", user_uuid="u-1")


def test_the_docs_list_every_audit_event():
    """The event table of docs/reference/metrics.md ("The audit stream") has a row for every AuditEvent
    and for nothing else; a new event without its row there fails here."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "metrics.md").read_text()
    section = page.split("## The audit stream\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\|\s*`([a-z_]+)`\s*\|", section, re.MULTILINE))
    assert listed == {event.value for event in AuditEvent}, sorted(listed ^ {e.value for e in AuditEvent})


def test_every_audit_call_names_an_enum_member():
    """No product module passes anything but an AuditEvent member as the event, to audit() or to
    the CLI's _audit(settings, event) (a loose string would be refused only when it runs)."""
    import ast

    from tests.test_package_layout import ROOT, product_packages

    def event_argument(call: ast.Call) -> ast.expr | None:
        name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
        position = {"audit": 0, "_audit": 1}.get(name)
        return call.args[position] if position is not None and len(call.args) > position else None

    def names_a_member(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "AuditEvent"

    calls = {}
    for package in product_packages(ROOT):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and (event := event_argument(node)) is not None:
                    calls[f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"] = event
    # A helper's own `event: AuditEvent` parameter handed on (the CLI's _audit) is typed already.
    loose = [call for call, event in calls.items()
             if not (names_a_member(event) or (isinstance(event, ast.Name) and event.id == "event"))]
    assert len(calls) > 10 and not loose, loose
