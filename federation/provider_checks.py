"""The rules of a provider's fields (SPEC §16), each one small check that raises 400 invalid_field naming the
field. URLs are judged by their parsed parts (urlsplit), never by pieces cut out of the text."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from common.errors import FieldKind, InvalidField

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+", re.ASCII)
_CLIENT_ID = re.compile(r"[\x21-\x7E]{1,255}", re.ASCII)
_APPLE_ID = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)  # Apple's team and key ids: 10 letters and digits
_CONTROL = re.compile(r"[\x00-\x1F\x7F]")
LONGEST_ISSUER = 255
LONGEST_SECRET = 4096
LONGEST_DISPLAY_NAME = 40


def name(value: str) -> str:
    if not NAME.fullmatch(value):
        raise InvalidField("name", "name: 1 to 32 lower-case letters, digits and hyphens, starting with a letter "
                                   "or digit.", kind=FieldKind.INVALID_FORMAT)
    return value


def issuer(value: str, *, allow_http: bool) -> str:
    """An https URL with a host and no credentials, query or fragment (OIDC Discovery §2); http only where the
    deployment fetches from private addresses (a test's upstream on 127.0.0.1)."""
    problem = _issuer_problem(value, allow_http=allow_http)
    if problem:
        raise InvalidField("issuer", f"issuer: {problem}.", kind=FieldKind.INVALID_FORMAT)
    return value


def _issuer_problem(value: str, *, allow_http: bool) -> str | None:
    if len(value) > LONGEST_ISSUER or _CONTROL.search(value) or " " in value:
        return f"a URL of at most {LONGEST_ISSUER} characters, without spaces"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:
        return "not a URL"
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        return "an https URL"
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return "a URL with a host and without credentials"
    if parts.query or parts.fragment or "?" in value or "#" in value:
        return "a URL without a query or fragment"
    return None


def client_id(value: str) -> str:
    if not _CLIENT_ID.fullmatch(value):
        raise InvalidField("client_id", "client_id: 1 to 255 printable characters without spaces.",
                           kind=FieldKind.INVALID_FORMAT)
    return value


def secret(value: str, *, field: str = "client_secret", lines: bool = False) -> str:
    """The secret without the line break a file ends with; refused empty, too long or holding control
    characters (a PEM's line breaks where `lines`) — never quoted back."""
    value = value.strip()
    if not value:
        raise InvalidField(field, f"{field}: empty.", kind=FieldKind.EMPTY)
    if len(value) > LONGEST_SECRET or _CONTROL.search(value.replace("\r\n", "\n").replace("\n", "") if lines
                                                      else value):
        raise InvalidField(field, f"{field}: at most {LONGEST_SECRET} printable characters.",
                           kind=FieldKind.INVALID_FORMAT)
    return value


def scope(value: str) -> str:
    tokens = value.split(" ")
    if len(value) > 500 or not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens) or "openid" not in tokens:
        raise InvalidField("scope", "scope: space-separated scope tokens, openid among them.",
                           kind=FieldKind.INVALID_FORMAT)
    return value


def display_name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= LONGEST_DISPLAY_NAME or _CONTROL.search(value):
        raise InvalidField("display_name", f"display_name: 1 to {LONGEST_DISPLAY_NAME} characters.",
                           kind=FieldKind.TOO_LONG if value else FieldKind.EMPTY)
    return value


def signup(value: str) -> str:
    if value not in ("allow", "deny"):
        raise InvalidField("signup", "signup: allow or deny.")
    return value


def apple_id(value: str, *, field: str) -> str:
    if not _APPLE_ID.fullmatch(value):
        raise InvalidField(field, f"{field}: the 10 letters and digits Apple shows.", kind=FieldKind.INVALID_FORMAT)
    return value


def apple_private_key(value: str) -> str:
    """The operator's Apple key (the AuthKey_<key id>.p8 file): a PEM P-256 private key, as Apple makes them."""
    text = secret(value, field="apple_private_key", lines=True)
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidField("apple_private_key", "apple_private_key: the .p8 file Apple gives (a P-256 private key "
                                                "in PEM).", kind=FieldKind.INVALID_FORMAT)
    return text
