"""The FAPI 2.0 profile's rules of a client assertion (oidc.core.fapi2), property-based and without a server:
its `aud` is the issuer as one string and nothing an attacker writes around it (arrays holding it, an
endpoint's URL, another case, a trailing slash or dot, whitespace, percent-encoding, look-alike letters,
numbers, nulls); its `iat` and `nbf` at most 60 s ahead, whatever JSON carries them (booleans, strings,
NaN, infinities); its algorithm PS256, ES256 or EdDSA."""
from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oidc.core.fapi2 import ASSERTION_ALGORITHMS, MAX_AHEAD, assertion_problem, issuer_audience, within_ahead

ISSUER = "https://login.example"
NOW = 1_800_000_000
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD = {"iss": "app_x", "sub": "app_x", "aud": ISSUER, "jti": "j", "iat": NOW, "nbf": NOW, "exp": NOW + 60}


@st.composite
def written_issuers(draw: st.DrawFn) -> object:
    """What an attacker puts in `aud` around the issuer (the issuer itself now and then)."""
    edits = st.sampled_from([
        ISSUER, ISSUER + "/", ISSUER + ".", ISSUER.upper(), "HTTPS://login.example", ISSUER + "/oidc/par",
        ISSUER + "/oidc/token", ISSUER + "/oidc/revoke", " " + ISSUER, ISSUER + " ", ISSUER + "\x00",
        "https://login%2Eexample", "https://lоgin.example", "https://login.example:443", "http://login.example",
        "https://login.example@evil.example", "https://evil.example/https://login.example", ""])
    shape = draw(st.sampled_from(("string", "array", "nested", "other")))
    if shape == "string":
        return draw(edits)
    if shape == "array":
        return draw(st.lists(edits, min_size=0, max_size=3))
    if shape == "nested":
        return [draw(st.lists(edits, max_size=2))]
    return draw(st.one_of(st.none(), st.integers(), st.booleans(), st.dictionaries(st.text(max_size=3), edits)))


@EXAMPLES
@given(written_issuers())
@example([ISSUER])
@example([ISSUER, ISSUER + "/oidc/token"])
@example(ISSUER + "/oidc/par")
def test_only_the_issuer_itself_is_an_assertions_audience(aud):
    accepted = issuer_audience(aud, issuer=ISSUER)
    assert accepted is (type(aud) is str and aud == ISSUER), aud
    problem = assertion_problem({"alg": "ES256"}, {**GOOD, "aud": aud}, issuer=ISSUER, now=NOW)
    assert (problem is None) is accepted


times = st.one_of(st.integers(min_value=NOW - 10**6, max_value=NOW + 10**6), st.floats(allow_nan=True),
                  st.booleans(), st.none(), st.text(max_size=12), st.just(float("inf")),
                  st.integers(min_value=NOW + MAX_AHEAD - 3, max_value=NOW + MAX_AHEAD + 3))


@EXAMPLES
@given(times, st.sampled_from(("iat", "nbf")))
@example(NOW + 8, "iat")
@example(NOW + 8, "nbf")
@example(NOW + 62, "nbf")
@example(True, "iat")
@example("1800000000", "iat")
def test_iat_and_nbf_are_times_at_most_60_seconds_ahead(value, name):
    numeric = type(value) in (int, float) and math.isfinite(value)
    expected = numeric and value <= NOW + MAX_AHEAD
    assert within_ahead(value, now=NOW) is expected, value
    problem = assertion_problem({"alg": "EdDSA"}, {**GOOD, name: value}, issuer=ISSUER, now=NOW)
    assert (problem is None) is expected and (problem is None or name in problem), (value, problem)


@EXAMPLES
@given(st.one_of(st.sampled_from(("RS256", "RS512", "ES384", "HS256", "none", "NONE", "es256", "PS256", "ES256",
                                  "EdDSA", "Ed25519", "ML-DSA-87", "")), st.none(), st.integers()))
def test_an_assertion_is_signed_with_ps256_es256_or_eddsa(alg):
    problem = assertion_problem({"alg": alg}, GOOD, issuer=ISSUER, now=NOW)
    assert (problem is None) is (alg in ASSERTION_ALGORITHMS and isinstance(alg, str)), alg
