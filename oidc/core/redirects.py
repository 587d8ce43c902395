"""Redirect URIs (SPEC §14, RFC 9700 §4.1): registered ones are checked once, at registration;
requested ones match a registered one exactly, except that a native app's loopback redirect matches
on any port (RFC 8252 §7.3). Both sides are parsed the same way (urlsplit), and compared on their
parsed parts: scheme, host, port, path and query. The authorization endpoint, PAR and registration
share this module."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import SplitResult, urlsplit

from common.url_parts import authority_is_parsed

# urlsplit's `.hostname`: the brackets of an IPv6 literal are not part of it ("[::1]" -> "::1").
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
LOCALHOST = "localhost"  # registrable, matched exactly: RFC 8252 §8.3 advises against it
MAX_LENGTH = 2048
# RFC 3986 §2: unreserved, reserved (without "#": a redirect URI has no fragment, RFC 6749 §3.1.2) and
# well-formed percent-encodings. Everything else is out: whitespace, control characters, NUL, DEL, "\",
# quotes, non-ASCII letters; the characters where a browser's reading of a URL and urlsplit's part.
URI_CHARACTERS = re.compile(r"(?:[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
# Schemes that would run or read something in the browser instead of reaching an app.
REFUSED_SCHEMES = {"javascript", "data", "vbscript", "file", "blob", "about"}
SPEC_CHARACTERS = (f"an absolute URI of at most {MAX_LENGTH} characters of RFC 3986 (no spaces, control "
                   "characters, backslashes, quotes or non-ASCII letters: percent-encode them)")


@dataclass(frozen=True)
class RedirectUri:
    """A redirect URI as it is compared: its parsed parts (scheme and host lower case, RFC 3986
    §3.1, §3.2.2; the port a number; path and query as written, never percent-decoded)."""

    scheme: str
    host: str | None
    port: int | None
    path: str
    query: str
    authority: bool = True  # "scheme://..." (an authority, maybe empty) as against "scheme:/path"

    def is_loopback(self) -> bool:
        """A native app's loopback IP redirect (RFC 8252 §7.3): http on 127.0.0.1 or [::1]."""
        return self.scheme == "http" and self.host in LOOPBACK_HOSTS

    def matches(self, requested: RedirectUri) -> bool:
        """Whether `requested` is this registered redirect: every part equal, except the port of a
        loopback one, which the app picks when it runs (RFC 8252 §7.3)."""
        if self.is_loopback():
            return replace(self, port=None) == replace(requested, port=None) and requested.port != 0
        return self == requested


def parse_redirect_uri(uri: object) -> RedirectUri | str:
    """`uri`'s parts, or why it can never be a redirect URI: not a string of RFC 3986 characters
    within the length, no absolute URI, a port that is none, userinfo or a fragment."""
    if not isinstance(uri, str) or not 0 < len(uri) <= MAX_LENGTH:
        return SPEC_CHARACTERS
    if "#" in uri:  # RFC 6749 §3.1.2, even an empty one
        return "an absolute URI without a fragment"
    if not URI_CHARACTERS.fullmatch(uri):
        return SPEC_CHARACTERS
    try:
        parts = urlsplit(uri)
        port = parts.port  # ValueError: not a number, or out of range
    except ValueError:
        return "a URI whose host and port parse (a bracketed IPv6 literal, a port of 0 to 65535)"
    # urlsplit gives "app:///cb" and "app:/cb" the same parts: RFC 3986 §3 tells them apart by the "//".
    authority = uri[len(parts.scheme) + 1:].startswith("//")
    return _named_parts_problem(parts) or RedirectUri(scheme=parts.scheme, host=parts.hostname, port=port,
                                                      path=parts.path, query=parts.query, authority=authority)


def _named_parts_problem(parts: SplitResult) -> str | None:
    if not parts.scheme:
        return "an absolute URI (with a scheme)"
    if parts.username is not None or parts.password is not None:
        # RFC 9700 §4.1.1 / RFC 3986 §7.5: "http://127.0.0.1:8080@evil.example/" is evil.example
        return "a URI without userinfo (user:password@)"
    if not authority_is_parsed(parts):
        return "a URI whose authority is its host and port alone (e.g. nothing after an IPv6 literal's ])"
    if parts.fragment:
        return "an absolute URI without a fragment"
    return None


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered as a redirect URI, or None: parsed as requested ones are, and
    https unless it is a loopback address or a native app's private-use scheme (RFC 8252 §7.1)."""
    parsed = parse_redirect_uri(uri)
    if isinstance(parsed, str):
        return parsed
    if parsed.scheme in REFUSED_SCHEMES:
        return f"the scheme {parsed.scheme}: is not a redirect"
    if parsed.scheme == "https":
        return None if parsed.host else "an https URI needs a host"
    if parsed.scheme == "http":
        if parsed.is_loopback() or parsed.host == LOCALHOST:
            return None
        return "http is for loopback redirects only (127.0.0.1, [::1], localhost): use https"
    if "." not in parsed.scheme:  # RFC 8252 §7.1: a reverse domain name the app's publisher controls
        return "a native app's scheme is a reverse domain name, e.g. com.example.app:/callback"
    return None


def redirect_uri_matches(registered: Iterable[str], uri: object) -> bool:
    """Whether `uri` is one of `registered`, compared as parsed URIs: the same scheme, host, port,
    path and query, or a loopback IP redirect with another port (RFC 8252 §7.3; `localhost` is
    matched exactly, as §8.3 advises against it). A URI with userinfo, a fragment or a character
    outside RFC 3986 never matches."""
    requested = parse_redirect_uri(uri)
    if isinstance(requested, str):
        return False
    for candidate in registered:
        known = parse_redirect_uri(candidate)
        if isinstance(known, RedirectUri) and known.matches(requested):
            return True
    return False
