"""Who sent the request, as far as the network tells: client IP, user agent and a client
certificate verified by a trusted TLS proxy (SPEC §4, §6)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote

from flask import request

from common.runtime.context import ctx


@dataclass(frozen=True)
class Caller:
    ip: str | None
    user_agent: str | None
    verified_cert: str | None = None  # PEM from CITYLOGIN_TRUSTED_CLIENT_CERT_HEADER


def current_caller() -> Caller:
    # remote_addr already honours CITYLOGIN_TRUSTED_PROXIES (ProxyFix in the app factory).
    header = ctx().settings.trusted_client_cert_header
    verified = unquote(request.headers[header]) if header and request.headers.get(header) else None
    agent = (request.headers.get("User-Agent") or "")[:256] or None
    return Caller(ip=_client_ip(), user_agent=agent, verified_cert=verified)


def _client_ip() -> str | None:
    # Behind a proxy that passes X-Forwarded-For through unchecked, remote_addr is whatever the
    # client wrote; it becomes part of rate-limit keys, which DynamoDB caps at 2048 bytes.
    try:
        ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return None
    return request.remote_addr

