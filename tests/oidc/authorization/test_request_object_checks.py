"""The rules of a request object, step by step (oidc.authorization.request_object_checks; RFC 9101, OpenID Connect Core
§6): its one spelling, its header, the app's algorithm rule, the signature with the app's keys, the
claims for this app, provider and moment, and its parameters. Hypothesis sends what an attacker would
around a valid object: odd headers, repeated or oversized members, wrong types, padding, JWE, alg none;
every refusal is invalid_request_object, never another exception."""
from __future__ import annotations

import base64
import json
import time

import pytest
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.errors import JoseError

from relying_parties.models import OidcClient
from oidc.core import refusals
from oidc.authorization.request_object_checks import (LEEWAY, MAX_LENGTH, MAX_LIFETIME, RequestObject, check_algorithm,
                                        check_claims, check_signature, object_params, read_object)
from tests.support.request_objects import ALGORITHMS, b64, new_app_keys, signed, standard_claims, unsigned

ISSUER = "https://login.example"
CLIENT = "app_0123456789abcdef0123"
KEYS = new_app_keys()
OTHER_KEYS = new_app_keys("other")
SIGNING = OidcClient(redirect_uris=("https://app.example/cb",), jwks=KEYS.public_jwks())
EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True)


def _refusal(error: pytest.ExceptionInfo) -> str | None:
    assert isinstance(error.value, InvalidRequestObjectError), error.value
    assert error.value.error == "invalid_request_object" and error.value.description
    return refusals.reason_of(error.value)


def _good(alg: str = "RS256", **params) -> str:
    return signed(KEYS.for_alg(alg), standard_claims(CLIENT, ISSUER, scope="openid", **params), alg=alg)


def _all_steps(value: object, client: OidcClient = SIGNING, *, now: int | None = None) -> dict[str, str]:
    """Every step /oidc/authorize takes, in its order (oidc.authorization.request_objects.verified_params)."""
    read = read_object(value)
    check_algorithm(read, client)
    check_signature(read, KEYS.key_set())
    check_claims(read, client_id=CLIENT, issuer=ISSUER, now=now if now is not None else int(time.time()))
    return object_params(read, client_id=CLIENT, response_type=None)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_an_object_signed_with_each_algorithm_by_the_apps_key_passes(alg):
    params = _all_steps(_good(alg, state="inside", max_age=60, claims={"userinfo": {"email": None}}))
    assert params["state"] == "inside" and params["max_age"] == "60" and params["client_id"] == CLIENT
    assert json.loads(params["claims"]) == {"userinfo": {"email": None}}
    assert not {"iss", "aud", "exp", "nbf", "iat", "jti"} & set(params)   # the object's own, not parameters


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_another_key_or_another_kid_does_not_check_out(alg):
    foreign = signed(OTHER_KEYS.for_alg(alg), standard_claims(CLIENT, ISSUER), alg=alg,
                     header={"kid": KEYS.for_alg(alg).kid})
    with pytest.raises(InvalidRequestObjectError) as error:
        _all_steps(foreign)
    assert _refusal(error) == "request_object_signature"
    with pytest.raises(InvalidRequestObjectError) as error:
        _all_steps(signed(KEYS.for_alg(alg), standard_claims(CLIENT, ISSUER), alg=alg, header={"kid": "nobody"}))
    assert _refusal(error) == "request_object_key"


def test_without_a_kid_each_key_of_the_type_is_tried():
    assert _all_steps(signed(KEYS.ec, standard_claims(CLIENT, ISSUER), alg="ES256", header={"kid": None}))


def test_an_hmac_forged_with_the_public_key_is_refused():
    """"alg confusion": HS256 keyed with the app's public key bytes."""
    forged = _hmac_forged(standard_claims(CLIENT, ISSUER))
    with pytest.raises(InvalidRequestObjectError) as error:
        _all_steps(forged)
    assert _refusal(error) == "request_object_algorithm"


def _hmac_forged(claims: dict) -> str:
    import hashlib
    import hmac
    secret = json.dumps(KEYS.rsa.as_dict(private=False)).encode()
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': KEYS.rsa.kid}).encode())}." \
                    f"{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("client, accepted", [
    (SIGNING, False),
    (OidcClient(allow_unsigned_request_objects=True), True),
    (OidcClient(request_object_signing_alg="none"), True),
    (OidcClient(request_object_signing_alg="RS256", allow_unsigned_request_objects=True, jwks=KEYS.public_jwks()),
     False),
    (OidcClient(allow_unsigned_request_objects=True, require_signed_request_object=True), False),
])
def test_alg_none_only_from_an_app_that_allows_it(client, accepted):
    value = unsigned({"client_id": CLIENT, "scope": "openid", "state": "s"})
    if accepted:
        assert _all_steps(value, client)["state"] == "s"   # no iss, aud, exp or jti needed: it proves nothing
        return
    with pytest.raises(InvalidRequestObjectError) as error:
        _all_steps(value, client)
    assert _refusal(error) == "request_object_unsigned"


def test_an_unsigned_object_s_claims_are_checked_when_it_has_them():
    allowing = OidcClient(allow_unsigned_request_objects=True)
    now = int(time.time())
    for claims in ({"aud": "https://elsewhere.example"}, {"iss": "app_other"}, {"exp": now - 3600},
                   {"nbf": now + 3600, "exp": now + 3700}, {"jti": 7}):
        with pytest.raises(InvalidRequestObjectError):
            _all_steps(unsigned({"client_id": CLIENT, **claims}), allowing)


def test_the_apps_one_algorithm_is_the_only_one_taken():
    ps256 = OidcClient(request_object_signing_alg="PS256", jwks=KEYS.public_jwks())
    assert _all_steps(_good("PS256"), ps256)
    for alg in ("RS256", "ES256", "EdDSA"):
        with pytest.raises(InvalidRequestObjectError) as error:
            _all_steps(_good(alg), ps256)
        assert _refusal(error) == "request_object_algorithm"


@pytest.mark.parametrize("alg", ["HS256", "RS384", "ES512", "Ed25519", "RSA-OAEP", "", "NONE", "None"])
def test_an_algorithm_outside_the_list_is_refused(alg):
    header = b64(json.dumps({"alg": alg, "kid": KEYS.rsa.kid}).encode())
    with pytest.raises(InvalidRequestObjectError) as error:
        _all_steps(f"{header}.{b64(b'{}')}.{b64(b'signature')}")
    assert _refusal(error) == "request_object_algorithm"


@pytest.mark.parametrize("change, reason", [
    ({"aud": "https://elsewhere.example"}, "request_object_claims"),
    ({"aud": ["https://elsewhere.example", f"{ISSUER}/oidc/authorize"]}, "request_object_claims"),
    ({"aud": None}, "request_object_claims"),
    ({"iss": "app_other"}, "request_object_claims"),
    ({"iss": None}, "request_object_claims"),
    ({"exp": None}, "request_object_claims"),
    ({"jti": None}, "request_object_claims"),
    ({"jti": ""}, "request_object_claims"),
    ({"jti": "j" * 257}, "request_object_claims"),
    ({"jti": ["a"]}, "request_object_claims"),
    ({"exp": "soon"}, "request_object_claims"),
    ({"exp": True}, "request_object_claims"),
    ({"exp": -1}, "request_object_expired"),
    ({"nbf": 10 ** 12}, "request_object_claims"),
    ({"iat": 10 ** 12}, "request_object_claims"),
    ({"client_id": "app_other"}, "request_object_mismatch"),
    ({"request_uri": "https://app.example/r"}, "request_object_claims"),
    ({"request": "x.y.z"}, "request_object_claims"),
    ({"state": None}, "request_object_claims"),
    ({"max_age": 1.5}, "request_object_claims"),
    ({"consent": False}, "request_object_claims"),
])
def test_each_claim_rule(change, reason):
    claims = {**standard_claims(CLIENT, ISSUER), **change}
    claims = {name: value for name, value in claims.items() if value is not None or name == "state"}
    with pytest.raises(InvalidRequestObjectError) as error:
        _all_steps(signed(KEYS.rsa, claims))
    assert _refusal(error) == reason


def test_exp_and_jti_are_required_only_when_strict_and_checked_whenever_there():
    now = int(time.time())
    for left_out in ("exp", "jti"):
        claims = {k: v for k, v in standard_claims(CLIENT, ISSUER).items() if k != left_out}
        read = read_object(signed(KEYS.rsa, claims))
        check_claims(read, client_id=CLIENT, issuer=ISSUER, now=now, strict=False)
        with pytest.raises(InvalidRequestObjectError):
            check_claims(read, client_id=CLIENT, issuer=ISSUER, now=now, strict=True)
    for change in ({"exp": now - 3600, "nbf": now - 3700}, {"jti": ""}, {"aud": None}, {"iss": None}):
        claims = {k: v for k, v in {**standard_claims(CLIENT, ISSUER), **change}.items() if v is not None}
        with pytest.raises(InvalidRequestObjectError):
            check_claims(read_object(signed(KEYS.rsa, claims)), client_id=CLIENT, issuer=ISSUER, now=now,
                         strict=False)


def test_aud_may_be_a_list_holding_the_issuer_and_the_times_have_their_leeway():
    now = int(time.time())
    claims = {**standard_claims(CLIENT, ISSUER), "aud": ["https://other.example", ISSUER]}
    assert _all_steps(signed(KEYS.rsa, claims))
    skewed = {**standard_claims(CLIENT, ISSUER), "nbf": now + LEEWAY // 2, "iat": now + LEEWAY // 2}
    assert _all_steps(signed(KEYS.rsa, skewed), now=now)
    just_expired = {**standard_claims(CLIENT, ISSUER), "nbf": now - 100, "exp": now - LEEWAY // 2}
    assert _all_steps(signed(KEYS.rsa, just_expired), now=now)


def test_an_object_lives_at_most_an_hour():
    now = int(time.time())
    for nbf, exp in ((now, now + MAX_LIFETIME + 1), (now - 7200, now + 1800)):
        claims = {**standard_claims(CLIENT, ISSUER), "nbf": nbf, "exp": exp}
        with pytest.raises(InvalidRequestObjectError) as error:
            _all_steps(signed(KEYS.rsa, claims), now=now)
        assert _refusal(error) == "request_object_lifetime"
    without_nbf = {**standard_claims(CLIENT, ISSUER), "exp": now + MAX_LIFETIME + 60}
    del without_nbf["nbf"]
    with pytest.raises(InvalidRequestObjectError):
        _all_steps(signed(KEYS.rsa, without_nbf), now=now)                  # from now, then
    assert _all_steps(signed(KEYS.rsa, {**standard_claims(CLIENT, ISSUER), "nbf": now, "exp": now + MAX_LIFETIME}),
                      now=now)


def test_the_querys_client_id_and_response_type_match_the_objects():
    read = read_object(_good(response_type="code"))
    assert object_params(read, client_id=CLIENT, response_type="code")["response_type"] == "code"
    for client_id, response_type in ((CLIENT, "id_token"), ("app_other", "code")):
        with pytest.raises(InvalidRequestObjectError) as error:
            object_params(read, client_id=client_id, response_type=response_type)
        assert _refusal(error) == "request_object_mismatch"


NONE = b'{"alg":"none"}'


def _compact(header: bytes, claims: bytes = b"{}", signature: str = "") -> str:
    return f"{b64(header)}.{b64(claims)}.{signature}"


@pytest.mark.parametrize("value, reason", [
    ("a.b.c.d.e", "request_object_encrypted"),
    (".".join(b64(part) for part in (b'{"alg":"RSA-OAEP","enc":"A256GCM"}', b"k", b"iv", b"c", b"t")),
     "request_object_encrypted"),
    (_compact(b'{"alg":"dir","enc":"A256GCM"}'), "request_object_encrypted"),
    ("", "request_object_malformed"),
    ("x" * (MAX_LENGTH + 1), "request_object_malformed"),
    ("a.b", "request_object_malformed"),
    ("a.b.c.d", "request_object_malformed"),
    (b64(NONE) + "=." + b64(b"{}") + ".", "request_object_malformed"),           # padding
    (b64(NONE) + ".e30=.", "request_object_malformed"),
    (b64(NONE) + ".e31.", "request_object_malformed"),                           # stray bits
    (b64(NONE) + ".e3+.", "request_object_malformed"),                           # base64, not base64url
    (_compact(b'{"alg":"none","alg":"RS256"}'), "request_object_malformed"),
    (_compact(NONE, b'{"scope":"a","scope":"b"}'), "request_object_malformed"),
    (_compact(NONE, b"[]"), "request_object_malformed"),
    (_compact(NONE, b'{"exp":NaN}'), "request_object_malformed"),
    (_compact(NONE, b'{"exp":Infinity}'), "request_object_malformed"),
    (_compact(NONE, b"\xff\xfe"), "request_object_malformed"),
    (_compact(NONE, b"[" * 5000), "request_object_malformed"),
    (_compact(NONE, b'{"n":' + b"9" * 5000 + b"}"), "request_object_malformed"),
    (_compact(NONE, b"{}", b64(b"sig")), "request_object_malformed"),
    (_compact(b'{"alg":"RS256"}'), "request_object_malformed"),
    (_compact(b'{"alg":7}'), "request_object_malformed"),
    (_compact(b"{}"), "request_object_malformed"),
    (_compact(b'{"alg":"none","crit":["b64"],"b64":false}'), "request_object_malformed"),
    (_compact(b'{"alg":"none","typ":"dpop+jwt"}'), "request_object_malformed"),
    (_compact(b'{"alg":"none","typ":"at+jwt"}'), "request_object_malformed"),
    (_compact(b'{"alg":"none","kid":5}'), "request_object_malformed"),
])
def test_what_does_not_read_as_a_request_object(value, reason):
    with pytest.raises(InvalidRequestObjectError) as error:
        read_object(value)
    assert _refusal(error) == reason


def test_the_types_a_request_object_may_say_it_is():
    for typ in ("oauth-authz-req+jwt", "application/oauth-authz-req+jwt", "JWT", "jwt"):
        assert read_object(unsigned({}, {"alg": "none", "typ": typ})).header["typ"] == typ


# --- what an attacker sends ----------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=8)
HEADER_NAMES = st.sampled_from(["alg", "typ", "kid", "crit", "enc", "jku", "jwk", "x5u", "x5c", "b64", "cty", "zip"])
CLAIM_NAMES = st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "jti", "client_id", "response_type", "scope",
                               "state", "nonce", "redirect_uri", "max_age", "claims", "request", "request_uri",
                               "response_mode", "prompt", "sub"]) | st.text(max_size=10)


@st.composite
def odd_objects(draw) -> str:
    """A valid signed object's header and claims with some members changed, added or removed, encoded
    and sometimes signed again, sometimes cut, padded or given more parts."""
    header: dict = {"alg": draw(st.sampled_from([*ALGORITHMS, "none", "HS256", "RS512"])), "kid": KEYS.rsa.kid}
    claims = standard_claims(CLIENT, ISSUER, scope="openid")
    for target, names in ((header, HEADER_NAMES), (claims, CLAIM_NAMES)):
        for name in draw(st.lists(names, max_size=3)):
            if draw(st.booleans()):
                target[name] = draw(JSON_VALUES)
            else:
                target.pop(name, None)
    alg = header.get("alg")
    value = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}." + \
        draw(st.sampled_from(["", b64(b"sig"), "AAAA"]))
    if alg in ALGORITHMS and draw(st.booleans()):
        try:  # signed by the app's key, where joserfc will sign such a header
            value = signed(KEYS.for_alg(alg), claims, alg=alg, header={**header, "typ": header.get("typ")})
        except (JoseError, ValueError, TypeError):
            pass
    return draw(st.sampled_from([value, value + "=", value + ".", "." + value, value[:-1], value.replace("-", "+"),
                                 value + ".x.y", value[: len(value) // 2]]))


@given(value=odd_objects())
@EXAMPLES
def test_odd_objects_are_invalid_request_object_or_pass_every_rule(value):
    allowing = OidcClient(allow_unsigned_request_objects=True, jwks=KEYS.public_jwks())
    try:
        params = _all_steps(value, allowing)
    except InvalidRequestObjectError as error:
        assert error.description and refusals.reason_of(error)
        return
    assert all(isinstance(v, str) for v in params.values()) and not {"request", "request_uri"} & set(params)


@given(value=st.text(max_size=300) | st.binary(max_size=300).map(lambda raw: base64.urlsafe_b64encode(raw).decode()))
@EXAMPLES
def test_any_text_is_a_request_object_or_invalid_request_object(value):
    try:
        read = read_object(value)
    except InvalidRequestObjectError:
        return
    assert isinstance(read, RequestObject)


@given(position=st.integers(min_value=0), replacement=st.sampled_from("AQgw_-9zZ"))
@EXAMPLES
def test_no_other_spelling_of_a_signed_object_passes(position, replacement):
    """One character of a valid object changed (header, claims or signature): refused, never passed
    under another spelling (SPEC §14: one spelling per token)."""
    value = _good("ES256")
    at = position % len(value)
    changed = value[:at] + replacement + value[at + 1:]
    if changed == value or value[at] == ".":
        return
    with pytest.raises(OAuth2Error):
        _all_steps(changed)
