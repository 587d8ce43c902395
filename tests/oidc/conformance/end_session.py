"""RP-Initiated Logout as the conformance suite drives it (AbstractOIDCCRpInitiatedLogout), with the
browser's part played as citylogin's web UI plays it (SPEC §14): the end_session_endpoint keeps the
app's request and sends the browser to the sign-out page (`/#oidc-logout=<handle>`); there the
browser's device proves with its key which session it holds (`POST /oidc/logout/device`, a challenge
signed under "citylogin-sign-out:"), and the person confirms when the request did not name that session.
Then the suite's closing check: an authorization with prompt=none must come back with an error."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from citylogin.client import Client
from citylogin.client_keys import sign_challenge
from tests.oidc.conformance.relying_party import (
    POST_LOGOUT, TIMEOUT, Flow, Provider, RelyingParty, authorization_request, callback_of, check_error_page,
    check_error_response, code_flow, random_value, register_rp, send_to_authorization_endpoint, sign_in_page,
    signed_in_person, single_sign_on)

SIGN_OUT_PURPOSE = "citylogin-sign-out:"
USER_INTERFACE_ERRORS = {"interaction_required", "login_required", "account_selection_required", "consent_required"}


def logout_rp(op: Provider, **options: Any) -> RelyingParty:
    """A client with the suite's post-logout redirect URI registered (CreatePostLogoutRedirectUri)."""
    return register_rp(op, post_logout_redirect_uris=(POST_LOGOUT,), **options)


def signed_in(op: Provider, rp: RelyingParty) -> tuple[Client, Flow]:
    """The first authorization of every logout module: a person signed in, the app holding its tokens
    (its authorization state 128 characters long, as the suite sends it)."""
    device = signed_in_person(op)
    request_state = random_value(128)
    return device, code_flow(op, rp, device, state=request_state)


def end_session_request(flow: Flow) -> dict[str, str]:
    """CreateEndSessionEndpointRequest with CreateRandomEndSessionState."""
    return {"id_token_hint": flow.tokens["id_token"], "post_logout_redirect_uri": POST_LOGOUT,
            "state": random_value(20)}


def to_end_session_endpoint(op: Provider, params: dict[str, str]) -> requests.Response:
    """The browser sent to the end_session_endpoint (BuildRedirectToEndSessionEndpoint); not followed."""
    return requests.get(op.metadata["end_session_endpoint"], params=params, allow_redirects=False, timeout=TIMEOUT)


def sign_out_page(op: Provider, answer: requests.Response) -> str:
    """The handle the end_session_endpoint sends the browser to citylogin's sign-out page with."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    location = answer.headers["Location"]
    prefix = f"{op.issuer}/#oidc-logout="
    assert location.startswith(prefix), location
    return location.removeprefix(prefix)


def device_signs_out(op: Provider, device: Client, handle: str, *, confirm: bool = False) -> requests.Response:
    """The sign-out page's proof: the browser's device signs a fresh challenge for the app's request;
    `confirm` once the person said yes."""
    challenge = requests.post(op.url + "/login/challenge", json={}, timeout=TIMEOUT).json()["challenge"]
    key_file = device.require_key_file()
    body = {"request": handle, "client_cert": key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(key_file.private_key(), challenge, purpose=SIGN_OUT_PURPOSE),
            "confirm": confirm}
    return requests.post(op.url + "/oidc/logout/device", json=body, timeout=TIMEOUT)


def signed_out(answer: requests.Response) -> str | None:
    """Where the browser goes once the session ended: the app's URI, or None (it stays at citylogin,
    which shows that the person signed out)."""
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    return answer.json()["redirect_to"]


def asked_first(answer: requests.Response) -> None:
    """The device's proof alone did not end the session: the person is asked to confirm."""
    assert answer.status_code == 403, (answer.status_code, answer.text[:300])
    assert answer.json()["code"] == "logout_confirmation_required", answer.text


def post_logout_parameters(rp_uri: str, redirect_to: str | None) -> dict[str, list[str]]:
    """The query the OP sent to the post-logout redirect URI, which must be the registered one exactly."""
    assert redirect_to is not None
    parts = urlsplit(redirect_to)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == rp_uri and not parts.fragment, redirect_to
    return parse_qs(parts.query, keep_blank_values=True)


def session_over(op: Provider, device: Client, flow: Flow) -> None:
    """The session has ended: citylogin refuses the device's token and the app's."""
    assert device.request("GET", "/session/me").status_code == 401
    assert requests.get(op.metadata["userinfo_endpoint"], timeout=TIMEOUT,
                        headers={"Authorization": f"Bearer {flow.tokens['access_token']}"}).status_code == 401


def session_live(device: Client) -> None:
    assert device.request("GET", "/session/me").status_code == 200


def prompt_none_fails(op: Provider, rp: RelyingParty, device: Client) -> None:
    """The suite's last step: an authorization with prompt=none now comes back with an error that needs
    a user interface (CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface). The browser's
    device has no live session (single sign-on is refused), and the web UI shows no page but answers
    login_required (oidc.js)."""
    request = authorization_request(rp, state_length=128, prompt="none")
    request_id = sign_in_page(op, send_to_authorization_endpoint(op, request))
    refused = single_sign_on(op, device, request_id)
    assert refused.status_code == 401 and refused.json()["code"] == "login_required", refused.text
    cancelled = requests.post(op.url + "/oidc/authorize/cancel", timeout=TIMEOUT,
                              json={"request": request_id, "error": "login_required"})
    check_error_response(op, request, callback_of(rp, cancelled.json()["redirect_to"]), allowed=USER_INTERFACE_ERRORS)


def logout_interaction(op: Provider, handle: str) -> dict[str, Any]:
    """What the sign-out page shows of the app's request."""
    answer = requests.post(op.url + "/oidc/logout/interaction", json={"request": handle}, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def never_sent_back(op: Provider, device: Client, answer: requests.Response) -> None:
    """The module's "the OP must not redirect back; it shows an error or asks the person": citylogin
    shows the end_session_endpoint's error page, and the session the hint names goes on."""
    check_error_page(answer)
    session_live(device)
