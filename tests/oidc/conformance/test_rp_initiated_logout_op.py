"""The OpenID Foundation's RP-Initiated Logout OP certification plan (oidcc-rp-initiated-logout-
certification-test-plan: discovery, client_secret_basic, a static client with a registered
post_logout_redirect_uri), one test per module (docs/security/test-plans.md). The browser's part is the web
UI's: the end_session_endpoint ends nothing itself; this browser's device proves with its key which
session it holds, and the person is asked unless the app's ID token hint named that session (SPEC §14)."""
from __future__ import annotations

import jwt
import pytest

from tests.oidc.conformance.discovery_checks import check_all_endpoints_are_https, check_https_url
from tests.oidc.conformance.end_session import (
    asked_first, device_signs_out, end_session_request, logout_interaction, logout_rp, never_sent_back,
    post_logout_parameters, prompt_none_fails, session_live, session_over, sign_out_page, signed_in, signed_out,
    to_end_session_endpoint)
from tests.oidc.conformance.relying_party import POST_LOGOUT, RelyingParty, check_error_page

# the conformance plans run in the full suite; tests/oidc/test_rp_logout.py keeps logout in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rp(op) -> RelyingParty:
    return logout_rp(op)


def test_oidcc_rp_initiated_logout_discovery_endpoint_verification(deployed_op):
    check_all_endpoints_are_https(deployed_op.metadata)
    check_https_url(deployed_op.metadata["end_session_endpoint"])      # CheckDiscEndSessionEndpoint


def test_oidcc_rp_initiated_logout(op, rp):
    device, flow = signed_in(op, rp)
    params = end_session_request(flow)
    handle = sign_out_page(op, to_end_session_endpoint(op, params))
    session_live(device)                                              # nothing ends before the device proves it
    assert logout_interaction(op, handle)["client_id"] == rp.client_id
    query = post_logout_parameters(POST_LOGOUT, signed_out(device_signs_out(op, device, handle)))
    # CheckPostLogoutState, CheckForUnexpectedParametersInPostLogoutRedirect
    assert query == {"state": [params["state"]]}
    session_over(op, device, flow)
    prompt_none_fails(op, rp, device)


def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(op, rp):
    device, flow = signed_in(op, rp)
    params = {**end_session_request(flow), "post_logout_redirect_uri": "https://rp.example/bad_post_logout_redirect_uri"}
    never_sent_back(op, device, to_end_session_endpoint(op, params))


def test_oidcc_rp_initiated_logout_modified_id_token_hint(op, rp):
    device, flow = signed_in(op, rp)
    header, payload, _ = flow.tokens["id_token"].split(".")
    unsigned = jwt.utils.base64url_encode(b'{"alg": "none"}').decode() + "." + payload + "."   # ChangeIdTokenToAlgNone
    check_error_page(to_end_session_endpoint(op, {**end_session_request(flow), "id_token_hint": unsigned}))
    session_live(device)


def test_oidcc_rp_initiated_logout_no_id_token_hint(op, rp):
    device, flow = signed_in(op, rp)
    params = end_session_request(flow)
    del params["id_token_hint"]
    answer = to_end_session_endpoint(op, params)
    if answer.status_code == 303:                      # the sign-out page: without a hint the person is asked
        asked_first(device_signs_out(op, device, sign_out_page(op, answer)))
        session_live(device)
        answer = to_end_session_endpoint(op, params)
    never_sent_back(op, device, answer)


def test_oidcc_rp_initiated_logout_no_params(op, rp):
    device, flow = signed_in(op, rp)
    handle = sign_out_page(op, to_end_session_endpoint(op, {}))
    asked_first(device_signs_out(op, device, handle))                 # no hint: the person is asked ...
    session_live(device)
    assert signed_out(device_signs_out(op, device, handle, confirm=True)) is None   # ... and is logged out here
    session_over(op, device, flow)


def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(op, rp):
    device, flow = signed_in(op, rp)
    params = end_session_request(flow)
    del params["post_logout_redirect_uri"]
    handle = sign_out_page(op, to_end_session_endpoint(op, params))
    assert signed_out(device_signs_out(op, device, handle)) is None  # logged out, and the browser stays here
    session_over(op, device, flow)


def test_oidcc_rp_initiated_logout_no_state(op, rp):
    device, flow = signed_in(op, rp)
    params = end_session_request(flow)
    del params["state"]
    handle = sign_out_page(op, to_end_session_endpoint(op, params))
    query = post_logout_parameters(POST_LOGOUT, signed_out(device_signs_out(op, device, handle)))
    assert query == {}                                                # CheckNoPostLogoutState
    session_over(op, device, flow)
    prompt_none_fails(op, rp, device)


def test_oidcc_rp_initiated_logout_only_state(op, rp):
    device, flow = signed_in(op, rp)
    handle = sign_out_page(op, to_end_session_endpoint(op, {"state": end_session_request(flow)["state"]}))
    asked_first(device_signs_out(op, device, handle))
    assert signed_out(device_signs_out(op, device, handle, confirm=True)) is None
    session_over(op, device, flow)


def test_oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(op, rp):
    device, flow = signed_in(op, rp)
    params = {**end_session_request(flow), "post_logout_redirect_uri": POST_LOGOUT + "?foo=bar"}
    never_sent_back(op, device, to_end_session_endpoint(op, params))


def test_oidcc_rp_initiated_logout_bad_id_token_hint(op, rp):
    device, flow = signed_in(op, rp)
    # GenerateFakeIdTokenClaims + SignFakeIdToken: an ID token the RP made and signed with its own secret.
    now = flow.id_token["iat"]
    fake = jwt.encode({"iss": rp.client_id, "sub": "SubjectID", "aud": op.issuer, "nonce": "flibble", "iat": now,
                       "exp": now + 300}, rp.client_secret, algorithm="HS256")
    check_error_page(to_end_session_endpoint(op, {**end_session_request(flow), "id_token_hint": fake}))
    session_live(device)
