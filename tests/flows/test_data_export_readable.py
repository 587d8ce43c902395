"""The readable copy of a person's data export (GET /account/export?format=readable|html, the operator's
POST /admin/accounts/<user_uuid>/export?format=html), held to docs/security/storage.md ("The readable
copy"): an account used every way that stores something is exported, and every item of its JSON document
is found in the readable copy by its readable value (a field the copy has no words for fails here), in
HTML as in JSON; no internal key, digest or epoch number shows; times are dates in the zone asked for;
a deleting or deleted account answers 409 or 404 for every format, and a bad zone 400 before anything
is read or audited."""
from __future__ import annotations

import calendar
import re
from datetime import datetime
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape

from accounts import user_service as users
from accounts.credential_service import username_subject
from accounts.models import Role
from citylogin.client.api import CityloginError
from flows import data_export, deletion, readable_html
from flows.models import ReadableExport
from flows.readable_catalogue import FIELDS, Kind
from flows.readable_values import Names, Reader
from tests.flows.test_data_export import provider  # noqa: F401 (a fixture)
from tests.flows.test_data_export import stored_about
from tests.flows.test_deletion_personal_data import used_every_way
from tests.support.fixtures import problem
from tests.support.live import add_device, settle_background
from tests.support.operators import operator, person

ZONE = "Asia/Tokyo"
# How an item is stored, never how it reads: the keys' parts and markers, the audit trail's partition
INTERNAL = re.compile(r"live#|audit#|#registered|#crl|#count|username#|email#|fail#|lock#|pairing#|verify_resend#")
# epoch seconds (or milliseconds) of these years; not a digit run inside an id (a UUID's "-1184030446b4")
EPOCH = re.compile(r"(?<![0-9A-Za-z_.-])1\d{9}(?:\d{3})?(?![0-9A-Za-z_.])")


def pairs(reader: Reader, section: str, item: dict[str, Any]) -> set[tuple[str, str]]:
    """What the copy must show of `item`: (label, value as it reads) for each field, ("also", label) for each
    technical one, and its parts' the same way. Every attribute must have words in the catalogue."""
    expected: set[tuple[str, str]] = set()
    for name, raw in item.items():
        spec = FIELDS[section].get(name)
        assert spec is not None, f"{section}.{name}: the readable copy has no words for it"
        key = f"export.field.{section}.{name}" if spec.own_label else f"export.field.{name}"
        if spec.kind is Kind.TECHNICAL:
            expected.add(("also", reader.text(key)))
        elif spec.kind is Kind.ENTRIES:
            for part in raw.values():
                expected |= pairs(reader, f"{section}_devices", part)
        elif spec.kind is not Kind.INTERNAL:
            expected.add((reader.text(key), reader.value(spec, raw)))
    return expected


def shown(entry: dict[str, Any]) -> set[tuple[str, str]]:
    found = {(field["label"], field["value"]) for field in entry["fields"]}
    found |= {("also", label) for label in entry["also_stored"]}
    for part in entry["parts"]:
        found |= shown(part)
    return found


def values_of(copy: dict[str, Any]) -> list[str]:
    texts = [copy["title"], copy["intro"], copy["exported_at"], copy["time_zone_note"]]

    def walk(entry):
        texts.append(entry["heading"])
        texts.extend(t for field in entry["fields"] for t in (field["label"], field["value"], field["about"]))
        texts.extend(entry["also_stored"])
        for part in entry["parts"]:
            walk(part)
    for section in copy["sections"]:
        texts.extend(section[k] for k in ("title", "about", "why", "kept"))
        for entry in section["entries"]:
            walk(entry)
    return [t for t in texts if t]


def tokyo(epoch: int) -> str:
    """An epoch time as the English copy writes it in Tokyo, worked out here without the copy's code."""
    moment = datetime.fromtimestamp(epoch, ZoneInfo(ZONE))
    return f"{moment.day} {calendar.month_name[moment.month]} {moment.year}, {moment:%H:%M}"


def test_every_item_of_the_document_is_in_the_readable_copy_and_no_internal_key(provider):  # noqa: F811
    url, ctx, diary = provider
    alice = used_every_way(url, ctx, diary)
    lost = add_device(ctx, alice.first, name="Alice's lost phone")
    alice.paired.unbind_device(lost.require_key_file().device_id)  # its certificate in the CRL
    with pytest.raises(CityloginError):
        alice.first.login("not the password")  # the username's failed-login counter
    settle_background(ctx)
    subject = username_subject(alice.username)
    stored = stored_about(ctx, alice, {f"fail#{subject}", f"lock#{subject}"})
    assert {"sessions", "presence", "login_history", "one_time_tokens", "pairing_tokens", "rate_limits",
            "passkeys", "oidc_grants", "oidc_consents"} <= set(stored)

    exported = alice.paired.request("GET", "/account/export").json()
    answer = alice.paired.request("GET", f"/account/export?format=readable&time_zone={ZONE}")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    copy = ReadableExport.model_validate(answer.json()).model_dump()
    assert copy["language"] == "en" and copy["time_zone"] == ZONE

    reader = Reader(locale="en", zone=ZoneInfo(ZONE), names=Names.of(exported))
    sections = {section["source"]: section for section in copy["sections"]}
    assert list(sections) == list(data_export.SECTIONS) and all(s["described"] for s in copy["sections"])
    for name in data_export.SECTIONS:
        assert exported[name], f"{name}: the account used every way left nothing in it"
        entries = [shown(entry) for entry in sections[name]["entries"]]
        for item in exported[name]:
            expected = pairs(reader, name, item)
            assert any(expected <= entry for entry in entries), (name, item, sorted(expected))
    # The history's operator action and its copy in the audit trail: one entry, saying it is kept twice
    [locked] = [e for e in sections["login_history"]["entries"] if e["heading"].startswith("Account locked")]
    assert locked["also_stored"] == [reader.text("export.word.audit_copy")]

    # Readable values, worked out without the copy's code: names for ids, dates in Tokyo
    text = "\n".join(values_of(copy))
    for name in [*alice.device_names, alice.passkey_name, "Alice's lost phone", "Diary", alice.user_agent]:
        assert name in text, name
    session = exported["sessions"][0]
    assert tokyo(session["login_epoch"]) in text and tokyo(session["ends_at"]) in text
    technical = {str(item[k]) for section in ("devices", "sessions", "passkeys", "oidc_grants")
                 for item in exported[section] for k in ("fingerprint", "cert_pem", "jkt", "public_key",
                                                         "device_id", "session_id", "grant_id") if k in item}
    assert len(technical) > 8 and [value for value in technical if value in text] == []
    assert INTERNAL.findall(text) == [] and EPOCH.findall(text) == []

    page = alice.paired.request("GET", f"/account/export?format=html&time_zone={ZONE}")
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="citylogin-data-\d{4}-\d{2}-\d{2}\.html"',
                        page.headers["Content-Disposition"])
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Content-Security-Policy"] == readable_html.POLICY
    missing = [value for value in values_of(copy) if escape(value) not in page.text]
    assert missing == []  # the same copy, every value of it in the file
    body = unescape(re.sub(r"<[^>]+>", " ", page.text.split("<body>")[1]))
    assert INTERNAL.findall(body) == [] and EPOCH.findall(body) == []
    assert [value for value in technical if value in page.text] == []


def test_html_is_chosen_by_accept_and_a_bad_zone_or_format_is_400(make_server):
    url, ctx = make_server()
    someone = person(url)
    page = someone.request("GET", "/account/export", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.headers["Content-Type"].startswith("text/html") and "Accept" in page.headers["Vary"]
    assert "<h1>Your data at citylogin</h1>" in page.text and "UTC" in page.text
    plain = someone.request("GET", "/account/export", headers={"Accept": "*/*"})
    assert plain.headers["Content-Type"].startswith("application/json")
    for zone in ("Mars/Olympus_Mons", "../../etc/passwd", "localtime", "Europe/Paris\n", "x" * 65):
        refused = someone.request("GET", "/account/export", params={"format": "html", "time_zone": zone})
        assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"] == "time_zone", zone
    assert problem(someone.request("GET", "/account/export?format=pdf"))[:2] == (400, "invalid_field")


def test_the_copy_is_in_the_accounts_language_and_a_typed_name_is_escaped(make_server):
    url, ctx = make_server()
    someone = person(url)
    hostile = "<script>alert('name')</script>"
    someone.rename_device(someone.key_file.device_id, hostile)
    someone.request("PATCH", "/account", json={"locale": "ja"})
    copy = someone.request("GET", "/account/export?format=readable&time_zone=Asia/Tokyo").json()
    assert copy["language"] == "ja" and copy["sections"][0]["title"] == "あなたのアカウント"
    assert hostile in "\n".join(values_of(copy))  # as text in JSON; the web UI sets it as text
    page = someone.request("GET", "/account/export?format=html").text
    assert hostile not in page and escape(hostile) in page and "<script" not in page
    assert '<html lang="ja">' in page and "時刻は UTC" in page
    # the page's language, where the person reads it in another than their mail's
    english = someone.request("GET", "/account/export?format=readable&locale=en").json()
    assert english["language"] == "en" and english["sections"][0]["title"] == "Your account"
    assert problem(someone.request("GET", "/account/export?format=readable&locale=fr"))[:2] == (400, "invalid_field")


def test_the_readable_copy_of_a_deleting_or_deleted_account_is_409_or_404(make_server):
    url, ctx = make_server()
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    assert users.begin_deletion(ctx, user_uuid=target.key_file.user_uuid, holds_admin=False)
    for form in ("readable", "html"):
        answer = target.request("GET", f"/account/export?format={form}&time_zone=Europe/Paris")
        assert problem(answer)[:2] == (409, "account_deleting"), form
        by_operator = support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/export?format={form}",
                                      json={"reason": "access request"})
        assert problem(by_operator)[:2] == (404, "not_found"), form
    assert deletion.finish_deletion(ctx, user_uuid=target.key_file.user_uuid)
    settle_background(ctx)
    assert problem(target.request("GET", "/account/export?format=html"))[:2] == (401, "session_revoked")
    answer = support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/export?format=html",
                             json={"reason": "access request"})
    assert problem(answer)[:2] == (404, "not_found")


def test_an_operator_gets_the_persons_copy_in_their_language_and_a_bad_zone_audits_nothing(make_server):
    url, ctx = make_server()
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    target.request("PATCH", "/account", json={"locale": "ja"})
    path = f"/admin/accounts/{target.key_file.user_uuid}/export"
    refused = support.request("POST", path + "?format=html&time_zone=Nowhere/Land", json={"reason": "ticket 9"})
    assert problem(refused)[:2] == (400, "invalid_field")
    settle_background(ctx)
    trail = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"]
    assert [row for row in trail if row["action"] == "export"] == []

    page = support.request("POST", path + "?format=html&time_zone=Asia/Tokyo", json={"reason": "ticket 9"})
    assert page.status_code == 200 and page.headers["Content-Disposition"].endswith('.html"')
    assert '<html lang="ja">' in page.text and "Asia/Tokyo" in page.text
    assert target.key_file.username in page.text
    settle_background(ctx)
    trail = support.get_json(f"/admin/accounts/{target.key_file.user_uuid}/audit")["items"]
    assert [row["reason"] for row in trail if row["action"] == "export"] == ["ticket 9"]
