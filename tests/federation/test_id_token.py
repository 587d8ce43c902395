"""The ID token's checks (OIDC Core §3.1.3.7, federation.id_token) and the authorization response's (RFC 9207,
federation.relying_party), each step on tokens signed here: what an attacker would send around a valid token
is refused with the step's own reason. Pure: no server, no table."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from common.errors import ApiError, ErrorCode
from federation import id_token, relying_party
from federation.discovery import ALLOWED_ALGS, ProviderMetadata
from federation.refusals import reason_of

ISSUER = "https://idp.example"
CLIENT = "citylogin-client"
NONCE = "n-0123456789"
NOW = 1_900_000_000
RSA = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
EC = ECKey.generate_key("P-256", parameters={"kid": "e1"}, private=True)
PUBLIC = KeySet.import_key_set({"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]})
ALGS = ("RS256", "ES256")


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "exp": NOW + 300,
                               "iat": NOW, "nonce": NONCE}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, object], *, key: RSAKey | ECKey = RSA, alg: str = "RS256",
           kid: str | None = "k1") -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, payload, key, algorithms=[alg])


def check(token: str, *, keys: KeySet = PUBLIC, algs: tuple[str, ...] = ALGS) -> dict[str, object]:
    return id_token.checked_claims(token, keys_for=lambda kid: keys, allowed_algs=algs,
                                   issuer_matches=lambda iss, _claims: iss == ISSUER, client_id=CLIENT,
                                   nonce=NONCE, now=NOW)


def refused_reason(token: str, **kwargs: object) -> str:
    with pytest.raises(Exception) as raised:
        check(token, **kwargs)  # type: ignore[arg-type]
    assert raised.value.code == ErrorCode.FEDERATION_TOKEN_INVALID
    return reason_of(raised.value)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_that_passes_every_step_gives_its_claims():
    assert check(signed(claims()))["sub"] == "248289761001"
    assert check(signed(claims(), key=EC, alg="ES256", kid="e1"))["sub"] == "248289761001"
    assert check(signed(claims(), kid=None))["sub"] == "248289761001"  # no kid: any of its keys of the type


def test_alg_none_is_refused():
    unsigned = f'{b64({"alg": "none"})}.{b64(claims())}.'
    assert refused_reason(unsigned) == "id_token_alg"


def test_hs256_keyed_with_the_providers_public_key_is_refused():
    # the "alg confusion" attack: the public key's bytes as an HMAC secret
    signing_input = f'{b64({"alg": "HS256", "kid": "k1"})}.{b64(claims())}'
    mac = hmac.new(RSA.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert refused_reason(forged) == "id_token_alg"
    # and were HS256 somehow on the list, the provider's keys are public ones: no HMAC verifies with them
    assert refused_reason(forged, algs=("HS256", "RS256")) == "id_token_signature"
    # a provider that announces HS256 never gets it allowed (discovery keeps the asymmetric algorithms only)
    assert "HS256" not in ALLOWED_ALGS and "none" not in ALLOWED_ALGS


def test_an_alg_the_provider_did_not_announce_is_refused():
    assert refused_reason(signed(claims(), key=EC, alg="ES256", kid="e1"), algs=("RS256",)) == "id_token_alg"


def test_a_signature_by_another_key_is_refused():
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert refused_reason(signed(claims(), key=other)) == "id_token_signature"


def test_an_unknown_kid_is_refused():
    assert refused_reason(signed(claims(), kid="rotated-away")) == "id_token_unknown_kid"


@pytest.mark.parametrize(("changes", "reason"), [
    ({"iss": "https://evil.example"}, "id_token_iss"),
    ({"iss": None}, "id_token_iss"),
    ({"aud": "another-client"}, "id_token_aud"),
    ({"aud": ["another-client"]}, "id_token_aud"),
    ({"aud": [CLIENT, "another-client"]}, "id_token_azp"),  # several audiences and no azp
    ({"aud": [CLIENT, "another-client"], "azp": "another-client"}, "id_token_azp"),
    ({"azp": "another-client"}, "id_token_azp"),
    ({"exp": NOW - 3600}, "id_token_exp"),
    ({"exp": "tomorrow"}, "id_token_exp"),
    ({"iat": NOW + 3600}, "id_token_iat"),
    ({"iat": None}, "id_token_iat"),
    ({"nonce": "another-nonce"}, "id_token_nonce"),
    ({"nonce": None}, "id_token_nonce"),
    ({"sub": ""}, "id_token_sub"),
    ({"sub": "x" * 256}, "id_token_sub"),
])
def test_each_claim_step_refuses_its_own_fault(changes, reason):
    assert refused_reason(signed(claims(**changes))) == reason


def test_several_audiences_with_citylogin_as_azp_pass():
    assert check(signed(claims(aud=[CLIENT, "other"], azp=CLIENT)))["azp"] == CLIENT


@settings(max_examples=150, deadline=None)
@given(aud=st.one_of(st.text(max_size=40), st.lists(st.text(max_size=20), max_size=4), st.integers(), st.none()),
       azp=st.one_of(st.none(), st.text(max_size=20)))
def test_aud_and_azp_steps_accept_only_citylogin(aud, azp):
    """Around the valid audience: any aud/azp pair the steps accept names citylogin and no other party."""
    values = {"aud": aud, **({"azp": azp} if azp is not None else {})}
    try:
        id_token.check_aud(values, client_id=CLIENT)
        id_token.check_azp(values, client_id=CLIENT)
    except Exception as error:
        assert error.code == ErrorCode.FEDERATION_TOKEN_INVALID
        return
    audiences = [aud] if isinstance(aud, str) else aud
    assert CLIENT in audiences
    assert azp in (None, CLIENT) and (len(audiences) == 1 or azp == CLIENT)


METADATA = ProviderMetadata(issuer=ISSUER, authorization_endpoint=f"{ISSUER}/auth", token_endpoint=f"{ISSUER}/token",
                            jwks_uri=f"{ISSUER}/jwks", id_token_algs=ALGS, iss_parameter_supported=True)


def test_rfc9207_iss_must_be_the_providers_and_present_when_announced():
    relying_party.check_iss_parameter({"iss": ISSUER}, METADATA)
    for values, reason in (({"iss": "https://evil.example"}, "iss_mismatch"), ({}, "iss_missing"),
                           ({"iss": ISSUER + "/"}, "iss_mismatch")):
        with pytest.raises(Exception) as raised:
            relying_party.check_iss_parameter(values, METADATA)
        assert reason_of(raised.value) == reason
    quiet = ProviderMetadata(**{**METADATA.__dict__, "iss_parameter_supported": False})
    relying_party.check_iss_parameter({}, quiet)  # a provider that does not send it is not asked to


def test_microsofts_template_issuer_matches_a_tenant_guid_only():
    template = ProviderMetadata(**{**METADATA.__dict__, "issuer": "https://login.example/{tenantid}/v2.0"})
    assert relying_party.iss_matches("https://login.example/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", template)
    for iss in ("https://login.example/evil/v2.0", "https://login.example/{tenantid}/v2.0",
                "https://login.example/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/x"):
        assert not relying_party.iss_matches(iss, template)


@settings(max_examples=200, deadline=None)
@given(iss=st.text(max_size=60))
def test_no_other_iss_passes_the_rfc9207_step(iss):
    try:
        relying_party.check_iss_parameter({"iss": iss}, METADATA)
    except Exception as error:
        assert error.code == ErrorCode.FEDERATION_TOKEN_INVALID
    else:
        assert iss == ISSUER


@pytest.mark.parametrize(("claims", "refused"), [
    ({}, False),                                          # the provider said nothing of when: max_age was asked
    ({"auth_time": 5000}, False), ({"auth_time": 5000 - id_token.LEEWAY}, False),
    ({"auth_time": 5000 - id_token.LEEWAY - 1}, True),    # signed in before the round trip began
    ({"auth_time": "5000"}, True), ({"auth_time": True}, True)])
def test_a_reauths_sign_in_is_one_made_after_the_round_trip_began(claims, refused):
    if not refused:
        id_token.check_auth_time(claims, not_before=5000)
        return
    with pytest.raises(ApiError) as error:
        id_token.check_auth_time(claims, not_before=5000)
    assert error.value.code == ErrorCode.FEDERATION_TOKEN_INVALID and reason_of(error.value) == "id_token_auth_time"


def test_a_reauths_authorization_request_asks_for_a_fresh_sign_in():
    metadata = METADATA
    plain = parse_qs(urlsplit(relying_party.authorization_url(
        metadata, client_id="c", scope="openid", redirect_uri="https://rp/cb", state="s", nonce="n",
        verifier="v" * 43)).query)
    assert "max_age" not in plain and "prompt" not in plain
    fresh = parse_qs(urlsplit(relying_party.authorization_url(
        metadata, client_id="c", scope="openid", redirect_uri="https://rp/cb", state="s", nonce="n",
        verifier="v" * 43, fresh_login=True, prompt="login")).query)
    assert fresh["max_age"] == ["0"] and fresh["prompt"] == ["login"]
