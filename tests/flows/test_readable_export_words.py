"""The readable copy of a data export says everything in words (issue 83): a RICH account (sessions, a screen
approved by the device grant, an app signed in, an operator's lock, unlock and device limit, passkeys, mails,
consents, a failed login) is exported through the real APIs, and every text of its copy is walked, web (JSON)
and printable (HTML, the person's and the operator's), in English and Japanese: no snake_case name, no
epoch-like number, no catalogue key left untranslated nor a {placeholder} unfilled, and no id but the
account's may show. Every attribute and every stored code of the document has words in the catalogue. A value
the person typed (a name, an address, a user agent) is theirs and is not judged."""
from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from accounts.models import Role
from citylogin.client.api import Client
from common import i18n
from flows import data_export
from flows.readable_catalogue import FIELDS, Field, Kind
from tests.flows.test_data_export import provider  # noqa: F401 (a fixture)
from tests.flows.test_data_export_readable import values_of
from tests.flows.test_deletion_personal_data import Person, used_every_way
from tests.support.device_flow import ask, poll, screen_app
from tests.support.live import PASSWORD, settle_background
from tests.support.operators import operator

pytestmark = pytest.mark.slow     # an account used every way and more, three times (as test_data_export's)

ZONE = "Europe/Paris"
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")               # approved_ms, oidc_device, sessions_ended
# epoch seconds or milliseconds, counters; not a digit run inside an id (a UUID's "-1184030446b4")
EPOCH = re.compile(r"(?<![0-9A-Za-z_.:/-])\d{9,}(?![0-9A-Za-z_.])")
KEY = re.compile(r"\b(?:web|export|mail|error|admin)\.[a-z_]+(?:\.[a-z0-9_]+)+\b")   # web.export.x
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")                                 # a catalogue text's {kind} left unfilled
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # a session's, a device's id


def rich_account(url: str, ctx, diary) -> tuple[Person, Client]:
    """used_every_way's account, then: a screen approved by the device grant and its tokens fetched, the
    operator's device limit, lock and unlock, and a new sign-in of the paired device. The person, and the
    operator (support role)."""
    alice = used_every_way(url, ctx, diary)
    support = operator(url, ctx, Role.SUPPORT)
    acted = f"/admin/accounts/{alice.user_uuid}"
    limited = support.request("POST", f"{acted}/limit", json={"limit": 3, "reason": "a TV for the family"})
    assert limited.status_code == 200, limited.text
    screen = screen_app(ctx, name="Family TV")
    asked = ask(url, screen).json()
    approved = alice.paired.request("POST", "/oidc/device/approve", json={
        "user_code": asked["user_code"], "device_name": "Living-room TV", "force": False})
    assert approved.status_code == 200, approved.text
    assert poll(url, screen, asked["device_code"]).status_code == 200
    for action in ("lock", "unlock"):
        done = support.request("POST", f"{acted}/{action}", json={"reason": f"{action} asked by phone"})
        assert done.status_code == 200, done.text
    alice.paired.login(PASSWORD)
    settle_background(ctx)
    return alice, support


def typed_by_the_person(alice: Person) -> list[str]:
    """Values the person (or the test as the person) typed, shown as typed, and the account's identifier, which
    the copy names on purpose (the one id a person may quote to the staff): not judged here."""
    return [alice.username, alice.email, alice.new_email, alice.user_agent, alice.passkey_name,
            *alice.device_names, alice.email.lower(), alice.new_email.lower(), alice.user_uuid]


def offenders(texts: list[str], typed: list[str]) -> list[str]:
    found = []
    for text in texts:
        for value in typed:
            text = text.replace(value, " ")
        found += [f"{hit!r} in {text[:160]!r}" for pattern in (SNAKE, EPOCH, KEY, PLACEHOLDER, UUID)
                  for hit in pattern.findall(text)]
    return sorted(set(found))


def html_texts(page: str) -> list[str]:
    """The printable page's words: its text between the tags (the tags' own names and the CSS are markup)."""
    body = page.split("<body>", 1)[1]
    return [unescape(text) for text in re.split(r"<[^>]+>", body) if text.strip()]


def unspoken(document: dict[str, Any]) -> list[str]:
    """The document's attributes the catalogue has no words for, and its stored codes without words."""
    missing = []
    for section in data_export.SECTIONS:
        for item in document[section]:
            parts = [(f"{section}_devices", part) for part in item.get("entries", {}).values()]
            for name, values in [(section, item), *parts]:
                missing += [f"{name}.{attribute}" for attribute in values if attribute not in FIELDS[name]]
                missing += [f"{name}.{attribute}: {code}" for attribute, spec in FIELDS[name].items()
                            if spec.words and attribute in values for code in codes(spec, values[attribute])
                            if not i18n.has(spec.words.format(code))]
    return sorted(set(missing))


def codes(spec: Field, raw: Any) -> list[Any]:
    if spec.kind is Kind.WORDS and isinstance(raw, str):
        return raw.split()
    return raw if isinstance(raw, list) else [raw]


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_every_section_of_a_rich_accounts_copy_is_in_words(provider, locale):  # noqa: F811
    url, ctx, diary = provider
    alice, support = rich_account(url, ctx, diary)
    typed = typed_by_the_person(alice)
    query = f"locale={locale}&time_zone={ZONE}"
    copy: dict[str, Any] = alice.paired.request("GET", f"/account/export?format=readable&{query}").json()
    assert copy["language"] == locale
    sections = {section["source"]: section for section in copy["sections"]}
    assert all(sections[name]["entries"] for name in data_export.SECTIONS), sorted(sections)
    found = offenders(values_of(copy), typed)
    assert not found, "\n".join(found)

    page = alice.paired.request("GET", f"/account/export?format=html&{query}")    # the printable file
    assert page.status_code == 200 and f'<html lang="{locale}">' in page.text
    found = offenders(html_texts(page.text), typed)
    assert not found, "\n".join(found)
    if locale == "ja":   # the operator's copy for the person is in the person's language (theirs is en)
        return
    made = support.request("POST", f"/admin/accounts/{alice.user_uuid}/export?format=html&time_zone={ZONE}",
                           json={"reason": "access request"})
    assert made.status_code == 200 and '<html lang="en">' in made.text
    found = offenders(html_texts(made.text), typed)
    assert not found, "\n".join(found)


def test_every_attribute_and_stored_code_of_a_rich_account_has_words(provider):  # noqa: F811
    url, ctx, diary = provider
    alice, _ = rich_account(url, ctx, diary)
    assert unspoken(alice.paired.request("GET", "/account/export").json()) == []
