"""RP-Initiated Logout as the conformance suite drives it (AbstractOIDCCRpInitiatedLogout), with the
person in real Chromium at citylogin's web UI (SPEC §14): the first authorization and its whole chain,
then the browser sent to the end_session_endpoint; citylogin keeps the app's request and sends the
browser to its sign-out page, where this browser's device proves with its key which session it holds.
The session the app's ID token named ends without a question and the browser goes back to the app; any
other is asked about first. Then the suite's closing authorization with prompt=none, whose error comes
from the web UI itself (nobody is signed in at citylogin in this browser any more)."""
from __future__ import annotations

from urllib.parse import urlencode

import requests

from tests.oidc.conformance.browser_person import POST_LOGOUT_PATH, Person, Visit
from tests.oidc.conformance.relying_party import (
    TIMEOUT, USER_INTERFACE_ERRORS, Flow, Provider, RelyingParty, authorization_request, browser_authorizes,
    callback_of, check_client_auth_supported, check_error_response, check_no_callback, code_flow, random_value)


def signed_in(op: Provider, rp: RelyingParty, person: Person) -> Flow:
    """The first authorization of every logout module, its whole chain (token, ID token, userinfo), with
    the module's 128-character state."""
    return code_flow(op, rp, person, state=random_value(128))


def end_session_request(rp: RelyingParty, flow: Flow) -> dict[str, str]:
    """CreateEndSessionEndpointRequest with CreateRandomEndSessionState."""
    return {"id_token_hint": flow.tokens["id_token"], "post_logout_redirect_uri": rp.post_logout_redirect_uri,
            "state": random_value(20)}


def to_end_session_endpoint(op: Provider, person: Person, params: dict[str, str], *, until: str,
                            confirm_logout: bool = True) -> Visit:
    """BuildRedirectToEndSessionEndpoint: the browser sent there, and the person through citylogin's
    sign-out page (answering `confirm_logout` if asked) until `until` (browser_person.Person.go)."""
    url = op.metadata["end_session_endpoint"] + (f"?{urlencode(params)}" if params else "")
    return person.go(url, until=until, confirm_logout=confirm_logout)


def post_logout_parameters(rp: RelyingParty, visit: Visit) -> dict[str, list[str]]:
    """The query the OP sent to the post-logout redirect URI, which must be the registered one exactly,
    reached by a GET without the person being asked."""
    callback = visit.callback
    assert callback is not None, f"the browser did not come back to the app ({visit.steps})"
    assert callback.method == "GET" and callback.path == POST_LOGOUT_PATH, callback
    assert rp.post_logout_redirect_uri.endswith(POST_LOGOUT_PATH)
    assert visit.steps == [], visit.steps                       # the hint named the session: no question
    return callback.query


def session_over(op: Provider, flow: Flow) -> None:
    """The session has ended: citylogin refuses the app's access token it gave in it."""
    assert _userinfo_status(op, flow) == 401


def session_live(op: Provider, flow: Flow) -> None:
    assert _userinfo_status(op, flow) == 200


def _userinfo_status(op: Provider, flow: Flow) -> int:
    return requests.get(op.metadata["userinfo_endpoint"], timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {flow.tokens['access_token']}"}).status_code


def prompt_none_fails(op: Provider, rp: RelyingParty, person: Person) -> None:
    """The suite's second authorization: prompt=none, the 128-character state, now answered with an
    error that needs a user interface (CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface),
    which the web UI gives by itself, showing no page (the browser's device has no live session)."""
    check_client_auth_supported(op, "client_secret_basic")
    request = authorization_request(rp, state_length=128, prompt="none")
    visit = browser_authorizes(op, person, request)
    assert visit.steps == [], visit.steps
    check_error_response(op, request, callback_of(rp, visit), allowed=USER_INTERFACE_ERRORS)


def logged_out_here(person: Person, visit: Visit, name: str) -> None:
    """The browser stayed at citylogin, which shows that the person signed out (the suite's "you are
    logged out" screenshot, ExpectSuccessfulLogoutPage)."""
    assert visit.callback is None, visit.callback
    person.device.expect_login_screen()
    assert person.page.locator("#banner:visible").count() == 1
    person.screenshot(f"logout-{name}")


def never_sent_back(op: Provider, person: Person, flow: Flow, visit: Visit, name: str) -> None:
    """The module's "the OP must not redirect back; it shows an error or asks the person": no request at
    the app, and the session the hint names goes on. The page, for the suite's screenshot."""
    if visit.callback is None and visit.steps == []:
        check_no_callback(visit)
    else:
        assert visit.callback is None and visit.steps == ["logout-declined"], visit
    session_live(op, flow)
    person.screenshot(f"logout-{name}")

