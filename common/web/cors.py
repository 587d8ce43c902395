"""Cross-origin reads of the OpenID Provider (SPEC §14 Clients; the Fetch standard's CORS protocol).

- Discovery and the JWKS are public documents: every origin may read them (`*`, no credentials).
- The token, userinfo and revocation endpoints answer the origins their caller names (a function: the
  apps registry's public clients), preflight included.

CITYLOGIN_CORS_ORIGINS (flask-cors in common.web.app_factory) stays for citylogin's own API; it skips an
answer that already carries Access-Control-Allow-Origin, so the two never both answer."""
from __future__ import annotations

import ipaddress
import re
from typing import Callable, Collection
from urllib.parse import urlsplit

from flask import Blueprint, Response, request

from common.url_parts import authority_is_parsed

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
CLIENT_REQUEST_HEADERS = "Authorization, DPoP, Content-Type"   # RFC 6750, RFC 9449, a form post
CLIENT_EXPOSED_HEADERS = "DPoP-Nonce, WWW-Authenticate"        # RFC 9449 §8-9, RFC 6750 §3
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may reuse a preflight; the answer itself is checked every time
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def web_origin(url: str) -> str | None:
    """The serialized origin (RFC 6454 §6.2) of an absolute http(s) URL: `scheme://host[:port]`, scheme
    and host lowercased, the scheme's default port left out. None for anything else: another scheme,
    no host, userinfo, a bad port, a host that is neither a DNS name nor an IP literal."""
    if not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in _DEFAULT_PORTS or not _valid_host(host):
        return None
    shown = f"[{host}]" if ":" in host else host
    if not authority_is_parsed(parts):
        return None
    return f"{scheme}://{shown}" + (f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else "")


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal (urlsplit took it out of its brackets)
        try:
            ipaddress.IPv6Address(host)
            return True
        except ValueError:
            return False
    return bool(_HOST_NAME.match(host)) and len(host) <= 253


def origin_problem(value: str) -> str | None:
    """Why `value` is not a web origin a client may register (`--web-origin`), or None: an http(s)
    origin alone, `scheme://host[:port]`, with no path, query, fragment or userinfo."""
    origin = web_origin(value)
    if origin is None or len(value) > 300:
        return "an http(s) origin: scheme://host[:port]"
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in value or "#" in value:
        return "an origin has no path, query or fragment: scheme://host[:port]"
    return None


def _preflight() -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def open_to_every_origin(blueprint: Blueprint, *, endpoints: Collection[str]) -> None:
    """Every origin may read `endpoints` of `blueprint` (public, credential-free documents)."""
    @blueprint.after_request
    def _open(response: Response) -> Response:
        if request.endpoint in endpoints:
            response.headers[ALLOW_ORIGIN] = "*"
            if _preflight():
                response.headers["Access-Control-Allow-Methods"] = "GET, HEAD"
                response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response


def open_to_origins(blueprint: Blueprint, *, endpoints: Collection[str],
                    origins: Callable[[], Collection[str]]) -> None:
    """Pages of `origins()` (serialized origins, read at each request) may call `endpoints` of `blueprint`
    with an access token, a DPoP proof and a form body, and read the DPoP nonce and the challenge."""
    @blueprint.after_request
    def _clients(response: Response) -> Response:
        sent = request.headers.get("Origin")
        if request.endpoint not in endpoints or not sent:
            return response
        response.vary.add("Origin")
        # A browser sends the serialized origin itself: another spelling of one (its case, a default port,
        # a trailing slash) comes from no page of it, and the answer echoes what was sent.
        if web_origin(sent) != sent or sent not in origins():
            return response
        response.headers[ALLOW_ORIGIN] = sent
        if _preflight():
            response.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(response.allow)) or "POST"
            response.headers["Access-Control-Allow-Headers"] = CLIENT_REQUEST_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        else:
            response.headers["Access-Control-Expose-Headers"] = CLIENT_EXPOSED_HEADERS
        return response
