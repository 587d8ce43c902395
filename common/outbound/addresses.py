"""Where an outbound fetch may connect (SPEC §14: what citylogin fetches or posts to for an app that registered
itself goes to public addresses only). The check is made on the addresses the host resolves to, at connect
time, so every spelling of a host (2130706433, 0177.0.0.1, 127.1, ::ffff:7f00:1, a name whose DNS answers
10.0.0.5) is judged by where it really leads; the fetch then connects to the very address checked.

An IPv6 address that carries an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64's 64:ff9b::/96, 6to4, Teredo)
is judged by the IPv4 address it leads to."""
from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (as strings); tests give their own (a hosts file they control)
Resolver = Callable[[str, int], list[str]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not reachable on the Internet, though Python's is_global says otherwise for some.
NOT_PUBLIC = tuple(ipaddress.ip_network(net) for net in (
    "192.0.0.0/24", "192.88.99.0/24", "100.64.0.0/10", "198.18.0.0/15", "64:ff9b:1::/48", "2001:db8::/32"))


class Unreachable(Exception):
    """The host may not be fetched from, or could not be resolved; `reason` says which (for the log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses as this machine's resolver gives them (numeric spellings included)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def address_problem(address: str) -> str | None:
    """Why `address` (an IP address as a string, an IPv6 zone allowed) is not a public one, or None."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    ip = _carried_ipv4(ip) or ip
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback \
            or ip.is_link_local or ip.is_private or any(ip in net for net in NOT_PUBLIC if net.version == ip.version):
        return f"{address} is not a public address"
    return None


def literal_address(host: str) -> str | None:
    """The IP address `host` spells, in any spelling the system resolver takes for one (2130706433, 0177.0.0.1,
    0x7f.1, 127.1, ::ffff:7f00:1), or None for a name."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None


def _carried_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to, if it carries one."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64 or int(ip) >> 32 == 0:  # NAT64's well-known prefix; IPv4-compatible (::a.b.c.d) and ::
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def checked_addresses(host: str, port: int, *, private_allowed: bool, resolve: Resolver,
                      within: float) -> list[str]:
    """The addresses to connect to for `host`: all it resolves to (within `within` seconds); Unreachable if it
    resolves to none, or to any that is not public unless `private_allowed` (a name that answers a private
    address among public ones is refused whole: its owner made it so)."""
    addresses = _resolved(host, port, resolve, within)
    if not addresses:
        raise Unreachable(f"{host} resolves to no address")
    if not private_allowed:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise Unreachable(problem if address == host else f"{host} resolves to {problem}")
    return addresses


def _resolved(host: str, port: int, resolve: Resolver, within: float) -> list[str]:
    """`resolve(host, port)` within `within` seconds: a resolver that hangs holds its own thread, not the
    caller's (getaddrinfo has no timeout of its own)."""
    answer: dict[str, list[str]] = {}
    done = threading.Event()

    def run() -> None:
        try:
            answer["addresses"] = resolve(host, port)
        except (OSError, UnicodeError, ValueError):
            pass
        finally:
            done.set()
    threading.Thread(target=run, name="citylogin-resolve", daemon=True).start()
    if not done.wait(max(within, 0.0)):
        raise Unreachable(f"{host} was not resolved in time")
    if "addresses" not in answer:
        raise Unreachable(f"{host} does not resolve")
    return answer["addresses"]
