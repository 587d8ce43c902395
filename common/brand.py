"""A deployment's brand (CITYLOGIN_BRAND_DIR, CITYLOGIN_BRAND_NAME; docs/guides/branding.md): the
product's name, logo and colours on the person's pages, the consent and logout pages and the console,
the display name mail is sent from, and any text of the catalogues per language.

The folder holds up to four kinds of file, each optional:

    brand.json          {"name": "Acme ID", "mail_from": "Acme ID accounts", "colors": {"accent": "#0b7a5a"}}
    logo.svg | logo.png the header's logo (and the page's icon)
    texts/en.json       {"mail.registered.subject": "Welcome to Acme", ...}: whole texts of the catalogue
    texts/ja.json

The name takes the place of the word "citylogin" in every text of the catalogues (not in a command
such as `citylogin init`); a texts file then replaces whole texts. A bad value (a name, a colour, a
text) is left out alone, with one ERROR line naming the file and the field, and that field stays the
default; a file that cannot be read at all (not JSON, not an image) is left out whole, with one ERROR
naming it: a brand never fails a start or a request. Pure: no Flask; the app puts its brand in use per
request (`use`), and common.i18n renders with the catalogues of the brand in use."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import unicodedata
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from common import i18n
from common.safe_svg import UnsafeSvg, safe_svg

log = logging.getLogger("citylogin.brand")

DEFAULT_NAME = "citylogin"
NAME_MAX = 64
# The custom properties of app.css a brand may set (every page's stylesheet reads them).
COLORS = ("accent", "accent-dark", "accent-soft", "bg", "card", "text", "muted", "line")
BRAND_KEYS = ("name", "mail_from", "colors")
FIELD_NAME = re.compile(r"[\w.-]{1,80}", re.ASCII)
HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
# Where the web UI serves the brand's stylesheet (citylogin/webui/assets.py); /oidc's own pages load it too.
STYLESHEET_URL = "/web/brand.css"
LOGO_MAX_BYTES = 256 * 1024
LOGOS = {"logo.svg": "image/svg+xml", "logo.png": "image/png"}
LEFT_OUT_NAMED = 12          # the names of what a logo lost, in its WARNING line
KNOWN = ("brand.json", *LOGOS, "texts")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The product's name in a text, not the command (`citylogin init`, "citylogin admin grant").
PRODUCT_NAME = re.compile(r"\bcitylogin\b(?! (?:init|admin|apps|keys|serve|client|password)\b)")
# What the brand's stylesheet says besides the colours: the logo's size in the header.
LOGO_RULE = (".brand-logo { height: 1.75em; width: auto; max-width: 10rem; vertical-align: middle;"
             " margin-right: 0.4em; }")


# app.css's few shades of its blue that are not custom properties, made of the brand's accent instead.
ACCENT_RULES = ("button.secondary { border-color: color-mix(in srgb, var(--accent) 35%, #fff); }\n"
                ":focus-visible { outline-color: color-mix(in srgb, var(--accent) 55%, #fff); }\n"
                "tr.current td, table.stack tr.current {"
                " background: color-mix(in srgb, var(--accent-soft) 45%, #fff); }")


class BrandFileError(ValueError):
    """A brand file is malformed; the message says what is wrong in it."""


@dataclass(frozen=True)
class Logo:
    file_name: str               # logo.svg or logo.png
    mimetype: str
    body: bytes


@dataclass(frozen=True, eq=False)
class Brand:
    """Equal, and hashed, by what it holds (`identity`): a cache keyed by brand serves each brand its own."""

    name: str = DEFAULT_NAME
    mail_from: str | None = None                 # the mail's display name; None: the name (if one was set)
    colors: tuple[tuple[str, str], ...] = ()     # (custom property without "--", #rgb or #rrggbb)
    logo: Logo | None = None
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)   # language -> key -> text

    @cached_property
    def identity(self) -> str:
        described = json.dumps([self.name, self.mail_from, self.colors, self.texts,
                                self.logo and [self.logo.file_name, hashlib.sha256(self.logo.body).hexdigest()]],
                               sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(described.encode()).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Brand) and other.identity == self.identity

    def __hash__(self) -> int:
        return hash(self.identity)

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_BRAND

    @property
    def file_stem(self) -> str:
        """The name as a file name's first part: "Acme ID" -> "acme-id" (ASCII letters and digits joined by
        hyphens); "" for a name with none (a Japanese one)."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    @property
    def sender_name(self) -> str | None:
        """The display name of the mail's sender: `mail_from`, else a name that was set; None leaves the
        back end's sender as configured (CITYLOGIN_SES_SENDER may carry a display name of its own)."""
        return self.mail_from or (self.name if self.name != DEFAULT_NAME else None)

    def renamed(self, text: str) -> str:
        """`text` with the brand's name where it names the product."""
        return text if self.name == DEFAULT_NAME else PRODUCT_NAME.sub(lambda _: self.name, text)

    @cached_property
    def catalogues(self) -> dict[str, dict[str, str]]:
        """Every language's catalogue as this brand shows it: renamed, then the texts files' texts."""
        if self.name == DEFAULT_NAME and not self.texts:
            return i18n.CATALOGUES
        return {lang: {key: self.texts.get(lang, {}).get(key) or self.renamed(text) for key, text in messages.items()}
                for lang, messages in i18n.CATALOGUES.items()}

    @cached_property
    def stylesheet(self) -> bytes | None:
        """The brand's CSS (its colours as app.css's custom properties, the logo's size), or None when it
        sets neither: an unbranded page loads nothing more."""
        if not self.colors and self.logo is None:
            return None
        lines = ["/* The deployment's brand (CITYLOGIN_BRAND_DIR), after app.css. */"]
        if self.colors:
            lines.append(":root { " + " ".join(f"--{name}: {value};" for name, value in self.colors) + " }")
            lines.append(ACCENT_RULES)
        if self.logo is not None:
            lines.append(LOGO_RULE)
        return ("\n".join(lines) + "\n").encode()


DEFAULT_BRAND = Brand()


# --- the brand in use -------------------------------------------------------------------------------

_IN_USE: ContextVar[Brand] = ContextVar("citylogin_brand", default=DEFAULT_BRAND)


def current() -> Brand:
    """The brand of the request (or command) being served; the default outside one."""
    return _IN_USE.get()


def use(brand: Brand) -> tuple[Token[Brand], Token[dict[str, dict[str, str]] | None]]:
    """Puts `brand` in use in this context (its texts in common.i18n too); undo with `stop_using`."""
    return _IN_USE.set(brand), i18n.use_catalogues(None if brand.is_default else brand.catalogues)


def stop_using(tokens: tuple[Token[Brand], Token[dict[str, dict[str, str]] | None]]) -> None:
    brand_token, catalogue_token = tokens
    i18n.reset_catalogues(catalogue_token)
    _IN_USE.reset(brand_token)


@contextmanager
def using(brand: Brand) -> Iterator[Brand]:
    tokens = use(brand)
    try:
        yield brand
    finally:
        stop_using(tokens)


# --- loading ---------------------------------------------------------------------------------------

def load_brand(directory: Path | None, *, name: str | None = None) -> Brand:
    """The brand of CITYLOGIN_BRAND_DIR `directory` (None: no folder), with CITYLOGIN_BRAND_NAME `name`
    over the folder's. Never raises: each malformed file is logged at ERROR once and left out."""
    values: dict[str, Any] = {}
    if directory is not None:
        values = _read_folder(directory)
    if name:
        values["name"] = name
    return Brand(**values)


def _read_folder(directory: Path) -> dict[str, Any]:
    if not directory.is_dir():
        _refused(directory, "not a folder (CITYLOGIN_BRAND_DIR)")
        return {}
    values: dict[str, Any] = {}
    for path in sorted(directory.iterdir()):
        # A hidden name is the system's, not the operator's: a Kubernetes volume's ..data, a .DS_Store.
        if path.name not in KNOWN and not path.name.startswith("."):
            _refused(path, f"not a brand file: the folder holds {', '.join(KNOWN)}")
    settings = _part(directory / "brand.json", read_settings)
    values.update(settings or {})
    logos = [directory / file_name for file_name in LOGOS if (directory / file_name).exists()]
    if len(logos) > 1:
        _refused(logos[1], f"a second logo: {logos[0].name} is shown")
    if logos:
        values["logo"] = _part(logos[0], read_logo)
    texts = directory / "texts"
    if texts.exists():
        values["texts"] = _read_texts(texts)
    return values


def _read_texts(folder: Path) -> dict[str, dict[str, str]]:
    if not folder.is_dir():
        _refused(folder, "not a folder of texts/<language>.json files")
        return {}
    found: dict[str, dict[str, str]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".json" or path.stem not in i18n.LANGUAGES:
            _refused(path, f"not a texts file: texts/<language>.json, a language of {', '.join(i18n.LANGUAGES)}")
            continue
        texts = _part(path, lambda p: read_texts(p, language=p.stem))
        if texts:
            found[path.stem] = texts
    return found


def _part(path: Path, reader: Callable[[Path], Any]) -> Any:
    """What `reader` makes of the file at `path`; None when it is missing or malformed (logged)."""
    if not path.exists():
        return None
    try:
        return reader(path)
    except BrandFileError as exc:
        _refused(path, str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        _refused(path, f"cannot be read ({type(exc).__name__})")
    return None


def _refused(path: Path, why: str) -> None:
    log.error("brand file %s left out, its defaults shown: %s", path, why)


def _field_refused(path: Path, field_name: str, why: str) -> None:
    """One bad value: the rest of the file still counts, so the line names the field that fell back."""
    log.error("brand file %s: %s left out, its default shown: %s", path, field_name, why)


def _named(key: str) -> str:
    """A key of the operator's file as a log line shows it: as typed when it is a plain name, else quoted
    with its control characters escaped and cut short (a key is never a secret, but a line is one line)."""
    return key if FIELD_NAME.fullmatch(key) else repr(key)[:60]


def _json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BrandFileError(f"not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise BrandFileError("not a JSON object")
    return value


def read_settings(path: Path) -> dict[str, Any]:
    """brand.json: {"name"?, "mail_from"?, "colors"?: {property: "#rrggbb"}}. A bad value is left out
    alone (one ERROR naming it): a typing error in a colour keeps the name and the sender."""
    value = _json_object(path)
    for unknown in sorted(set(value) - set(BRAND_KEYS)):
        _field_refused(path, _named(unknown), f"not a key of brand.json: use {', '.join(BRAND_KEYS)}")
    settings: dict[str, Any] = {}
    for key in ("name", "mail_from"):
        if key in value:
            try:
                settings[key] = check_name(value[key])
            except ValueError as exc:
                # The value is not repeated: it may hold the control characters that make it bad.
                _field_refused(path, key, str(exc))
    if "colors" in value:
        settings["colors"] = _colors(path, value["colors"])
    return settings


def check_name(value: object) -> str:
    """A name a person reads (the product's, the mail's sender): 1 to 64 characters, no control or
    invisible characters (a mail header), no braces (a text's {placeholder})."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a text of 1 to 64 characters")
    value = value.strip()
    if len(value) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char in "{}" for char in value):
        raise ValueError("must hold no control or invisible characters and no braces")
    return value


def _colors(path: Path, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        _field_refused(path, "colors", "must be an object of colour names and #rrggbb values")
        return ()
    colors = []
    for name, color in value.items():
        if name not in COLORS:
            _field_refused(path, f"colors.{_named(name)}", f"not a colour of the pages: use {', '.join(COLORS)}")
        elif not isinstance(color, str) or not HEX_COLOR.fullmatch(color):
            # A colour is no secret: its value, cut short, shows what was typed.
            _field_refused(path, f"colors.{name}", f"{color!r:.40} is not a colour like #0b7a5a")
        else:
            colors.append((name, color.lower()))
    return tuple(colors)


def read_logo(path: Path) -> Logo:
    """logo.png as it is, or logo.svg's safe subset (common/safe_svg.py): what is stored and served."""
    body = path.read_bytes()
    if not body or len(body) > LOGO_MAX_BYTES:
        raise BrandFileError(f"must be an image of 1 byte to {LOGO_MAX_BYTES // 1024} KiB")
    if path.suffix == ".png":
        _check_png(body)
    else:
        body = _safe_svg(path, body)
    return Logo(file_name=path.name, mimetype=LOGOS[path.name], body=body)


def _check_png(body: bytes) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(body)) as image:
            image.verify()
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = None
    if not body.startswith(PNG_SIGNATURE) or kind != "PNG":
        raise BrandFileError("not a PNG image")


def _safe_svg(path: Path, body: bytes) -> bytes:
    """The logo cut down to what draws: no script, event attribute, link out or external reference; one
    WARNING names what was left out, so the operator knows why their logo may look otherwise."""
    try:
        kept = safe_svg(body)
    except UnsafeSvg as exc:
        raise BrandFileError(str(exc)) from None
    if kept.left_out:
        named = ", ".join(kept.left_out[:LEFT_OUT_NAMED]) + (", ..." if len(kept.left_out) > LEFT_OUT_NAMED else "")
        log.warning("brand file %s shown without what an SVG logo may not hold: %s", path, named)
    return kept.body


def read_texts(path: Path, *, language: str) -> dict[str, str]:
    """texts/<language>.json: {catalogue key: text}, each with the catalogue text's own placeholders. A
    bad text is left out alone (one ERROR naming its key): the catalogue's text shows in its place."""
    texts = {}
    for key, text in _json_object(path).items():
        why = _text_fault(key, text, language)
        if why:
            _field_refused(path, _named(key), why)
        else:
            texts[key] = text
    return texts


def _text_fault(key: str, text: object, language: str) -> str | None:
    if not i18n.has(key):
        return f"not a key of the catalogue (common/locales/{language}.json)"
    if not isinstance(text, str) or not text.strip():
        return "must be a text"
    if not _well_formed(text) or i18n.placeholders(text) != i18n.placeholders(i18n.CATALOGUES[language][key]):
        wanted = ", ".join(f"{{{name}}}" for name in i18n.placeholders(i18n.CATALOGUES[language][key])) or "none"
        return f"must use the catalogue text's placeholders ({wanted}) and no other braces"
    return None


def _well_formed(text: str) -> bool:
    """Braces only as {name} placeholders: what both the server's and the page's renderers read alike."""
    return not re.search(r"[{}]", re.sub(r"\{\w+\}", "", text))
