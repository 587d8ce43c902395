"""The readable copy of a data export, made from a document by hand (the route tests make it from a real
account): dates in the zone asked for (UTC without one, said so), a zone compared whole against the IANA
names the host knows, every stored value escaped in the HTML file and nothing it could load or run, and a
section or field the copy has no words for shown as stored rather than dropped."""
from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from zoneinfo import available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import i18n
from common.config import Settings
from flows import readable_html
from flows.readable_catalogue import FIELDS, Kind
from flows.readable_export import readable
from common.timefmt import time_zone

SETTINGS = Settings.model_construct(**{name: field.default for name, field in Settings.model_fields.items()})
MOMENT = 1795769208  # 2026-11-27T08:46:48Z
USER = "569995d6-2c11-4e9c-b9dd-a29e02c8fc51"


def document(**sections) -> dict:
    base = {"format": "citylogin-export/1", "exported_at": "2026-11-27T08:46:48Z", "user_uuid": USER,
            "users": [{"user_uuid": USER, "username": "alice", "email": "alice@example.com", "locale": "en",
                       "created_at": "2026-11-27T08:46:48Z", "email_verified": True, "recovery_codes_left": 10}],
            "devices": [], "app_names": []}
    return {**base, **sections}


def copy_of(doc: dict, *, locale: str = "en", zone: str | None = None):
    return readable(doc, settings=SETTINGS, locale=locale, zone_name=zone, product="citylogin")


def texts(copy) -> list[str]:
    found = [copy.title, copy.intro, copy.exported_at, copy.time_zone_note]

    def entry(e):
        found.append(e.heading)
        found.extend(t for f in e.fields for t in (f.label, f.value, f.about))
        found.extend(e.also_stored)
        for part in e.parts:
            entry(part)
    for section in copy.sections:
        found += [section.title, section.about, section.why, section.kept]
        for e in section.entries:
            entry(e)
    return found


# --- dates in the person's time zone --------------------------------------------------------------

@pytest.mark.parametrize(("locale", "zone", "expected"), [
    ("en", "Europe/Paris", "27 November 2026, 09:46"),
    ("en", "America/New_York", "27 November 2026, 03:46"),
    ("ja", "Asia/Tokyo", "2026年11月27日 17:46"),
    ("en", "Pacific/Pago_Pago", "26 November 2026, 21:46"),  # UTC-11: the day before
])
def test_times_are_dates_in_the_zone_asked_for(locale, zone, expected):
    doc = document(users=[{**document()["users"][0], "created_at": MOMENT}])
    copy = copy_of(doc, locale=locale, zone=zone)
    [account] = [s for s in copy.sections if s.source == "users"]
    created = {f.label: f.value for f in account.entries[0].fields}[i18n.text("export.field.created_at", locale)]
    assert created == expected
    assert copy.time_zone == zone and zone in copy.time_zone_note


def test_without_a_zone_the_copy_uses_utc_and_says_so():
    copy = copy_of(document())
    assert copy.time_zone == "UTC" and copy.exported_at == "27 November 2026, 08:46"
    assert copy.time_zone_note == i18n.text("export.time_zone_default", "en", zone="UTC")
    assert copy_of(document(), zone="Asia/Tokyo").time_zone_note == \
        i18n.text("export.time_zone_given", "en", zone="Asia/Tokyo")


ATTACKS = ["", " ", "../../etc/passwd", "/etc/localtime", "/usr/share/zoneinfo/UTC", "UTC\x00", "Europe/Paris\n",
           "europe/paris", "Europe//Paris", "Europe/../Europe/Paris", "localtime", "posixrules", "Factory/..",
           "%2e%2e/etc/passwd", "A" * 1000, "Europe/Paris ", "\u202eUTC", "UTC;rm -rf /"]


@pytest.mark.parametrize("name", ATTACKS)
def test_a_name_that_is_not_a_whole_iana_name_names_no_zone(name):
    assert time_zone(name) is None


@given(st.one_of(st.text(max_size=80), st.sampled_from(sorted(available_timezones())).flatmap(
    lambda zone: st.tuples(st.just(zone), st.text(max_size=4)).map(lambda pair: pair[0] + pair[1]))))
def test_a_zone_is_named_exactly_or_not_at_all(name):
    zone = time_zone(name)
    assert zone is None or (name in available_timezones() and name != "localtime" and zone.key == name)


# --- safe HTML --------------------------------------------------------------------------------------

HOSTILE = ['<script>alert("name")</script>', '"><img src=x onerror=alert(1)>', "</style><script>x()</script>",
           "javascript:alert(1)", "<a href='https://evil.example'>tap</a>"]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def test_every_stored_value_is_escaped_and_the_page_allows_its_own_style_alone():
    devices = [{"user_uuid": USER, "device_id": f"d{i}", "device_name": name, "registered_at": MOMENT,
                "status": "active", "device_class": "mobile"} for i, name in enumerate(HOSTILE)]
    doc = document(devices=devices, mail_outbox=[{"user_uuid": USER, "subject": HOSTILE[0], HOSTILE[1]: "x"}])
    page = readable_html.page(copy_of(doc))
    for name in HOSTILE:
        assert (name not in page) if re.search("[<>\"']", name) else (f"<h3>{name}</h3>" in page)  # shown as text
    assert page.count("&lt;script&gt;") >= 3
    parsed = Tags()
    parsed.feed(page)
    assert {tag for tag, _ in parsed.tags} <= {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2",
                                               "h3", "p", "nav", "ol", "li", "a", "section", "div", "dl", "dt", "dd",
                                               "small", "strong"}
    assert not [attrs for _, attrs in parsed.tags if any(name.startswith("on") for name in attrs)]
    assert all(attrs["href"].startswith("#") for tag, attrs in parsed.tags if tag == "a")
    [policy] = [attrs["content"] for tag, attrs in parsed.tags if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy == readable_html.META_POLICY and "default-src 'none'" in policy and "script" not in policy
    digest = base64.b64encode(hashlib.sha256(parsed.style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy  # the one style element, exactly as the file has it


# --- what the copy has no words for -------------------------------------------------------------------

def test_a_section_and_a_field_without_words_still_show_as_stored():
    later = [{"user_uuid": USER, "kind": "reset", "attempts": 3, "to": ["alice@example.com"]}]
    doc = document(a_table_added_later=later)
    doc["users"][0]["favourite_colour"] = "teal"
    copy = copy_of(doc)
    [other] = [s for s in copy.sections if s.source == "a_table_added_later"]
    assert not other.described and other.title == i18n.text("export.unknown.title", "en", name="a_table_added_later")
    assert other.kept == i18n.text("export.unknown.kept", "en")
    assert {(f.label, f.value) for f in other.entries[0].fields} == {
        ("user_uuid", USER), ("kind", "reset"), ("attempts", "3"), ("to", "alice@example.com")}
    [account] = [s for s in copy.sections if s.source == "users"]
    assert ("favourite_colour", "teal", "") in {(f.label, f.value, f.about) for f in account.entries[0].fields}
    assert [s.source for s in copy.sections][-1] == "a_table_added_later"  # after the sections the copy knows


def test_every_word_the_catalogue_can_use_is_in_both_languages():
    for section, fields in FIELDS.items():
        if section != "presence_devices":
            for part in ("title", "about", "why", "kept", "item"):
                key = f"export.{section}.{part}"
                assert i18n.has(key) or i18n.has(f"{key}.one"), (section, part)  # a text, or its plural forms
        for name, spec in fields.items():
            key = f"export.field.{section}.{name}" if spec.own_label else f"export.field.{name}"
            if spec.kind in (Kind.INTERNAL, Kind.ENTRIES):  # not shown; shown as parts, each with its own fields
                continue
            assert i18n.has(key), key
            if spec.kind is not Kind.TECHNICAL:
                assert i18n.has(f"{key}.about"), key
    english = [v for k, v in i18n.CATALOGUES["en"].items() if k.startswith("export.")]
    assert not [text for text in english if re.search(r"live#|audit#|#registered|#crl", text)]
