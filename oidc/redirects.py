"""Redirect URIs (SPEC §14, RFC 9700 §4.1): registered ones are checked once, at registration;
requested ones match a registered one exactly, except that a native app's loopback redirect matches
on any port (RFC 8252 §7.3)."""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
MAX_LENGTH = 2048
# Schemes that would run or read something in the browser instead of reaching an app.
REFUSED_SCHEMES = {"javascript", "data", "vbscript", "file", "blob", "about"}


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered as a redirect URI, or None: absolute, no fragment, and https
    unless it is a loopback address or a native app's private-use scheme (RFC 8252 §7.1)."""
    if not uri or len(uri) > MAX_LENGTH or not uri.isprintable() or " " in uri:
        return "an absolute URI of at most 2048 printable characters"
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or parts.fragment or "#" in uri:
        return "an absolute URI without a fragment"
    if scheme in REFUSED_SCHEMES:
        return f"the scheme {scheme}: is not a redirect"
    if scheme == "https":
        return None if parts.hostname else "an https URI needs a host"
    if scheme == "http":
        if parts.netloc.rsplit("@", 1)[-1].rsplit(":", 1)[0] in (*LOOPBACK_HOSTS, "localhost"):
            return None
        return "http is for loopback redirects only (127.0.0.1, [::1], localhost): use https"
    if "." not in scheme:  # RFC 8252 §7.1: a reverse domain name the app's publisher controls
        return "a native app's scheme is a reverse domain name, e.g. com.example.app:/callback"
    return None


def _without_port(uri: str) -> tuple[str, str, str, str] | None:
    parts = urlsplit(uri)
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS:
        return None
    return parts.scheme, host, parts.path, parts.query


def redirect_uri_matches(registered: Iterable[str], uri: str) -> bool:
    """Whether `uri` is one of `registered`: character for character, or a loopback IP redirect with
    another port (RFC 8252 §7.3; `localhost` is matched exactly, as §8.3 advises against it)."""
    if not uri or len(uri) > MAX_LENGTH:
        return False
    registered = list(registered)
    if uri in registered:
        return True
    loose = _without_port(uri)
    if loose is None or not _port_ok(uri):
        return False
    return any(_without_port(candidate) == loose for candidate in registered)


def _port_ok(uri: str) -> bool:
    try:
        port = urlsplit(uri).port
    except ValueError:
        return False
    return port is None or 0 < port < 65536
