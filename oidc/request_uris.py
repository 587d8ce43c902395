"""Request objects by reference (RFC 9101 §5.2, OpenID Connect Core §6.2): an app registers the
`request_uris` it will name, and /oidc/authorize fetches the object from one of those alone, so that
nobody makes citylogin fetch an address the app's operator did not register. A requested URI matches a
registered one as parsed URLs (scheme and host case-blind, the port a number, path and query as written),
the fragments aside: OIDC Core §6.2 and Dynamic Registration §2 make a fragment a cache key (the hash of
the contents, changed when they change), and citylogin caches nothing, fetching the object at each use.
It is not checked as a hash either: the OpenID Foundation's suite registers a request_uri whose fragment
hashes something else (CreateRandomRequestUriWithFragment) and expects the request to succeed.

The fetch is bounded in every way a server at the other end could stretch it: a short timeout for
each step and a deadline for the whole, a size, no redirect followed, the media type of a request object.
Whatever goes wrong is `invalid_request_uri`, never a 500 and never a hang."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import requests
from authlib.oauth2.rfc9101.errors import InvalidRequestUriError

from common.url_parts import authority_is_parsed
from oidc.redirects import LOCALHOST, LOOPBACK_HOSTS, URI_CHARACTERS

MAX_LENGTH = 512  # RFC 9101 §5.2: "MUST NOT exceed 512 ASCII characters"
MAX_REGISTERED = 10
MAX_OBJECT_BYTES = 16384  # as a request object by value (oidc.request_objects.MAX_LENGTH)
CONNECT_TIMEOUT, READ_TIMEOUT = 2.0, 2.0  # seconds, each
DEADLINE = 4.0  # seconds for the whole fetch (a server that sends a byte at a time stops here)
MEDIA_TYPES = ("application/oauth-authz-req+jwt", "application/jwt")  # RFC 9101 §5.2.3, §10.4.1
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


def location(uri: RequestUri) -> str:
    """Where the object is fetched: the registered URI, without its fragment (never sent)."""
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{uri.scheme}://{host}:{uri.port}{uri.path}" + (f"?{uri.query}" if uri.query else "")


def fetched_object(uri: RequestUri) -> str:
    """The request object at a registered request_uri; InvalidRequestUriError for anything but a quick
    200 of a request object."""
    body = _fetched(location(uri))
    if body is None:
        raise InvalidRequestUriError("The request_uri could not be fetched as a request object (a 200 of "
                                     f"{MEDIA_TYPES[0]}, at most {MAX_OBJECT_BYTES} bytes, within "
                                     f"{DEADLINE:g} s, no redirect).")
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequestUriError("The object at request_uri is not a JWT.") from None


def _fetched(url: str) -> bytes | None:
    """The body of a 200 of a request object's media type within the bounds, else None."""
    deadline = time.monotonic() + DEADLINE
    try:
        with requests.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=False, stream=True,
                          headers={"Accept": ", ".join(MEDIA_TYPES), "Accept-Encoding": "identity"}) as response:
            if response.status_code != 200 or _media_type(response) not in MEDIA_TYPES or \
                    response.headers.get("Content-Encoding", "identity").lower() != "identity":
                return None
            if int(response.headers.get("Content-Length") or 0) > MAX_OBJECT_BYTES:
                return None
            return _body_within(response, deadline)
    except (requests.RequestException, ValueError):  # ValueError: a Content-Length that is no number
        return None


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _body_within(response: requests.Response, deadline: float) -> bytes | None:
    """The body, read as it comes (each read returns what one receive gave) until the end, the size
    bound or the deadline."""
    body = bytearray()
    while True:
        chunk = response.raw.read1(4096, decode_content=False)
        if not chunk:
            return bytes(body)
        body.extend(chunk)
        if len(body) > MAX_OBJECT_BYTES or time.monotonic() > deadline:
            return None
