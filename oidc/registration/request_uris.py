"""Request objects by reference (RFC 9101 §5.2, OpenID Connect Core §6.2): an app registers the
`request_uris` it will name, and /oidc/authorize fetches the object from one of those alone, so that
nobody makes citylogin fetch an address the app's operator did not register. A requested URI matches a
registered one as parsed URLs (scheme and host case-blind, the port a number, path and query as written),
the fragments aside: OIDC Core §6.2 and Dynamic Registration §2 make a fragment a cache key (the hash of
the contents, changed when they change), and citylogin caches nothing, fetching the object at each use.
It is not checked as a hash either: the OpenID Foundation's suite registers a request_uri whose fragment
hashes something else (CreateRandomRequestUriWithFragment) and expects the request to succeed.

The fetch is common.outbound's: one deadline from connect to last byte, a size, no redirect followed, the
media type of a request object; for an app that registered itself, public addresses only unless the
deployment allows private ones; one fetch per URL in flight, a failure remembered a moment. Whatever goes
wrong is `invalid_request_uri`, never a 500 and never a hang; why is in the log, not in the answer."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from authlib.oauth2.rfc9101.errors import InvalidRequestUriError

from common.log_bursts import BurstLogs
from common.outbound.fetch import Answer, FetchFailed, fetch
from common.outbound.single_flight import SingleFlight
from common.url_parts import authority_is_parsed
from oidc.core.redirects import LOCALHOST, LOOPBACK_HOSTS, URI_CHARACTERS

MAX_LENGTH = 512  # RFC 9101 §5.2: "MUST NOT exceed 512 ASCII characters"
MAX_REGISTERED = 10
MAX_OBJECT_BYTES = 16384  # as a request object by value (oidc.authorization.request_objects.MAX_LENGTH)
REMEMBER_FAILURE = 2.0  # seconds a failed fetch of a URL is answered from memory
DEADLINE = 4.0  # seconds for the whole fetch, connect to last byte (a server that sends a byte at a time stops here)
MEDIA_TYPES = ("application/oauth-authz-req+jwt", "application/jwt")  # RFC 9101 §5.2.3, §10.4.1
DEFAULT_PORTS = {"https": 443, "http": 80}

log = logging.getLogger("oidc.request_uris")  # the name its log lines have always had


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


class RequestObjectFetches:
    """This process's fetches of request objects: one per URL in flight (a few requests wait for it, the others
    fail at once), a failure remembered for REMEMBER_FAILURE seconds, each failure's reason logged once a burst."""

    def __init__(self) -> None:
        self.flights: SingleFlight[Answer] = SingleFlight(remember_failures=REMEMBER_FAILURE)
        self.log = BurstLogs(log)

    def object_at(self, uri: RequestUri, *, client_id: str, private_allowed: bool) -> str:
        """The request object at a registered request_uri; InvalidRequestUriError for anything but a quick
        200 of a request object (why goes to the log, not to the app)."""
        url = location(uri)
        try:
            answer = self.flights.run((url, private_allowed), lambda: fetch(
                url, deadline_seconds=DEADLINE, max_bytes=MAX_OBJECT_BYTES, private_allowed=private_allowed,
                headers={"Accept": ", ".join(MEDIA_TYPES)}), wait_seconds=DEADLINE)
            body = _object_body(answer)
        except FetchFailed as failed:
            self.log.log(client_id, logging.WARNING, "app %s: its request_uri could not be fetched (%s)", client_id,
                         failed.reason)
            raise InvalidRequestUriError("The request_uri could not be fetched as a request object (a 200 of "
                                         f"{MEDIA_TYPES[0]}, at most {MAX_OBJECT_BYTES} bytes, within "
                                         f"{DEADLINE:g} s, no redirect).") from None
        try:
            return body.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequestUriError("The object at request_uri is not a JWT.") from None


def fetched_object(uri: RequestUri, *, private_allowed: bool) -> str:
    """The request object at `uri` by a fetch of its own (RequestObjectFetches.object_at)."""
    return RequestObjectFetches().object_at(uri, client_id="-", private_allowed=private_allowed)


def _object_body(answer: Answer) -> bytes:
    """The body of a 200 of a request object's media type, uncompressed; FetchFailed otherwise."""
    if answer.status != 200:
        raise FetchFailed(f"answered {answer.status}")
    if answer.media_type() not in MEDIA_TYPES:
        raise FetchFailed(f"answered {answer.media_type() or 'no media type'}")
    if answer.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise FetchFailed("answered a compressed body")
    return answer.body
