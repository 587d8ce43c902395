"""The request_uris an app registers (RFC 9101 §5.2, OpenID Connect Core §6.2, Dynamic Registration §2):
the rule of each one `apps add`, the admin API and POST /oidc/register share (request_uri_problem), how
many, and how a requested request_uri is matched to a registered one (registered_match), so that
/oidc/authorize fetches a request object from a registered address alone and nobody makes citylogin fetch
an address the app's operator did not register (the fetch: oidc.authorization.request_uri_fetch).

A requested URI matches a registered one as parsed URLs (scheme and host case-blind, the port a number,
path and query as written), the fragments aside: OIDC Core §6.2 and Dynamic Registration §2 make a fragment
a cache key (the hash of the contents, changed when they change), and citylogin caches nothing, fetching
the object at each use. It is not checked as a hash either: the OpenID Foundation's suite registers a
request_uri whose fragment hashes something else (CreateRandomRequestUriWithFragment) and expects the
request to succeed."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from common.url_parts import authority_is_parsed
from oidc.core.redirects import LOCALHOST, LOOPBACK_HOSTS, URI_CHARACTERS

MAX_LENGTH = 512  # RFC 9101 §5.2: "MUST NOT exceed 512 ASCII characters"
MAX_REGISTERED = 10  # request_uris an app may register
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class RequestUri:
    """A request_uri as it is compared: its parsed parts; `fragment` apart (a cache key, never compared)."""

    scheme: str
    host: str
    port: int
    path: str
    query: str
    fragment: str


def parse_request_uri(uri: object) -> RequestUri | str:
    """`uri`'s parts, or why it is no request_uri: an absolute https URI (http on a loopback host, for
    a developer's machine) of RFC 3986 characters within 512, with a host and no userinfo."""
    if not isinstance(uri, str) or not 0 < len(uri) <= MAX_LENGTH:
        return f"an absolute https URI of at most {MAX_LENGTH} characters"
    address, _, fragment = uri.partition("#")
    if not URI_CHARACTERS.fullmatch(address) or (fragment and not URI_CHARACTERS.fullmatch(fragment)):
        return "a URI of RFC 3986 characters (percent-encode the others)"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "a URI whose host and port parse"
    problem = _parts_problem(parts)
    if problem:
        return problem
    return RequestUri(scheme=parts.scheme, host=parts.hostname or "",
                      port=port if port is not None else DEFAULT_PORTS[parts.scheme],
                      path=parts.path, query=parts.query, fragment=parts.fragment)


def _parts_problem(parts: SplitResult) -> str | None:
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.port == 0:
        return "an absolute https URI with a host (and a port, if any, of 1 to 65535)"
    if parts.username is not None or parts.password is not None or not authority_is_parsed(parts):
        return "a URI whose authority is its host and port alone (no userinfo)"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS | {LOCALHOST}:
        return "https (http is for 127.0.0.1, [::1] and localhost only)"
    return None


def request_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered as a request_uri, or None."""
    parsed = parse_request_uri(uri)
    return parsed if isinstance(parsed, str) else None


def registered_match(registered: Iterable[str], uri: object) -> RequestUri | None:
    """The registered request_uri that `uri` names (the same scheme, host, port, path and query; the
    fragments aside), None if none does or `uri` is no request_uri."""
    requested = parse_request_uri(uri)
    if isinstance(requested, str):
        return None
    for candidate in registered:
        known = parse_request_uri(candidate)
        if isinstance(known, RequestUri) and _without_fragment(known) == _without_fragment(requested):
            return known
    return None


def _without_fragment(uri: RequestUri) -> tuple[str, str, int, str, str]:
    return uri.scheme, uri.host.lower(), uri.port, uri.path, uri.query
