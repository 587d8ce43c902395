"""The one bounded fetch of an app's URLs (common.outbound; SPEC §14): a trickling server is cut off at the
deadline whatever it trickles (headers included), GETs and POSTs (back-channel logout, push) alike; no
spelling of a private address, and no name that resolves to one, is ever connected to unless allowed; the
address checked is the one connected to; one fetch per URL in flight, a few waiting, the rest failing fast."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.outbound.addresses import address_problem
from common.outbound.fetch import FetchFailed, fetch
from common.outbound.single_flight import Busy, SingleFlight
from tests.support.trickle_server import TrickleServer

DEADLINE = 1.0
# What a loaded machine adds to a deadline before the caller has its answer (thread scheduling, not the peer).
SLACK = 4.0


@pytest.fixture(scope="module")
def trickle():
    with TrickleServer() as server:
        yield server


def _timed(call: Any) -> tuple[float, FetchFailed]:
    started = time.monotonic()
    with pytest.raises(FetchFailed) as failed:
        call()
    return time.monotonic() - started, failed.value


@pytest.mark.slow  # waits out the deadlines
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_server_that_trickles_its_headers_is_cut_off_at_the_deadline(trickle, method):
    """The GET of keys or a request object, the POST of a logout token or a SET: each ends at its deadline,
    though every read brings a byte within 1.5 s (a per-read timeout would wait for the whole 4 KiB head)."""
    body = b"logout_token=x" if method == "POST" else None
    elapsed, failed = _timed(lambda: fetch(trickle.url + "/jwks", method=method, body=body,
                                           deadline_seconds=DEADLINE, max_bytes=65536, private_allowed=True))
    assert "no whole answer" in failed.reason
    assert elapsed < DEADLINE + SLACK


def test_public_addresses_and_those_that_are_not():
    for public in ("8.8.8.8", "2606:4700::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"):
        assert address_problem(public) is None, public
    for private in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                    "224.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.8", "::1", "::", "fc00::1", "fd12::1",
                    "fe80::1%eth0", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::7f00:1",
                    "64:ff9b::a00:1", "2002:7f00:1::", "2001:db8::1", "not an address"):
        assert address_problem(private) is not None, private


# --- spellings an attacker would try -----------------------------------------------------------------------

LOOPBACK_SPELLINGS = ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "127.0.1",
                      "017700000001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]", "[0:0:0:0:0:0:0:1]",
                      "localhost", "LOCALHOST", "LocalHost", "１２７.０.０.１", "127.0.0.1.", "%31%32%37.0.0.1",
                      "[::127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]"]
PRIVATE_HOSTS = ["10.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "0", "192.168.1.1", "172.16.0.1",
                 "[fc00::1]", "[fe80::1]", "[::]", "[::ffff:a9fe:a9fe]", "0xa9.0xfe.0xa9.0xfe", "2852039166"]
# A name whose DNS answers what its owner wants: resolved here through a resolver the test controls.
NAMES = {"rebind.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"],
         "mixed.example": ["93.184.216.34", "10.0.0.5"], "v6.example": ["::ffff:127.0.0.1"],
         "xn--bcher-kva.example": ["192.168.0.10"], "rebind.example.": ["127.0.0.1"]}


def _resolver(host: str, port: int) -> list[str]:
    if host in NAMES:
        return NAMES[host]
    from common.outbound.addresses import system_resolver
    return system_resolver(host, port)


hosts = st.sampled_from(LOOPBACK_SPELLINGS + PRIVATE_HOSTS + [*NAMES, "bücher.example", "REBIND.EXAMPLE"])
userinfo = st.sampled_from(["", "good.example@", "user:pass@", "https%3A%2F%2Fgood.example@"])
schemes = st.sampled_from(["http", "https", "HTTP", "HtTpS"])
paths = st.sampled_from(["/jwks.json", "/", "/a/../b?x=1", ""])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scheme=schemes, user=userinfo, host=hosts, port=st.booleans(), path=paths,
       method=st.sampled_from(["GET", "POST"]))
def test_no_spelling_of_a_private_address_is_ever_connected_to(trickle, scheme, user, host, port, path, method):
    """Every spelling, userinfo in front, a trailing dot, IDNA letters, percent-encoding, upper case, brackets:
    refused before any connection (the trickle server on 127.0.0.1 is never reached), by the address it leads to."""
    before = trickle.connections
    url = f"{scheme}://{user}{host}{f':{trickle.port}' if port else ''}{path}"
    with pytest.raises(FetchFailed) as failed:
        fetch(url, method=method, body=b"" if method == "POST" else None, deadline_seconds=5, max_bytes=1024,
              private_allowed=False, resolve=_resolver)
    reason = failed.value.reason
    assert "not a public address" in reason or "not a valid name" in reason or "does not resolve" in reason, reason
    assert trickle.connections == before


def test_a_name_that_resolves_to_a_private_address_is_refused_and_the_address_checked_is_the_one_connected_to():
    """DNS rebinding: the fetch resolves once and connects to the address it checked, with the name as Host."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        port = server.server_address[1]
        answers = iter([["127.0.0.1"], ["8.8.8.8"]])  # a second resolution would lead elsewhere
        resolutions: list[str] = []

        def rebinding(host: str, _port: int) -> list[str]:
            resolutions.append(host)
            return next(answers)
        answer = fetch(f"http://app.example:{port}/k", deadline_seconds=5, max_bytes=100, private_allowed=True,
                       resolve=rebinding)
        assert (answer.status, answer.body, seen, resolutions) == (200, b"{}", [f"app.example:{port}"], ["app.example"])
        with pytest.raises(FetchFailed, match="resolves to 127.0.0.1 is not a public address"):
            fetch(f"http://rebind.example:{port}/k", deadline_seconds=5, max_bytes=100, private_allowed=False,
                  resolve=_resolver)
        assert len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_a_resolver_that_hangs_is_bounded_by_the_deadline():
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(30)
        return ["8.8.8.8"]
    try:
        elapsed, failed = _timed(lambda: fetch("https://slow-dns.example/k", deadline_seconds=0.5, max_bytes=10,
                                               private_allowed=False, resolve=hanging))
        assert "not resolved in time" in failed.reason and elapsed < 0.5 + SLACK
    finally:
        release.set()


def test_redirects_are_answers_and_bodies_are_capped():
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()  # no Content-Length: the body runs to the connection's end
            self.wfile.write(b"x" * 5000)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert fetch(url + "/moved", deadline_seconds=5, max_bytes=100, private_allowed=True).status == 302
        with pytest.raises(FetchFailed, match="more than 1000 bytes"):
            fetch(url + "/big", deadline_seconds=5, max_bytes=1000, private_allowed=True)
        assert len(fetch(url + "/big", deadline_seconds=5, max_bytes=5000, private_allowed=True).body) == 5000
    finally:
        server.shutdown()
        server.server_close()


# --- one fetch per URL in flight -----------------------------------------------------------------------------

def test_one_run_per_key_a_few_wait_for_it_the_others_fail_at_once():
    flights: SingleFlight[str] = SingleFlight(max_waiters=2, remember_failures=60)
    started, release, runs = threading.Event(), threading.Event(), []

    def work() -> str:
        runs.append(1)
        started.set()
        release.wait(30)
        return "keys"
    outcomes: list[object] = []
    leader = threading.Thread(target=lambda: outcomes.append(flights.run("u", work, wait_seconds=30)))
    leader.start()
    assert started.wait(10)
    waiters = [threading.Thread(target=lambda: outcomes.append(flights.run("u", work, wait_seconds=30)))
               for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and flights._flights["u"].waiters < 2:
        time.sleep(0.01)
    with pytest.raises(Busy):  # a third waiter is not kept: it fails at once
        flights.run("u", work, wait_seconds=30)
    release.set()
    for thread in (leader, *waiters):
        thread.join(10)
    assert outcomes == ["keys"] * 3 and runs == [1]

    def failing() -> str:
        runs.append(1)
        raise FetchFailed("answered 500")
    with pytest.raises(FetchFailed, match="answered 500"):
        flights.run("v", failing, wait_seconds=1)
    with pytest.raises(FetchFailed, match="a moment ago: answered 500"):  # remembered: not fetched again
        flights.run("v", failing, wait_seconds=1)
    assert len(runs) == 2


def test_https_checks_the_certificate_against_the_original_host(tmp_path, monkeypatch):
    """TLS to the pinned address, with the URL's host as the server name the certificate must name."""
    import ssl

    from common.outbound import fetch as fetch_module
    from tests.support.tls import new_authority, server_certificate, write_cert, write_key

    authority = new_authority("test CA")
    cert, key = server_certificate(authority)  # names 127.0.0.1 and localhost
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(write_cert(tmp_path / "server.pem", cert), write_key(tmp_path / "server.key", key))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        with pytest.raises(FetchFailed, match="TLS with localhost failed"):  # a CA nobody trusts
            fetch(f"https://localhost:{port}/", deadline_seconds=5, max_bytes=10, private_allowed=True)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(write_cert(tmp_path / "ca.pem", authority.cert)))
        fetch_module._tls_context.cache_clear()
        assert fetch(f"https://localhost:{port}/", deadline_seconds=5, max_bytes=10, private_allowed=True).body == b"ok"
        with pytest.raises(FetchFailed, match="TLS with other.example failed"):  # the name the URL gave is checked
            fetch(f"https://other.example:{port}/", deadline_seconds=5, max_bytes=10, private_allowed=True,
                  resolve=lambda host, _port: ["127.0.0.1"])
    finally:
        fetch_module._tls_context.cache_clear()
        server.shutdown()
        server.server_close()
