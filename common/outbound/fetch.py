"""One HTTP request to a URL an app gave (its jwks_uri, a request_uri, its back-channel logout or push URL),
bounded in every way the server at the other end could stretch it (SPEC §14): one deadline from the name's
resolution to the answer's last byte, a size, no redirect followed, no compression asked for, and only the
addresses common.outbound.addresses allows, the very one checked being the one connected to (no second
resolution: a name's DNS cannot answer a public address to the check and a private one to the connection).
The original host is the request's Host and TLS's server name and certificate check.

Why not `requests`: its timeouts bound each socket operation, not the whole, so a server that trickles a
header byte every second holds the fetch for as long as it likes. Here every read and write is given what
is left of the one deadline (common.outbound.deadline_socket): a trickle ends at the deadline."""
from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from functools import lru_cache
from urllib.parse import SplitResult, unquote, urlsplit

import certifi

from common.outbound.addresses import Resolver, Unreachable, checked_addresses, system_resolver
from common.outbound.deadline_socket import DeadlineSocket

DEFAULT_PORTS = {"https": 443, "http": 80}
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_:")


class FetchFailed(Exception):
    """The fetch gave no answer to use; `reason` says why, for the log (never for the app: SPEC §14)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message  # case-blind .get()
    body: bytes

    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Target:
    """Where a URL leads, parsed once: compared and connected to by these parts, never by the string."""

    scheme: str
    host: str       # ASCII (IDNA), lower case, no brackets
    port: int
    path: str       # path and query, as written
    authorization: str | None  # userinfo given as HTTP Basic (an operator's push URL may carry it)

    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def target_of(url: str) -> Target:
    """`url`'s parts; FetchFailed if it is no absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchFailed("the URL's host or port does not parse") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise FetchFailed("not an absolute http(s) URL with a host")
    host = _ascii_host(parts.hostname)
    return Target(scheme=parts.scheme, host=host, port=port or DEFAULT_PORTS[parts.scheme],
                  path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                  authorization=_basic(parts))


def _ascii_host(hostname: str) -> str:
    """The host as it is resolved and sent: IDNA for a name in other letters; nothing but letters, digits,
    dots, hyphens, underscores (and an IPv6 literal's colons), so that a percent-encoded or odd spelling is
    refused rather than guessed at."""
    try:
        host = hostname.encode("idna").decode("ascii").lower() if not hostname.isascii() else hostname.lower()
    except UnicodeError:
        raise FetchFailed("the URL's host is not a valid name") from None
    if not host or not set(host) <= HOST_CHARACTERS:
        raise FetchFailed("the URL's host is not a valid name")
    return host


def _basic(parts: SplitResult) -> str | None:
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def fetch(url: str, *, deadline_seconds: float, max_bytes: int, private_allowed: bool, method: str = "GET",
          body: bytes | None = None, headers: Mapping[str, str] | None = None,
          resolve: Resolver = system_resolver) -> Answer:
    """The answer to one request to `url`, read whole (at most `max_bytes` of body) within `deadline_seconds`
    from now; FetchFailed for a refused address, a name that does not resolve, a connection that fails, a
    deadline passed, a body too large or a malformed answer. Redirects are answers like any other."""
    deadline = time.monotonic() + deadline_seconds
    target = target_of(url)
    try:
        addresses = checked_addresses(target.host, target.port, private_allowed=private_allowed, resolve=resolve,
                                      within=deadline - time.monotonic())
    except Unreachable as unreachable:
        raise FetchFailed(unreachable.reason) from None
    sock = _connected(target, addresses, deadline)
    try:
        return _exchange(sock, target, deadline, max_bytes=max_bytes, method=method, body=body, headers=headers or {})
    except FetchFailed:
        raise
    except TimeoutError:
        raise FetchFailed(f"no whole answer within {deadline_seconds:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise FetchFailed(f"the answer broke off or is not HTTP ({type(error).__name__})") from None
    finally:
        sock.release()


def _connected(target: Target, addresses: list[str], deadline: float) -> DeadlineSocket:
    """A connection to the first of the checked addresses that takes it, TLS for https."""
    failure = "no address"
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        raw = socket.socket(family, socket.SOCK_STREAM)
        sock = DeadlineSocket(raw, deadline)
        try:
            sock.connect(address, target.port)
            if target.scheme == "https":
                sock.start_tls(_tls_context(), server_hostname=target.host)
            return sock
        except TimeoutError:
            sock.release()
            raise FetchFailed(f"no connection to {target.host} within the deadline") from None
        except ssl.SSLError as error:
            sock.release()
            raise FetchFailed(f"TLS with {target.host} failed ({error.reason or type(error).__name__})") from None
        except OSError as error:
            sock.release()
            failure = f"connecting to {target.host} failed ({type(error).__name__})"
    raise FetchFailed(failure)


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Certificates checked against the CA bundle `requests` checked them against before this module: the
    process's REQUESTS_CA_BUNDLE if set (an operator's app behind a private CA), else certifi's."""
    return ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where())


def _exchange(sock: DeadlineSocket, target: Target, deadline: float, *, max_bytes: int, method: str,
              body: bytes | None, headers: Mapping[str, str]) -> Answer:
    connection = http.client.HTTPConnection(target.host, target.port)
    connection.sock = sock  # sendall, makefile and close are all it uses
    connection.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
    sent = {"Host": target.host_header(), "Accept-Encoding": "identity", "Connection": "close",
            "User-Agent": "citylogin", **headers}
    if target.authorization:
        sent["Authorization"] = target.authorization
    if body is not None:
        sent["Content-Length"] = str(len(body))
    for name, value in sent.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    declared = response.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"answered more than {max_bytes} bytes")
    content = response.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise FetchFailed(f"answered more than {max_bytes} bytes")
    return Answer(status=response.status, headers=response.headers, body=content)
