"""Redirect URI matching (SPEC §14, RFC 9700 §4.1, RFC 8252 §7.3), property-based: URIs generated around
each registered one, as an attacker would write them (userinfo, ports, case, percent-encoding, "\\",
path and query edits, IPv6 literals, trailing dots, "@", "#", whitespace), match only when they are
the registered URI itself — the same scheme, host, port, path and query as parsed (scheme and host
case aside, RFC 3986 §6.2.2.1) — or a loopback one on another port. No server: the matcher alone,
the one the authorization endpoint, PAR and registration share."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from relying_parties.models import AppRecord
from operators.models import AppChange
from oidc.core.models import Client
from oidc.core.redirects import redirect_uri_matches, redirect_uri_problem

REGISTERED = ("https://app.example/callback", "https://app.example:8443/cb?tenant=a&x=%2F",
              "http://127.0.0.1/callback", "http://127.0.0.1:8080/cb", "http://[::1]/callback",
              "http://[::1]:7000/native/cb?x=1", "http://localhost:3000/cb", "com.example.app:/oauth2redirect")
LOOPBACK = {"http://127.0.0.1/callback", "http://127.0.0.1:8080/cb", "http://[::1]/callback",
            "http://[::1]:7000/native/cb?x=1"}
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

registered = st.sampled_from(REGISTERED)


def _parts(uri: str) -> tuple[str, str, str, str, str]:
    """(scheme, authority, path, query, the rest) as written: the generator's own cutting."""
    scheme, rest = uri.split(":", 1)
    if not rest.startswith("//"):
        path, _, query = rest.partition("?")
        return scheme, "", path, query, ""
    authority, slash, tail = rest[2:].partition("/")
    path, _, query = (slash + tail).partition("?")
    return scheme, authority, path, query, ""


def _join(scheme: str, authority: str, path: str, query: str) -> str:
    return f"{scheme}:{'//' + authority if authority or scheme.startswith('http') else ''}{path}" + \
        (f"?{query}" if query else "")


def _host_and_port(authority: str) -> tuple[str, str]:
    if authority.startswith("["):
        host, _, port = authority.partition("]")
        return host + "]", port.removeprefix(":")
    host, _, port = authority.partition(":")
    return host, port


# --- the variants that are the registered URI ---------------------------------------------------

@st.composite
def same_uri(draw: st.DrawFn) -> tuple[str, str]:
    """(registered, a way of writing it that is the same URI): scheme and host in any case, and for a
    loopback redirect any port (RFC 8252 §7.3)."""
    uri = draw(registered)
    scheme, authority, path, query, _ = _parts(uri)
    host, port = _host_and_port(authority)
    flip = st.lists(st.booleans(), min_size=64, max_size=64)
    cased = lambda text, flips: "".join(c.upper() if f else c for c, f in zip(text, flips, strict=False))  # noqa: E731
    scheme, host = cased(scheme, draw(flip)), cased(host, draw(flip))
    if uri in LOOPBACK:
        port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(str)))
    return uri, _join(scheme, host + (f":{port}" if port else ""), path, query)


@given(same_uri())
@EXAMPLES
@example(("https://app.example/callback", "HTTPS://APP.EXAMPLE/callback"))
@example(("http://[::1]/callback", "HTTP://[::1]:51000/callback"))
@example(("http://127.0.0.1/callback", "http://127.0.0.1:80/callback"))
# an empty query is no query (urlsplit's parts, and the code's redirect is the same place); the token
# endpoint still asks for the redirect_uri as it was sent (RFC 6749 §4.1.3)
@example(("https://app.example/callback", "https://app.example/callback?"))
def test_the_registered_uri_and_a_loopback_ones_other_ports_match(pair):
    uri, variant = pair
    assert redirect_uri_matches([uri], variant), variant
    assert redirect_uri_matches(REGISTERED, variant), variant


# --- the variants that go somewhere else --------------------------------------------------------

ODD = st.sampled_from([" ", "\t", "\n", "\r", "\x00", "\x7f", "\x85", "\\", '"', "<", ">", "^", "`", "{", "|",
                       "}", "é", "ı", "\u200b", "\ufeff", "％", "#", "%", "%zz", "%2", "\u2028"])
USERINFO = st.sampled_from(["127.0.0.1:8080", "user", "user:pass", "", ":", "app.example", "[::1]", "evil.example"])
OTHER_HOSTS = st.sampled_from([
    "evil.example", "app.example.", "app.example.evil.example", "evil.app.example", "127.0.0.1.", "127.1",
    "2130706433", "0x7f.0.0.1", "127.0.0.2", "0.0.0.0", "localhost", "localhost.", "[::1]", "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]", "[::1%25eth0]", "127.0.0.1", "app.exampIe", "xn--app-example", "[::2]", "app%2eexample"])


def _changed_host(uri: str, host: str) -> str:
    scheme, authority, path, query, _ = _parts(uri)
    _, port = _host_and_port(authority)
    return _join(scheme, host + (f":{port}" if port else ""), path, query)


@st.composite
def other_uri(draw: st.DrawFn) -> tuple[str, str]:
    """(registered, a URI near it that is another one): each a way of reaching another host, port,
    path or query, or of hiding one from a parser."""
    uri = draw(registered)
    scheme, authority, path, query, _ = _parts(uri)
    host, port = _host_and_port(authority)
    loopback = uri in LOOPBACK
    kind = draw(st.sampled_from(["userinfo", "at_host", "odd", "fragment", "host", "port", "percent", "path",
                                 "query", "scheme", "backslash_host"]))
    if kind == "userinfo" and authority:
        return uri, _join(scheme, f"{draw(USERINFO)}@{authority}", path, query)
    if kind == "at_host" and authority:   # what the loopback bug let through: host:port@evil
        port_text = draw(st.integers(1, 65535).map(str))
        return uri, _join(scheme, f"{host}:{port_text}@evil.example", path, query)
    if kind == "odd":
        at = draw(st.integers(0, len(uri)))
        return uri, uri[:at] + draw(ODD) + uri[at:]
    if kind == "fragment":
        return uri, uri + "#" + draw(st.text("abc/=", max_size=5))
    if kind == "host" and authority:
        other = draw(OTHER_HOSTS)
        if other.lower() == host.lower():
            other = "evil.example"
        return uri, _changed_host(uri, other)
    if kind == "port" and authority and not loopback:
        new = draw(st.integers(0, 65535).map(str).filter(lambda p: p != port))
        return uri, _join(scheme, f"{host}:{new}", path, query)
    if kind == "port" and loopback:   # no port the app could listen on: 0, out of range, not a number
        return uri, _join(scheme, f"{host}:{draw(st.sampled_from(['0', '65536', '99999', 'x', '-1', '8080a']))}",
                          path, query)
    if kind == "percent" and path.strip("/"):
        letters = [i for i, c in enumerate(path) if c.isalnum() or c in "/."]
        at = draw(st.sampled_from(letters))
        return uri, _join(scheme, authority, path[:at] + f"%{ord(path[at]):02X}" + path[at + 1:], query)
    if kind == "path":
        edit = draw(st.sampled_from(["/", "x", "/..", "/.", "//", "%2F", ";x", "/../callback", "_"]))
        where = draw(st.sampled_from(["end", "start", "drop", "case"]))
        edited = {"end": path + edit, "start": edit + path if path.startswith("/") else path + edit,
                  "drop": path[:-1], "case": path.swapcase()}[where]
        if edited == path:
            edited = path + "/"
        return uri, _join(scheme, authority, edited, query)
    if kind == "query":
        edited = draw(st.sampled_from([query + "&a=b", "", "x=2", query.upper(), query + "%20", "tenant=b",
                                       "tenant=a&x=/"]))
        if edited == query:
            edited = query + "&z"
        return uri, _join(scheme, authority, path, edited)
    if kind == "scheme":
        other = draw(st.sampled_from(["https", "http", "ftp", "javascript", "com.example.other", "ws", "httpx"]))
        if other == scheme:
            other = "wss"
        return uri, _join(other, authority, path, query)
    # a backslash before the host: browsers read "\" as "/" in http(s) URLs, urlsplit does not
    return uri, uri.replace("//", "/\\", 1) if authority else uri + "\\"


@given(other_uri())
@EXAMPLES
@example(("http://127.0.0.1/callback", "http://127.0.0.1:8080@evil.example/callback"))  # the theft of issue 42
@example(("http://[::1]/callback", "http://[::1]:80@evil.example/callback"))
@example(("https://app.example/callback", "https://app.example/callback\\@evil.example"))
@example(("https://app.example/callback", "https://app.example\\@evil.example/callback"))
# Each way the attack listed, run every time (the drawn ones vary): a default port written out
# (exact matching: RFC 9700 §4.1.3), a trailing dot, localhost and 127.0.0.1 for each other, localhost on
# another port (RFC 8252 §8.3: no loopback exception for a name), query order, percent-encoded letters
# and dots, another spelling of ::1, an empty fragment.
@example(("https://app.example/callback", "https://app.example:443/callback"))
@example(("https://app.example/callback", "https://app.example./callback"))
@example(("http://127.0.0.1/callback", "http://127.0.0.1./callback"))
@example(("http://127.0.0.1/callback", "http://localhost/callback"))
@example(("http://localhost:3000/cb", "http://127.0.0.1:3000/cb"))
@example(("http://localhost:3000/cb", "http://localhost:3001/cb"))
@example(("https://app.example:8443/cb?tenant=a&x=%2F", "https://app.example:8443/cb?x=%2F&tenant=a"))
@example(("https://app.example/callback", "https://app.example/%63allback"))
@example(("https://app.example/callback", "https://app.example/%2e/callback"))
@example(("https://app.example/callback", "https://app%2eexample/callback"))
@example(("http://[::1]/callback", "http://[0:0:0:0:0:0:0:1]/callback"))
@example(("https://app.example/callback", "https://app.example/callback#"))
def test_nothing_else_near_a_registered_uri_matches(pair):
    uri, variant = pair
    assert variant != uri
    assert not redirect_uri_matches([uri], variant), variant
    assert not redirect_uri_matches(REGISTERED, variant) or _same_place(variant), variant


def _same_place(variant: str) -> bool:
    """Whether `variant` is, as a browser would go there, one of the other registered URIs (an edit
    of one may land on another: the loopback ones share their paths)."""
    return any(redirect_uri_matches([variant], other) for other in REGISTERED if redirect_uri_problem(variant) is None)


@given(st.sampled_from(REGISTERED), st.text(max_size=80))
@EXAMPLES
def test_any_text_that_matches_reaches_the_registered_place(uri, text):
    """Whatever matches has no userinfo, fragment or odd character, and urlsplit reads it as the
    registered URI's scheme, host, path and query (and port, unless loopback)."""
    for candidate in (text, uri + text, uri[: len(uri) // 2] + text + uri[len(uri) // 2:]):
        if not redirect_uri_matches([uri], candidate):
            continue
        got, want = urlsplit(candidate), urlsplit(uri)
        assert got.username is None and got.password is None and not got.fragment and "#" not in candidate
        assert candidate.isascii() and candidate.isprintable() and " " not in candidate and "\\" not in candidate
        assert (got.scheme, got.hostname, got.path, got.query) == (want.scheme, want.hostname, want.path, want.query)
        if uri not in LOOPBACK:
            assert got.port == want.port


# --- registration parses the same way -----------------------------------------------------------

@pytest.mark.parametrize("uri", ["http://[::1]/path", "http://[::1]:8080/cb", "http://127.0.0.1/cb",
                                 "http://localhost:3000/cb", "https://app.example/cb?x=1",
                                 "com.example.app:/oauth2redirect", "https://app.example/%E2%9C%93"])
def test_rfc_8252_redirects_register(uri):
    assert redirect_uri_problem(uri) is None
    assert redirect_uri_matches([uri], uri)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8080@evil.example/cb", "https://user@app.example/cb",
                                 "https://app.example/cb#", "https://app.example/cb#x", "https://app.example/c b",
                                 "https://app.example/cb\\", "https://app.example/cb\t", "https://app.example/é",
                                 "http://evil.example/cb", "https:///cb", "javascript:alert(1)", "myapp:/cb",
                                 "http://[::1/cb", "http://127.0.0.1:99999/cb", "/cb", "", "https://app.example/%zz"])
def test_registration_refuses_what_never_matches(uri):
    assert redirect_uri_problem(uri) is not None


@given(st.sampled_from(REGISTERED), st.sampled_from(["\\", " ", "#", "\x00", "\x7f", "é", "\n", '"']), st.data())
@EXAMPLES
def test_registration_refuses_a_registered_uri_with_an_odd_character(uri, odd, data):
    at = data.draw(st.integers(len(uri.split(":", 1)[0]) + 1, len(uri)))
    edited = uri[:at] + odd + uri[at:]
    assert redirect_uri_problem(edited) is not None, edited
    assert not redirect_uri_matches([uri], edited)


def test_the_client_checks_its_redirect_uris_with_the_shared_matcher():
    app = AppRecord(client_id="app_x", name="Native", secret_digest="", created_at="2025-01-01T00:00:00+00:00",
                    created_epoch=0, redirect_uris=["http://127.0.0.1/callback"], public_client=True)
    client = Client(app=app)
    assert client.check_redirect_uri("http://127.0.0.1:51000/callback")
    assert not client.check_redirect_uri("http://127.0.0.1:8080@evil.example/callback")


def test_the_admin_api_registers_an_ipv6_loopback_without_a_port_and_refuses_userinfo():
    assert AppChange.model_validate({"redirect_uris": ["http://[::1]/path"]}).redirect_uris == ["http://[::1]/path"]
    with pytest.raises(ValidationError):
        AppChange.model_validate({"redirect_uris": ["http://127.0.0.1:8080@evil.example/path"]})
