"""A person's data export (GET /account/export, POST /admin/accounts/<user_uuid>/export), held to
docs/security/storage.md: the page's tables are the database's, its export table names a section for
each table about a person, and an account used every way that stores something is exported whole.
Every item Scans of every table find about the person is in the document, as stored but for the
attributes the page says are withheld, and none of the account's tokens, digests or hashes is in it."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from boto3.dynamodb.types import Binary

from accounts.credential_service import username_subject
from accounts.models import Role
from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import CityloginError
from common.database import dynamo
from accounts.models import DataExport
from tests.flows.test_deletion_personal_data import NO_IP_LIMITS, PUBLIC_URL, REDIRECT, scan, used_every_way
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, add_device, on_clock, settle_background
from tests.support.operators import operator, person

ROOT = Path(__file__).resolve().parents[2]
STORAGE_PAGE = ROOT / "docs" / "security" / "storage.md"
DOCUMENT_FIELDS = {"format", "exported_at", "user_uuid", "app_names"}  # the document's own, beside the sections
SECRET_NAME = re.compile(r"digest|hash|secret|password", re.IGNORECASE)


# --- the storage page, parsed -------------------------------------------------------------------

def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    following = text.find("\n## ", start + 1)
    return text[start:following if following > 0 else None]


def page_tables() -> list[str]:
    """The tables the page describes: its `### \\`name\\`` headings under "The tables"."""
    return re.findall(r"^### `([a-z_]+)`$", _section(STORAGE_PAGE.read_text(), "The tables"), re.MULTILINE)


def export_rows() -> dict[str, tuple[str | None, set[str]]]:
    """The page's export table: table -> (its section, None if it says "not in it"; the names withheld)."""
    rows = {}
    for line in _section(STORAGE_PAGE.read_text(), "A person's data export").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`[a-z_]+`", cells[0]):
            continue
        table, shown, withheld = cells[0].strip("`"), cells[1], cells[2]
        section = None if shown.startswith("not in it") else re.match(r"`([a-z_]+)`", shown).group(1)
        rows[table] = (section, set(re.findall(r"`([a-z_]+)`", withheld)))
    return rows


def test_the_storage_page_lists_every_table_and_the_export_a_section_for_each_table_about_a_person():
    tables = page_tables()
    assert sorted(tables) == sorted(dynamo.TableNames.__dataclass_fields__)
    rows = export_rows()
    assert sorted(rows) == sorted(tables)
    sections = {section for section, _ in rows.values() if section}
    assert {table for table, (section, _) in rows.items() if section} == sections  # each named as its table
    assert sections | DOCUMENT_FIELDS == set(DataExport.model_fields)
    assert {table for table, (section, _) in rows.items() if not section} == {
        "key_ring", "apps", "security_events", "app_streams"}


# --- an account used every way, exported ------------------------------------------------------------

@pytest.fixture
def provider(make_server):
    url, ctx = make_server(public_url=PUBLIC_URL, **NO_IP_LIMITS)
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    return url, ctx, diary


def stored_about(ctx, alice, lockout_keys: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Scans of every table: the items that name the account (its user_uuid, a device id, a certificate
    serial), and its username's lockout items, by table (without the prefix)."""
    ids, found = alice.ids(), {}
    for table in ctx.tables.all():
        items = [item for item in scan(ctx, table)
                 if any(i in repr(item) for i in ids) or item.get("limit_key") in lockout_keys]
        if items:
            found[table.removeprefix(ctx.settings.table_prefix)] = items
    return found


def as_exported(value: Any) -> Any:
    """A stored value in JSON's terms, as the page says the export gives it (binary as base64url)."""
    if isinstance(value, (bytes, Binary)):
        return base64.urlsafe_b64encode(bytes(value)).decode().rstrip("=")
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, list):
        return [as_exported(v) for v in value]
    if isinstance(value, dict):
        return {k: as_exported(v) for k, v in value.items() if not SECRET_NAME.search(k)}
    return value


def expected_item(table: str, item: dict[str, Any], withheld: set[str]) -> dict[str, Any]:
    shown = {k: as_exported(v) for k, v in item.items() if k not in withheld and not SECRET_NAME.search(k)}
    if table == "rate_limits" and shown["limit_key"].startswith(("fail#user:", "lock#user:")):
        shown["limit_key"] = shown["limit_key"].split(":")[0]  # the page: the username's digest is withheld
    if table == "users":
        shown["recovery_codes_left"] = len(item["recovery_code_digests"])  # the page: in place of the codes
    return shown


def secrets_of(stored: dict[str, list[dict[str, Any]]]) -> set[str]:
    """Every stored value the page withholds as a secret's digest or hash (at least 16 characters)."""
    rows = export_rows()
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 16:
            found.add(value)
        elif isinstance(value, (list, set)):
            for v in value:
                collect(v)
    for table, items in stored.items():
        _, withheld = rows[table]
        for item in items:
            for name, value in item.items():
                if (name in withheld or SECRET_NAME.search(name)) and not name.startswith("operator") \
                        and name != "reason":
                    collect(value)
            if table == "rate_limits" and item["limit_key"].startswith(("fail#user:", "lock#user:")):
                collect(item["limit_key"].split(":", 1)[1])
    return found


def names_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {n for v in value.values() for n in names_in(v)}
    if isinstance(value, list):
        return {n for v in value for n in names_in(v)}
    return set()


def test_the_export_holds_every_item_stored_about_the_person_and_no_secret(provider):
    url, ctx, diary = provider
    alice = used_every_way(url, ctx, diary)
    lost = add_device(ctx, alice.first, name="Alice's lost phone")
    alice.paired.unbind_device(lost.require_key_file().device_id)  # its certificate in the CRL
    with pytest.raises(CityloginError):
        alice.first.login("not the password")  # a failed-login counter of the username, kept
    settle_background(ctx)
    ctx.clock = clock = FakeClock()  # the export's own request changes no time stored (its session's last use)
    on_clock(clock, alice.paired)
    subject = username_subject(alice.username)
    stored = stored_about(ctx, alice, {f"fail#{subject}", f"lock#{subject}"})
    assert {"users", "claims", "devices", "sessions", "presence", "login_history", "one_time_tokens",
            "pairing_tokens", "rate_limits", "passkeys", "oidc_grants", "oidc_consents",
            "security_events"} <= set(stored), sorted(stored)

    answer = alice.paired.request("GET", "/account/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r'attachment; filename="citylogin-data-\d{4}-\d{2}-\d{2}\.json"',
                        answer.headers["Content-Disposition"])
    exported = answer.json()
    DataExport.model_validate(exported)
    assert exported["format"] == "citylogin-export/1" and exported["user_uuid"] == alice.user_uuid

    rows = export_rows()
    for table, items in stored.items():
        section, withheld = rows[table]
        if section is None:
            continue  # the page says why it is not in the export (security_events)
        for item in items:
            assert expected_item(table, item, withheld) in exported[section], (table, item, exported[section])
    for section, _ in rows.values():
        if section:
            assert exported[section], f"{section}: the account used every way left nothing in it"
    assert exported["users"][0]["recovery_codes_left"] == 10
    [crl_entry] = [item for item in exported["devices"] if item["user_uuid"] == "#crl"]
    assert crl_entry["revoked_device_id"] == lost.require_key_file().device_id
    assert exported["app_names"] == [{"client_id": diary.app.client_id, "name": "Diary"}]

    text = answer.text
    hidden = secrets_of(stored) | {alice.paired.refresh_token or "", alice.paired.access_token or "",
                                   PASSWORD}
    assert len(hidden) > 8  # refresh digests, link and code digests, the password hash, the lockout's digest...
    assert [secret for secret in hidden if secret in text] == []
    assert [name for name in names_in(exported) if SECRET_NAME.search(name)] == []
    # The alice's own export names what an operator did, not who or why (their History does the same)
    [action] = [row for row in exported["login_history"] if row.get("action") == "lock"
                and not row["user_uuid"].startswith("audit#")]
    assert "reason" not in action and "operator" not in action
    assert alice.username + " asked by phone" not in text


# --- the person's route ---------------------------------------------------------------------------

def test_the_route_asks_for_the_persons_own_session(make_server):
    url, ctx = make_server()
    someone = person(url)
    assert problem(requests.get(url + "/account/export", timeout=10))[:2] == (401, "invalid_token")
    mine = someone.request("GET", "/account/export").json()
    assert mine["user_uuid"] == someone.key_file.user_uuid
    assert [d["device_id"] for d in mine["devices"] if d["device_id"] != "#registered"] == [
        someone.key_file.device_id]


# --- the operator's route -------------------------------------------------------------------------

def export_for(op, target, **body):
    return op.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/export", json=body)


def test_an_operator_exports_a_persons_data_with_a_reason_and_an_audit_row(make_server):
    url, ctx = make_server()
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    assert problem(export_for(support, target))[:2] == (400, "reason_required")
    assert problem(export_for(support, target, reason="  "))[:2] == (400, "reason_required")

    answer = export_for(support, target, reason="ticket 7: access request")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="citylogin-data-')
    assert answer.headers["Cache-Control"] == "no-store"
    document = answer.json()
    assert document["user_uuid"] == target.key_file.user_uuid and document["users"][0]["username"] == \
        target.key_file.username
    settle_background(ctx)

    trail = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"]
    [row] = [r for r in trail if r["action"] == "export"]
    assert row["reason"] == "ticket 7: access request" and row["operator_role"] == "support"
    assert row["operator_uuid"] == support.key_file.user_uuid and row["items"] > 0
    # The person's History names the action, without who or why
    [seen] = [r for r in target.history()["items"] if r.get("action") == "export"]
    assert seen["result"] == "admin_action" and "reason" not in seen and "operator" not in seen

    # The next export (by the operator) holds that row with who and why; the person's own, without
    again = export_for(support, target, reason="ticket 7: the file again").json()
    assert any(r.get("action") == "export" and r.get("reason") == "ticket 7: access request"
               for r in again["login_history"])
    own = target.request("GET", "/account/export").json()
    exports = [r for r in own["login_history"] if r.get("action") == "export"]
    assert len(exports) == 4 and all(set(r).isdisjoint({"reason", "operator", "operator_uuid"}) for r in exports)
    assert "ticket 7" not in json.dumps(own)


def test_only_a_support_operator_exports_and_only_an_account_of_a_lower_role(make_server):
    url, ctx = make_server()
    viewer, support, target = operator(url, ctx, Role.VIEWER), operator(url, ctx, Role.SUPPORT), person(url)
    assert problem(export_for(viewer, target, reason="curious"))[:2] == (403, "forbidden")
    peer = operator(url, ctx, Role.SUPPORT)
    assert problem(export_for(support, peer, reason="a peer"))[:2] == (403, "forbidden")
    nobody = operator(url, ctx, None)
    assert problem(export_for(nobody, target, reason="no role"))[:2] == (403, "forbidden")
    assert problem(support.request("POST", "/admin/accounts/no-such-account/export", json={"reason": "x"}))[:2] == \
        (404, "not_found")
    settle_background(ctx)
    assert [r for r in target.history()["items"] if r.get("action") == "export"] == []
