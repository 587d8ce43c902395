"""The translation catalogues (common/locales/<lang>.json): flat key -> text with {name}
placeholders, the same keys and placeholders in every language (checked when this module loads).
A text that depends on a number has a form per plural category of CLDR (`key.one`, `key.other`),
chosen by the `count` it is given: "1 day", "2 days"; Japanese has the one form, `other`, the same
text under both keys (the web UI's i18n.js chooses alike, with Intl.PluralRules).

Pure: no Flask. `negotiate` reads an Accept-Language header, `text` renders one key, from the
catalogues in use in this context (a brand's, common/brand.py; the files' otherwise)."""
from __future__ import annotations

import json
import re
import string
from contextvars import ContextVar, Token
from functools import lru_cache
from importlib import resources

LANGUAGES = ("en", "ja")
DEFAULT = "en"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CatalogueError(RuntimeError):
    """The catalogues disagree: a key or a placeholder is missing in one language."""


def _read(lang: str) -> dict[str, str]:
    raw = resources.files("common").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8")
    return json.loads(raw)


def catalogue_problems(catalogues: dict[str, dict[str, str]]) -> list[str]:
    """What one language has that another lacks, key by key and placeholder by placeholder."""
    problems, reference = [], catalogues[DEFAULT]
    for lang, messages in catalogues.items():
        problems += [f"{key}: missing in {lang}.json" for key in sorted(reference.keys() - messages.keys())]
        problems += [f"{key}: missing in {DEFAULT}.json" for key in sorted(messages.keys() - reference.keys())]
        problems += [f"{key}: other placeholders in {lang}.json" for key in sorted(reference.keys() & messages.keys())
                     if placeholders(reference[key]) != placeholders(messages[key])]
    return problems


def placeholders(template: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(template))


def _load() -> dict[str, dict[str, str]]:
    catalogues = {lang: _read(lang) for lang in LANGUAGES}
    problems = catalogue_problems(catalogues)
    if problems:
        raise CatalogueError("the translation catalogues disagree: " + "; ".join(problems))
    return catalogues


CATALOGUES = _load()  # small package data, read once; a disagreement fails every import loudly
# Another set of catalogues (a brand's, same keys) for the request or command in this context; None: CATALOGUES.
_IN_USE: ContextVar[dict[str, dict[str, str]] | None] = ContextVar("citylogin_catalogues", default=None)


def use_catalogues(catalogues: dict[str, dict[str, str]] | None) -> Token[dict[str, dict[str, str]] | None]:
    """Renders with `catalogues` in this context until `reset_catalogues` with the token."""
    return _IN_USE.set(catalogues)


def reset_catalogues(token: Token[dict[str, dict[str, str]] | None]) -> None:
    _IN_USE.reset(token)


def has(key: str) -> bool:
    """Whether the catalogue holds `key` itself (a text with plural forms holds `key.one` and `key.other`)."""
    return key in CATALOGUES[DEFAULT]


class _KeepMissing(dict[str, object]):
    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def text(key: str, locale: str | None = None, **params: object) -> str:
    """The text of `key` in `locale` (English if the locale or the key is unknown there), with
    `params` filled in; a placeholder without a parameter stays as it is. A key with plural forms
    takes the one of `params["count"]`."""
    catalogues = _IN_USE.get() or CATALOGUES
    language = locale if locale in catalogues else DEFAULT
    messages = catalogues[language]
    count = params.get("count")
    if key not in catalogues[DEFAULT] and f"{key}.one" in catalogues[DEFAULT] and isinstance(count, (int, float)):
        key = f"{key}.{plural_category(count, language)}"
    template = messages.get(key) or catalogues[DEFAULT][key]
    return string.Formatter().vformat(template, (), _KeepMissing(params))


def plural_category(count: float, language: str) -> str:
    """CLDR's plural category of `count` in `language`, of those the catalogues use: English's "one" for
    exactly 1 (not 1.5, not 0), every other number "other"; Japanese has no plural forms ("other")."""
    return "one" if language == "en" and count == 1 else "other"


@lru_cache(maxsize=4)
def _keys_by_english(prefix: str) -> dict[str, str]:
    return {value: key for key, value in CATALOGUES[DEFAULT].items()
            if key.startswith(prefix) and not _PLACEHOLDER.search(value)}


def key_of(english: str, *, prefix: str) -> str | None:
    """The key under `prefix` whose English text is exactly `english` (no placeholders), if any:
    how a fixed English text raised by domain code finds its translations."""
    return _keys_by_english(prefix).get(english)


def _weighted_tags(header: str) -> list[tuple[float, str]]:
    """(q, primary language tag) of each entry, in header order; q=0 and malformed q are left out."""
    found = []
    for entry in header.split(","):
        tag, *options = [part.strip() for part in entry.split(";")]
        quality = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            found.append((quality, tag.split("-")[0].lower()))
    return found


def negotiate(accept_language: str | None) -> str:
    """The best of LANGUAGES for an Accept-Language header ("ja", "ja-JP" -> "ja"); English for
    anything else, a wildcard, an empty or a missing header."""
    best, best_quality = DEFAULT, 0.0
    for quality, tag in _weighted_tags(accept_language or ""):
        language = DEFAULT if tag == "*" else tag
        if language in LANGUAGES and quality > best_quality:
            best, best_quality = language, quality
    return best


def locale_of(value: str | None) -> str:
    """A stored locale as one of LANGUAGES (English for anything else)."""
    return value if value in LANGUAGES else DEFAULT
