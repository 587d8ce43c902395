"""The OpenID Foundation's RP-Initiated Logout OP certification plan (oidcc-rp-initiated-logout-
certification-test-plan: discovery, client_secret_basic, a static client with a registered
post_logout_redirect_uri), one test per module (docs/security/test-plans.md). The person is in real
Chromium at citylogin's web UI: the end_session_endpoint ends nothing itself; this browser's device proves
with its key which session it holds, and the person is asked unless the app's ID token hint named that
session (SPEC §14)."""
from __future__ import annotations

import jwt
import pytest

from tests.oidc.conformance.discovery_checks import check_all_endpoints_are_https, check_https_url
from tests.oidc.conformance.end_session import (
    end_session_request, logged_out_here, never_sent_back, post_logout_parameters, prompt_none_fails, session_live,
    session_over, signed_in, to_end_session_endpoint)
from tests.oidc.conformance.relying_party import RelyingParty, register_rp

# the conformance plans run in the full suite; tests/oidc/logout/test_rp_logout.py keeps logout in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rp(op, app_server) -> RelyingParty:
    return register_rp(op, app_server.url)               # CreatePostLogoutRedirectUri: registered with it


def test_oidcc_rp_initiated_logout_discovery_endpoint_verification(deployed_op):
    check_all_endpoints_are_https(deployed_op.metadata)
    check_https_url(deployed_op.metadata["end_session_endpoint"])      # CheckDiscEndSessionEndpoint


def test_oidcc_rp_initiated_logout(op, rp, person):
    flow = signed_in(op, rp, person)
    params = end_session_request(rp, flow)
    query = post_logout_parameters(rp, to_end_session_endpoint(op, person, params, until="app"))
    # CheckPostLogoutState (and nothing else: CheckForUnexpectedParametersInPostLogoutRedirect)
    assert query == {"state": [params["state"]]}
    session_over(op, flow)
    prompt_none_fails(op, rp, person)


def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(op, rp, person):
    flow = signed_in(op, rp, person)
    bad = rp.post_logout_redirect_uri.rsplit("/", 1)[0] + "/bad_post_logout_redirect_uri"
    params = {**end_session_request(rp, flow), "post_logout_redirect_uri": bad}
    visit = to_end_session_endpoint(op, person, params, until="error-page")
    never_sent_back(op, person, flow, visit, "bad-post-logout-redirect-uri")   # ...NotRegisteredErrorPage


def test_oidcc_rp_initiated_logout_modified_id_token_hint(op, rp, person):
    flow = signed_in(op, rp, person)
    _, payload, _ = flow.tokens["id_token"].split(".")
    unsigned = jwt.utils.base64url_encode(b'{"alg": "none"}').decode() + "." + payload + "."   # ChangeIdTokenToAlgNone
    params = {**end_session_request(rp, flow), "id_token_hint": unsigned}
    visit = to_end_session_endpoint(op, person, params, until="error-page")
    never_sent_back(op, person, flow, visit, "modified-id-token-hint")          # ExpectInvalidIdTokenHintErrorPage


def test_oidcc_rp_initiated_logout_no_id_token_hint(op, rp, person):
    flow = signed_in(op, rp, person)
    params = end_session_request(rp, flow)
    del params["id_token_hint"]
    # Nothing names the session, nor the app whose post-logout URI it is: an error page, or the sign-out
    # page asks the person, who says no (the suite's screenshot, ExpectIdTokenHintRequiredErrorPage); the
    # browser is never sent back.
    visit = to_end_session_endpoint(op, person, params, until="stays", confirm_logout=False)
    never_sent_back(op, person, flow, visit, "no-id-token-hint")


def test_oidcc_rp_initiated_logout_no_params(op, rp, person):
    flow = signed_in(op, rp, person)
    visit = to_end_session_endpoint(op, person, {}, until="citylogin")
    assert visit.steps == ["logout-confirmed"], visit.steps           # no hint: the person is asked, says yes
    logged_out_here(person, visit, "no-params")                     # ExpectSuccessfulLogoutPage
    session_over(op, flow)


def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(op, rp, person):
    flow = signed_in(op, rp, person)
    params = end_session_request(rp, flow)
    del params["post_logout_redirect_uri"]
    visit = to_end_session_endpoint(op, person, params, until="citylogin")
    assert visit.steps == [], visit.steps                             # the hint named the session
    logged_out_here(person, visit, "no-post-logout-redirect-uri")  # ExpectSuccessfulLogoutPage
    session_over(op, flow)


def test_oidcc_rp_initiated_logout_no_state(op, rp, person):
    flow = signed_in(op, rp, person)
    params = end_session_request(rp, flow)
    del params["state"]
    query = post_logout_parameters(rp, to_end_session_endpoint(op, person, params, until="app"))
    assert query == {}                                                # CheckNoPostLogoutState
    session_over(op, flow)
    prompt_none_fails(op, rp, person)


def test_oidcc_rp_initiated_logout_only_state(op, rp, person):
    flow = signed_in(op, rp, person)
    visit = to_end_session_endpoint(op, person, {"state": end_session_request(rp, flow)["state"]}, until="citylogin")
    assert visit.steps == ["logout-confirmed"], visit.steps
    logged_out_here(person, visit, "only-state")                    # ExpectSuccessfulLogoutPage
    session_over(op, flow)


def test_oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(op, rp, person):
    flow = signed_in(op, rp, person)
    params = {**end_session_request(rp, flow), "post_logout_redirect_uri": rp.post_logout_redirect_uri + "?foo=bar"}
    visit = to_end_session_endpoint(op, person, params, until="error-page")
    never_sent_back(op, person, flow, visit, "query-added-to-post-logout-redirect-uri")


def test_oidcc_rp_initiated_logout_bad_id_token_hint(op, rp, person):
    flow = signed_in(op, rp, person)
    # GenerateFakeIdTokenClaims + SignFakeIdToken: an ID token the RP made and signed with its own secret.
    now = flow.id_token["iat"]
    fake = jwt.encode({"iss": rp.client_id, "sub": "SubjectID", "aud": op.issuer, "nonce": "flibble", "iat": now,
                       "exp": now + 300}, rp.client_secret, algorithm="HS256")
    params = {**end_session_request(rp, flow), "id_token_hint": fake}
    visit = to_end_session_endpoint(op, person, params, until="error-page")
    never_sent_back(op, person, flow, visit, "bad-id-token-hint")
    session_live(op, flow)
