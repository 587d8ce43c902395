"""The OpenID Foundation's Back-Channel Logout OP certification plan (oidcc-backchannel-rp-initiated-
logout-certification-test-plan: discovery, client_secret_basic, a static client with a registered
backchannel_logout_uri and post_logout_redirect_uri), one test per module (docs/security/test-plans.md). The
person is in real Chromium at citylogin's web UI; the app's back-channel endpoint is a receiver of its own
process."""
from __future__ import annotations

import time

import jwt
import pytest
import requests

from oidc.logout.backchannel import BACKCHANNEL_LOGOUT_EVENT
from tests.oidc.conformance.discovery_checks import check_all_endpoints_are_https, check_https_url
from tests.oidc.conformance.end_session import (
    end_session_request, post_logout_parameters, prompt_none_fails, session_over, signed_in, to_end_session_endpoint)
from tests.oidc.conformance.relying_party import TIMEOUT, Provider, RelyingParty, register_rp
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
OP_SETTINGS = {"ssf_push_interval": 0.2}   # the pusher of logout tokens on (the tests' default turns it off)
LOGOUT_TOKEN_TYPE = "logout+jwt"


@pytest.fixture(scope="module")
def sink():
    with receiver() as url:
        yield url


def test_oidcc_backchannel_logout_discovery_endpoint_verification(deployed_op):
    metadata = deployed_op.metadata
    check_all_endpoints_are_https(metadata)
    assert metadata["backchannel_logout_supported"] is True              # CheckDiscEndpointBackchannelLogoutSupported
    assert metadata["backchannel_logout_session_supported"] is True      # ...BackchannelLogoutSessionSupported
    check_https_url(metadata["end_session_endpoint"])                    # CheckDiscEndSessionEndpoint


def _logout_token_for(sink: str, rp: RelyingParty, sid: str) -> str | None:
    for token in received(sink)["sets"]:
        claims = jwt.decode(token, options={"verify_signature": False})
        if claims.get("aud") in (rp.client_id, [rp.client_id]) and claims.get("sid") == sid:
            return token
    return None


def _check_logout_token(op: Provider, rp: RelyingParty, token: str, id_token: dict) -> None:
    """ValidateLogoutTokenSignature, ValidateLogoutTokenClaims, CheckIdTokenSubMatchesLogoutToken,
    CheckIdTokenSidMatchesLogoutToken, CheckLogoutTokenNoNonce and CheckLogoutTokenHasSubOrSid."""
    header = jwt.get_unverified_header(token)
    assert header.get("typ") == LOGOUT_TOKEN_TYPE and header.get("kid"), header
    keys = {key["kid"]: key for key in requests.get(op.metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]}
    key = jwt.PyJWK(keys[header["kid"]], algorithm=header["alg"])
    claims = jwt.decode(token, key.key, algorithms=[header["alg"]], audience=rp.client_id, issuer=op.issuer,
                        options={"verify_iat": False, "require": ["iat", "jti"]})
    now = time.time()
    assert now - 86400 <= claims["iat"] <= now + 5 * 60, claims
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}, claims
    assert BACKCHANNEL_LOGOUT_EVENT == "http://schemas.openid.net/event/backchannel-logout"
    assert "nonce" not in claims, claims
    assert "sub" in claims or "sid" in claims, claims
    if "sub" in claims:
        assert claims["sub"] == id_token["sub"], claims
    if "sid" in claims:
        assert claims["sid"] == id_token["sid"], claims


def test_oidcc_backchannel_rp_initiated_logout(op, sink, app_server, person):
    rp = register_rp(op, app_server.url, backchannel_logout_uri=sink + "/backchannel")  # CreateBackchannelLogoutUri
    flow = signed_in(op, rp, person)
    params = end_session_request(rp, flow)
    query = post_logout_parameters(rp, to_end_session_endpoint(op, person, params, until="app"))
    # CheckPostLogoutState, CheckForUnexpectedParametersInPostLogoutRedirect
    assert query == {"state": [params["state"]]}
    token = wait_until(lambda: _logout_token_for(sink, rp, flow.id_token["sid"]), timeout=30,
                       what="the app's back-channel logout token")
    _check_logout_token(op, rp, token, flow.id_token)
    session_over(op, flow)
    prompt_none_fails(op, rp, person)
