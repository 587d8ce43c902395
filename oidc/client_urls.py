"""The URLs an app registers besides its redirect URIs (SPEC §14; RFC 7591 §2): the pages shown to people
(logo_uri, client_uri, policy_uri, tos_uri), where citylogin posts to it (backchannel_logout_uri) and what
citylogin fetches from it (jwks_uri, request_uris). Each is checked once, at registration, on its parsed
parts: `apps add`, the admin API and POST /oidc/register share these rules."""
from __future__ import annotations

from urllib.parse import urlsplit

from oidc.redirects import LOOPBACK_HOSTS, MAX_LENGTH, URI_CHARACTERS
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
