"""The server's languages (issue 11 item 1): the catalogues, Accept-Language, the problem
details in Japanese and English with the same `code`, and the `kind` of invalid_field."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import requests

from common import i18n
from common.errors import ApiError, ErrorCode, FieldKind, InvalidField, MissingFields
from tests.support import product
from common.web.validation import parse_model

ROOT = Path(__file__).resolve().parents[2]
# The OpenID Provider answers in OAuth's own English (RFC 6749 error descriptions); the CLI prints its own.
DOMAINS = tuple(package for package in product.packages() if package not in {"citylogin", "oidc"})


@pytest.mark.parametrize(("header", "expected"), [
    ("ja", "ja"), ("ja-JP", "ja"), ("JA-jp", "ja"), ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
    ("en", "en"), ("en-US,en;q=0.9", "en"), ("fr", "en"), ("fr-FR, de;q=0.5", "en"),
    ("fr, ja;q=0.5", "ja"),                 # French is not offered: the next choice
    ("en;q=0.5, ja;q=0.8", "ja"), ("ja;q=0.5, en", "en"), ("ja;q=0", "en"), ("ja;q=zero", "en"),
    ("*", "en"), ("", "en"), (None, "en"), (" ; , ;q=", "en"),
])
def test_accept_language_negotiation(header, expected):
    assert i18n.negotiate(header) == expected


def test_text_fills_placeholders_and_falls_back_to_english():
    assert i18n.text("error.missing_fields.list", "ja", fields="a, b") == "必須の項目がありません: a, b。"
    assert i18n.text("error.missing_fields.list", "fr", fields="a") == "Missing required fields: a."
    assert i18n.text("error.missing_fields.list", None, fields="a") == "Missing required fields: a."
    assert i18n.text("error.missing_fields.list", "en") == "Missing required fields: {fields}."
    with pytest.raises(KeyError):
        i18n.text("error.no_such_key", "ja")


def test_every_error_code_has_a_detail_in_both_languages():
    for code in ErrorCode:
        for lang in i18n.LANGUAGES:
            assert i18n.CATALOGUES[lang].get(f"error.{code.value}"), (lang, code)


def test_a_key_missing_in_one_language_is_found():
    catalogues = {"en": {"a.b": "x {n}", "a.c": "y"}, "ja": {"a.b": "エックス"}}
    assert i18n.catalogue_problems(catalogues) == ["a.c: missing in ja.json", "a.b: other placeholders in ja.json"]
    assert i18n.catalogue_problems(i18n.CATALOGUES) == []


def test_english_details_of_errors_are_unique_so_each_finds_one_key():
    texts = [v for k, v in i18n.CATALOGUES["en"].items() if k.startswith("error.") and "{" not in v]
    assert len(texts) == len(set(texts))


def _api_error_names() -> set[str]:
    for package in DOMAINS:
        for path in (ROOT / package).glob("*.py"):
            importlib.import_module(f"{package}.{path.stem}")
    found, todo = set(), [ApiError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo += cls.__subclasses__()
    return found


def test_every_fixed_english_detail_in_the_code_is_in_the_catalogue():
    """A literal detail raised anywhere must be in en.json under error.*, or it stays English."""
    names, untranslated = _api_error_names(), []
    for package in DOMAINS:
        for path in (ROOT / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                detail = _literal_detail(node, names)
                if detail is not None and i18n.key_of(detail, prefix="error.") is None:
                    untranslated.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert untranslated == []
    defaults = {cls.detail for cls in _subclasses(ApiError)}
    assert [d for d in defaults if i18n.key_of(d, prefix="error.") is None] == []


DETAIL_POSITION = {"InvalidField": 1, "MissingFields": 1}  # after the field(s)


def _literal_detail(node: ast.AST, names: set[str]) -> str | None:
    """The detail of `SomeApiError("literal", ...)`, else None."""
    callee = getattr(node, "func", None)
    name = getattr(callee, "id", None) or getattr(callee, "attr", None)
    if not isinstance(node, ast.Call) or name not in names:
        return None
    position = DETAIL_POSITION.get(name, 0)
    argument = node.args[position] if len(node.args) > position else None
    return argument.value if isinstance(argument, ast.Constant) and isinstance(argument.value, str) else None


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_an_error_renders_in_japanese_with_the_same_members():
    error = MissingFields(["username", "password"])
    english, japanese = error.body("en"), error.body("ja")
    assert english["detail"] == "Missing required fields: username, password."
    assert japanese["detail"] == "必須の項目がありません: username, password。"
    assert {k: v for k, v in english.items() if k != "detail"} == {k: v for k, v in japanese.items() if k != "detail"}


def test_a_detail_the_catalogue_lacks_stays_english():
    error = InvalidField("client_cert", "some library's own words")
    assert error.body("ja")["detail"] == "some library's own words"
    assert error.body("ja")["kind"] == "invalid_value"


def _invalid(model, body) -> InvalidField:
    with pytest.raises(InvalidField) as raised:
        parse_model(model, body)
    return raised.value


@pytest.mark.parametrize(("body", "field", "kind"), [
    ({"password": "short"}, "password", FieldKind.TOO_SHORT),
    ({"password": "x" * 8 + "y" * 130}, "password", FieldKind.TOO_LONG),
    ({"password": "password1"}, "password", FieldKind.TOO_COMMON),
    ({"username": "a"}, "username", FieldKind.INVALID_FORMAT),
    ({"username": "a b c"}, "username", FieldKind.INVALID_FORMAT),
    ({"email": "not-an-address"}, "email", FieldKind.INVALID_FORMAT),
    ({"device_name": "x" * 65}, "device_name", FieldKind.TOO_LONG),
    ({"device_name": "   "}, "device_name", FieldKind.EMPTY),
    ({"device_name": "a\u202eb"}, "device_name", FieldKind.INVALID_CHARACTERS),
    ({"device_class": "fridge"}, "device_class", FieldKind.INVALID_VALUE),
])
def test_invalid_field_names_the_rule_as_kind(body, field, kind):
    from flows.models import NewUserRequest
    good = {"username": "someone", "email": "someone@example.com", "password": "a-long-unusual-pass-9"}
    error = _invalid(NewUserRequest, {**good, **body})
    rendered = error.body("ja")
    assert (rendered["field"], rendered["kind"]) == (field, kind.value)
    assert rendered["detail"].startswith(f"{field}: ") and rendered["detail"] != error.body("en")["detail"]


def test_english_field_details_keep_the_validator_wording():
    from accounts.models import PasswordRequest
    error = _invalid(PasswordRequest, {"password": ""})
    assert error.body()["detail"] == "password: String should have at least 1 character"
    assert error.body()["kind"] == "empty"
    assert error.body("ja")["detail"] == "password: 値を入力してください。"


# --- over HTTP ---------------------------------------------------------------------------

@pytest.fixture
def url(make_server):
    return make_server()[0]


def _post(url: str, path: str, body: dict, language: str | None) -> requests.Response:
    headers = {"Accept-Language": language} if language is not None else {}
    return requests.post(url + path, json=body, headers=headers, timeout=30)


ENGLISH = "Missing required fields: username, password."


JAPANESE = "必須の項目がありません: username, password。"


@pytest.mark.parametrize(("language", "detail"), [
    ("ja", JAPANESE), ("ja-JP,en;q=0.5", JAPANESE), ("en", ENGLISH), (None, ENGLISH), ("fr", ENGLISH),
])
def test_the_detail_follows_accept_language_and_the_code_does_not(url, language, detail):
    answer = _post(url, "/login/", {}, language)
    assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("application/problem+json")
    body = answer.json()
    assert (body["code"], body["fields"], body["detail"]) == ("missing_fields", ["username", "password"], detail)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_an_invalid_password_has_a_kind_in_every_language(url, language):
    answer = _post(url, "/registration/", {"username": "someone", "email": "someone@example.com",
                                           "password": "short"}, language)
    body = answer.json()
    assert (answer.status_code, body["code"], body["kind"]) == (400, "invalid_field", "too_short")
    assert ("文字" in body["detail"]) == (language == "ja")


def test_werkzeug_errors_follow_accept_language_too(url):
    english = requests.get(url + "/no/such/path", timeout=30)
    japanese = requests.get(url + "/no/such/path", headers={"Accept-Language": "ja"}, timeout=30)
    assert english.json()["code"] == japanese.json()["code"] == "not_found"
    assert japanese.json()["detail"] == "見つかりません。"
    assert english.json()["detail"] != japanese.json()["detail"]


# Japanese names a recovery code one way (issue 65): 復旧コード, as the recovery form's label says.
RECOVERY_CODE_JA, OTHER_TERMS = "復旧コード", ("回復コード", "リカバリーコード", "リカバリコード", "救済コード")
SHIPPED_SUFFIXES = {".json", ".js", ".html", ".css", ".py", ".md", ".txt", ".svg"}


def _shipped_texts() -> list[Path]:
    """Every text a person can read that ships: the product's packages (catalogues, web pages, mail), the
    docs and the README."""
    roots = [ROOT / package for package in product.packages()] + [ROOT / "docs", ROOT / "README.md"]
    files = [path for root in roots for path in ([root] if root.is_file() else sorted(root.rglob("*")))]
    return [path for path in files if path.suffix in SHIPPED_SUFFIXES and "node_modules" not in path.parts]


def test_japanese_says_recovery_code_one_way_everywhere():
    assert RECOVERY_CODE_JA == i18n.CATALOGUES["ja"]["web.recover.code"]
    uses = [path for path in _shipped_texts() if RECOVERY_CODE_JA in path.read_text(encoding="utf-8", errors="replace")]
    assert ROOT / "common" / "locales" / "ja.json" in uses
    others = {f"{path.relative_to(ROOT)}: {term}" for path in _shipped_texts()
              for term in OTHER_TERMS if term in path.read_text(encoding="utf-8", errors="replace")}
    assert not others
