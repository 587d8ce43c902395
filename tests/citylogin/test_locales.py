"""The translation catalogues (issue item 1): one flat file per language, the same keys and
{placeholders} in each, and every text the web UI shows taken from them."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from common import i18n

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ROOT / "common" / "locales"
WEB = ROOT / "citylogin" / "webui" / "static"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A key as a whole string literal in a script ("web.x", 'web.x', `web.x`), or in a data-i18n* attribute.
SCRIPT_KEY = re.compile(r"""["'`](web\.[\w.]+)["'`]""")
HTML_KEY = re.compile(r"""data-i18n(?:-[\w-]+)?="(web\.[\w.]+)\"""")
# The same in both languages on purpose: the product's name and each language's own name.
SAME_IN_BOTH = {"web.app.name", "web.app.title", "web.header.language_en", "web.header.language_ja"}
TRANSLATED_ATTRIBUTES = ("aria-label", "title", "alt", "placeholder")
PAGES = ("index.html", "admin.html")     # the person's app and the operators' console


def catalogue(lang: str) -> dict[str, str]:
    messages = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(messages, dict)
    return messages


@pytest.fixture(scope="module")
def en() -> dict[str, str]:
    return catalogue("en")


@pytest.fixture(scope="module")
def ja() -> dict[str, str]:
    return catalogue("ja")


def test_both_languages_have_the_same_keys(en, ja):
    assert sorted(set(en) - set(ja)) == [], "missing in ja.json"
    assert sorted(set(ja) - set(en)) == [], "missing in en.json"


def test_catalogues_are_flat_strings_without_empty_values(en, ja):
    for lang, messages in (("en", en), ("ja", ja)):
        bad = [k for k, v in messages.items() if not isinstance(v, str) or not v.strip()]
        assert bad == [], f"{lang}: empty or non-string values"
        assert all(re.fullmatch(r"[a-z]+(\.[a-z0-9_]+)+", k) for k in messages), f"{lang}: a key is not namespaced"


def test_placeholders_match_per_key(en, ja):
    differing = {k: (en[k], ja[k]) for k in en.keys() & ja.keys()
                 if sorted(PLACEHOLDER.findall(en[k])) != sorted(PLACEHOLDER.findall(ja[k]))}
    assert differing == {}


def test_japanese_texts_are_translated(en, ja):
    untranslated = [k for k in en if k.startswith("web.") and en[k] == ja[k] and k not in SAME_IN_BOTH]
    assert untranslated == []


def used_keys() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(WEB.glob("*.js")):
        for key in SCRIPT_KEY.findall(path.read_text(encoding="utf-8")):
            found.setdefault(key, set()).add(path.name)
    for page in PAGES:
        for key in HTML_KEY.findall((WEB / page).read_text(encoding="utf-8")):
            found.setdefault(key, set()).add(page)
    return found


def test_every_key_the_web_ui_uses_exists(en, ja):
    used = used_keys()
    assert len(used) > 100          # the patterns still find the keys
    assert {k: sorted(files) for k, files in used.items()
            if not all(k in messages or f"{k}.other" in messages for messages in (en, ja))} == {}


def test_a_text_with_plural_forms_has_each_form_and_a_count(en, ja):
    """English's "one" and "other" (Japanese has the one form, kept under both keys), each with {count}: the
    number that chooses the form (common/i18n.py, i18n.js)."""
    bases = {key.removesuffix(".one") for key in en if key.endswith(".one")}  # ".other" alone may be a value's
    assert "web.admin.action.token_add_message" in bases and "export.devices.kept" in bases
    for base in bases:
        assert base not in en and {f"{base}.one", f"{base}.other"} <= en.keys(), base
        assert all("{count}" in messages[f"{base}.{form}"] for messages in (en, ja) for form in ("one", "other"))
        assert ja[f"{base}.one"] == ja[f"{base}.other"], base


@pytest.mark.parametrize("count, language, said", [
    (1, "en", "up to 1 app until"), (2, "en", "up to 2 apps until"), (0, "en", "up to 0 apps until"),
    (1, "ja", "最大 1 個のアプリ"), (2, "ja", "最大 2 個のアプリ")])
def test_the_plural_form_is_the_one_of_the_count(count, language, said):
    assert said in i18n.text("web.admin.action.token_add_message", language, count=count)


def test_the_in_use_dialog_says_the_design_notes_sentence(ja):
    assert ja["web.concurrent.message"] == ("このアカウントは別の場所で使用中です。こちらにログインすると、"
                                            "以前のセッションは自動的にログアウトされます。続けますか？")


class _Texts(HTMLParser):
    """Collects the text nodes and attributes of a page that a person could read untranslated."""

    SKIP = {"script", "style", "noscript"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []     # (tag, has data-i18n)
        self.literals: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in TRANSLATED_ATTRIBUTES:
            if re.search(r"[A-Za-z]{2}", attributes.get(name) or ""):
                self.literals.append(f"<{tag} {name}={attributes[name]!r}>")
        if tag not in {"meta", "link", "input", "img", "br", "hr"}:
            self.stack.append((tag, "data-i18n" in attributes))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if any(tag in self.SKIP for tag, _ in self.stack):
            return
        if re.search(r"[A-Za-z]{2}|[\u3040-\u30ff\u4e00-\u9fff]", data):
            self.literals.append(data.strip())


@pytest.mark.parametrize("page", PAGES)
def test_a_page_has_no_text_outside_the_catalogue(page):
    parser = _Texts()
    parser.feed((WEB / page).read_text(encoding="utf-8"))
    assert parser.literals == [], f"text in {page} must come from the catalogue (data-i18n)"
