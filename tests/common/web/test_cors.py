"""Web origins (RFC 6454) as the CORS answers of the OpenID Provider compare them (common.web.cors), property-
based: an origin written in any case, with its default port or a path, is the same origin; userinfo,
another scheme, port or host, and anything that is no host make it another origin or none; a client's
`--web-origin` is an origin alone."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.web.cors import origin_problem, web_origin

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ORIGINS = {  # (scheme, host as a browser serializes it, port or None) -> the serialized origin
    ("https", "spa.example", None): "https://spa.example",
    ("https", "spa.example", 8443): "https://spa.example:8443",
    ("http", "127.0.0.1", 5173): "http://127.0.0.1:5173",
    ("http", "[::1]", 3000): "http://[::1]:3000",
    ("http", "localhost", None): "http://localhost",
}
DEFAULT_PORTS = {"http": 80, "https": 443}

origins = st.sampled_from(sorted(ORIGINS.items(), key=str))


def _case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.upper() if flip else ch for ch, flip in zip(text, flips, strict=True))


@st.composite
def same_origin(draw: st.DrawFn) -> tuple[str, str]:
    """(an origin, a URL of it): scheme and host in any case, the default port written or not, any path,
    query or fragment."""
    (scheme, host, port), origin = draw(origins)
    shown_port = port if port is not None else draw(st.sampled_from([None, DEFAULT_PORTS[scheme]]))
    tail = draw(st.sampled_from(["", "/", "/cb", "/a/b?x=1", "/#f", "?q"]))
    url = f"{_case(draw, scheme)}://{_case(draw, host)}" + (f":{shown_port}" if shown_port else "") + tail
    return origin, url


@EXAMPLES
@given(same_origin())
def test_a_url_of_an_origin_in_any_case_and_with_its_default_port_is_that_origin(case):
    origin, url = case
    assert web_origin(url) == origin


@st.composite
def other_or_no_origin(draw: st.DrawFn) -> tuple[str, str]:
    """(an origin, a URL around it that is some other origin or none)."""
    (scheme, host, port), origin = draw(origins)
    authority = host + (f":{port}" if port else "")
    edit = draw(st.sampled_from(["userinfo", "scheme", "port", "host", "char", "space", "nonascii"]))
    bare, suffix = host.strip("[]"), (f":{port}" if port else "")
    if edit == "userinfo":
        userinfo = draw(st.sampled_from(["user@", "u:p@", origin.split("//")[1] + "@"]))
        url = f"{scheme}://{userinfo}evil.example"
    elif edit == "scheme":
        url = f"{draw(st.sampled_from(['ftp', 'ws', 'javascript', 'file', 'httpx']))}://{authority}"
    elif edit == "port":
        other = draw(st.integers(1, 65535).filter(lambda p: p not in (port, DEFAULT_PORTS[scheme])))
        url = f"{scheme}://{host}:{other}"
    elif edit == "host":
        url = f"{scheme}://{draw(st.sampled_from(['evil.example', bare + '.evil.example', 'x' + bare]))}"
    else:
        odd = {"char": draw(st.sampled_from(["\\", "%2e", '"', "<", "_", "*"])) + "x", "space": " ",
               "nonascii": "\u00e9"}[edit]
        url = f"{scheme}://{host}{odd}{suffix}"
    return origin, url


@EXAMPLES
@given(other_or_no_origin())
@example(("https://spa.example", "https://spa.example@evil.example"))
@example(("https://spa.example", "https://spa.example:443@evil.example"))
@example(("http://[::1]:3000", "http://[::1:3000"))
def test_userinfo_another_scheme_port_or_host_and_odd_characters_are_never_the_origin(case):
    origin, url = case
    assert web_origin(url) != origin


@EXAMPLES
@given(same_origin())
def test_a_web_origin_registers_only_as_an_origin_alone(case):
    origin, url = case
    if url.split("://", 1)[1].strip("/").count("/") == 0 and "?" not in url and "#" not in url:
        assert origin_problem(url) is None
    else:
        assert origin_problem(url) is not None


def test_null_and_opaque_origins_are_no_web_origin():
    for value in ("null", "", "https://", "https://:443", "data:text/html,x", "https://a.example:99999"):
        assert web_origin(value) is None and origin_problem(value) is not None
