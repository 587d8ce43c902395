"""The URLs an app registers besides its redirect URIs (SPEC §14; RFC 7591 §2): the pages shown to people
(logo_uri, client_uri, policy_uri, tos_uri), where citylogin posts to it (backchannel_logout_uri) and what
citylogin fetches from it (jwks_uri, request_uris). Each is checked once, at registration, on its parsed
parts: `apps add`, the admin API and POST /oidc/register share these rules. An app that registers itself is held
to more (self_registered_url_problem): what citylogin fetches or posts to for it is on no private address it
names outright, and what citylogin posts to is https; the check that counts is the fetch's, at connect time
(common.outbound), which also sees the names that resolve to private addresses."""
from __future__ import annotations

from urllib.parse import urlsplit

from common.outbound.addresses import address_problem, literal_address
from oidc.core.redirects import LOOPBACK_HOSTS, MAX_LENGTH, URI_CHARACTERS
from common.web.cors import web_origin

LOCAL_HOSTS = LOOPBACK_HOSTS | {"localhost"}
ENDPOINT_URL = "an absolute http(s) URL without a fragment"
WEB_URL = f"an absolute http(s) URL of at most {MAX_LENGTH} characters of RFC 3986, without userinfo or a fragment"


def endpoint_url_problem(value: object) -> str | None:
    """Why `value` is not a URL citylogin may post to for the app (backchannel_logout_uri, push_url), or None:
    the rule `apps add` has always held these to, an absolute http(s) URL without a fragment."""
    if not isinstance(value, str) or len(value) > MAX_LENGTH:
        return ENDPOINT_URL
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        return ENDPOINT_URL
    return None


def web_url_problem(value: object, *, fragment_allowed: bool = False) -> str | None:
    """Why `value` is not an absolute http(s) URL an app may register, or None: RFC 3986 characters alone (no
    spaces, quotes or non-ASCII letters: percent-encoded), a host that is a DNS name or an IP literal, no
    userinfo (`https://bank.example@evil.example/` is evil.example), no fragment unless `fragment_allowed`."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_LENGTH:
        return WEB_URL
    before, hash_, fragment = value.partition("#")
    if hash_ and not fragment_allowed:
        return WEB_URL
    if not URI_CHARACTERS.fullmatch(before) or (fragment and not URI_CHARACTERS.fullmatch(fragment)):
        return WEB_URL
    if web_origin(before) is None:
        return WEB_URL
    return None


def fetched_url_problem(value: object, *, fragment_allowed: bool = False) -> str | None:
    """Why `value` is not a URL citylogin may fetch from the app (jwks_uri, request_uris), or None: as
    web_url_problem, and https unless its host is this machine's loopback (an app in development)."""
    problem = web_url_problem(value, fragment_allowed=fragment_allowed)
    if problem is not None:
        return problem
    parts = urlsplit(str(value))
    if parts.scheme.lower() != "https" and (parts.hostname or "") not in LOCAL_HOSTS:
        return "https (http only on 127.0.0.1, [::1] or localhost)"
    return None


def self_registered_url_problem(value: str, *, posted: bool, private_addresses: bool) -> str | None:
    """Why an app that registers itself may not give `value` (already a URL by the rules above) for citylogin to
    fetch from or, `posted`, to post to, or None: a host that is a private address or this machine (unless the
    deployment allows private addresses), and for a URL posted to, http (allowed then on a loopback host only,
    for development and tests)."""
    parts = urlsplit(value)
    host = (parts.hostname or "").rstrip(".")
    if not private_addresses and (host in LOCAL_HOSTS or _private_literal(host)):
        return "a public address (this deployment does not fetch from or post to private ones)"
    if posted and parts.scheme.lower() != "https" and not (private_addresses and host in LOCAL_HOSTS):
        return "https"
    return None


def _private_literal(host: str) -> bool:
    address = literal_address(host)
    return address is not None and address_problem(address) is not None
