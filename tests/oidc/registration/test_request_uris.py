"""Request objects by reference (oidc.registration.request_uris, oidc.authorization.request_uri_fetch; RFC 9101
§5.2, OpenID Connect Core §6.2): what an app may register, how a requested request_uri is matched to a
registered one (parsed URLs, the fragment aside), and the fetch: every fault of the server at the other end is
invalid_request_uri, within the fetch's own bounds (the servers are in this process's threads, each answering
one way)."""
from __future__ import annotations

import pytest
from authlib.oauth2.rfc9101.errors import InvalidRequestUriError
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc.authorization.request_uri_fetch import MAX_OBJECT_BYTES, fetched_object, location
from oidc.registration.request_uris import (MAX_LENGTH, RequestUri, parse_request_uri, registered_match,
                                            request_uri_problem)
from tests.support.ports import free_port
from tests.support.request_object_host import request_object_host

EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True)
REGISTERED = "https://app.example/requests/r1?v=2"


@pytest.mark.parametrize("uri", ["https://app.example/r", "https://APP.example:8443/r?x=1#hash",
                                 "http://127.0.0.1:9000/r", "http://[::1]/r", "http://localhost/r"])
def test_what_may_be_registered(uri):
    assert request_uri_problem(uri) is None


@pytest.mark.parametrize("uri", ["http://app.example/r", "ftp://app.example/r", "https:///r",
                                 "https://u:p@app.example/r", "https://app.example:0/r", "https://app.example:99999/r",
                                 "https://app.example/a b", "https://app.example/" + "a" * MAX_LENGTH, "app.example/r",
                                 "", "urn:x:y", "https://[::1]x/r", "javascript:alert(1)", "https://app.example/\\evil"])
def test_what_may_not(uri):
    assert request_uri_problem(uri)


@pytest.mark.parametrize("requested, matches", [
    (REGISTERED, True),
    ("https://APP.EXAMPLE/requests/r1?v=2", True),                  # the host is case-blind
    ("https://app.example:443/requests/r1?v=2", True),              # the default port, written out
    (REGISTERED + "#sha256-of-the-object", True),                   # the fragment aside (a cache key)
    ("HTTPS://app.example/requests/r1?v=2", True),
    ("https://app.example/requests/r1?v=3", False),
    ("https://app.example/requests/r1", False),
    ("https://app.example/requests/r1/?v=2", False),
    ("https://app.example/requests/R1?v=2", False),
    ("https://app.example/requests/%72%31?v=2", False),            # never percent-decoded
    ("https://app.example:8443/requests/r1?v=2", False),
    ("http://app.example/requests/r1?v=2", False),
    ("https://evil.example/requests/r1?v=2", False),
    ("https://app.example@evil.example/requests/r1?v=2", False),
    ("https://app.example.evil.example/requests/r1?v=2", False),
    ("urn:ietf:params:oauth:request_uri:abc", False),
])
def test_a_requested_uri_is_matched_as_parsed(requested, matches):
    assert (registered_match([REGISTERED], requested) is not None) is matches


def test_the_fetch_goes_to_the_registered_uri_without_its_fragment():
    registered = parse_request_uri("https://app.example/r?x=1#abc")
    assert isinstance(registered, RequestUri)
    assert location(registered) == "https://app.example:443/r?x=1"


# --- what an attacker sends around a registered URI ---------------------------------------------

PARTS = st.fixed_dictionaries({
    "scheme": st.sampled_from(["https", "http", "HTTPS", "ftp", ""]),
    "host": st.sampled_from(["app.example", "APP.example", "app.example.", "evil.example", "app.example@evil.example",
                             "127.0.0.1", "[::1]", ""]),
    "port": st.sampled_from(["", ":443", ":8443", ":0", ":x", ":"]),
    "path": st.sampled_from(["/requests/r1", "/requests/r1/", "/requests/R1", "/requests/%72%31", "", "/requests//r1"]),
    "query": st.sampled_from(["?v=2", "?v=2&v=2", "?V=2", "", "?"]),
    "fragment": st.sampled_from(["", "#", "#abc", "#?v=2"])})


@given(parts=PARTS)
@EXAMPLES
def test_only_the_registered_uri_itself_matches(parts):
    uri = "{scheme}://{host}{port}{path}{query}{fragment}".format(**parts)
    same = parts["scheme"].lower() == "https" and parts["host"].lower() == "app.example" and \
        parts["port"] in ("", ":443") and parts["path"] == "/requests/r1" and parts["query"] == "?v=2"
    assert (registered_match([REGISTERED], uri) is not None) is same, uri


@given(uri=st.text(max_size=80) | st.from_regex(r"https://[a-z.@:\[\]0-9%]{0,30}/[ -~]{0,30}", fullmatch=True))
@EXAMPLES
def test_any_text_is_a_request_uri_or_why_not(uri):
    parsed = parse_request_uri(uri)
    assert isinstance(parsed, (RequestUri, str))
    if registered_match([REGISTERED], uri) is not None:
        assert isinstance(parsed, RequestUri) and parsed.host.lower() == "app.example"


# --- the fetch ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def host():
    with request_object_host() as (url, published):
        yield url, published


def _fetch(url: str) -> str:
    parsed = parse_request_uri(url)
    assert isinstance(parsed, RequestUri), parsed
    return fetched_object(parsed, private_allowed=True)


@pytest.mark.parametrize("mode", ["ok", "jwt"])
def test_a_request_object_is_fetched(host, mode):
    url, published = host
    published.answers[f"/{mode}"] = (mode, b"eyJhbGciOiJub25lIn0.e30.")
    assert _fetch(f"{url}/{mode}#fragment") == "eyJhbGciOiJub25lIn0.e30."


@pytest.mark.parametrize("mode, body", [
    ("html", b"<html>not an object</html>"), ("404", b""), ("gzip", b"eyJhbGciOiJub25lIn0.e30."),
    ("ok", "é".encode()), ("ok", b"e" * (MAX_OBJECT_BYTES + 1)), ("huge", b""),
    # the two that run into the fetch's deadline wait for it: the slow tier
    pytest.param("drip", b"", marks=pytest.mark.slow), pytest.param("hang", b"", marks=pytest.mark.slow)])
def test_each_fault_is_invalid_request_uri(host, mode, body):
    """A server that answers the wrong type, a 404, a compressed or non-ASCII body, an object over the
    size, an endless body, one that drips a byte at a time past the deadline, or no answer at all."""
    url, published = host
    path = f"/fault-{mode}-{len(body)}"
    published.answers[path] = (mode, body)
    with pytest.raises(InvalidRequestUriError) as error:
        _fetch(url + path)
    assert error.value.error == "invalid_request_uri" and error.value.description
    assert path in published.fetched                                   # it did ask


def test_a_redirect_is_not_followed(host):
    url, published = host
    published.answers["/moved"] = ("redirect", f"{url}/moved-to".encode())
    published.answers["/moved-to"] = ("ok", b"eyJhbGciOiJub25lIn0.e30.")
    with pytest.raises(InvalidRequestUriError):
        _fetch(url + "/moved")
    assert "/moved-to" not in published.fetched


def test_a_server_that_refuses_the_connection():
    with pytest.raises(InvalidRequestUriError):
        _fetch(f"http://127.0.0.1:{free_port()}/nobody-listens")
