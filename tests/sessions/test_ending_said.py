"""Who ended a session, beside its `reason` (SPEC §4): an operator's action (`admin_action`: locked,
sessions_ended, device_removed) and an app's own logout (`by_app`, `by_app_name`, beside `by_device`) are said
both on the event stream and in the 401 session_revoked that the session's next request meets, so that the
person's page tells the truth. The reasons themselves stay those listed."""
from __future__ import annotations

import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from operators import service as operators
from operators.models import ActionRequest
from tests.sessions.test_events import EventReader
from tests.support.live import PASSWORD, add_device, register_device
from tests.support.oidc import sign_out_as_device, sign_out_page_request, signed_in_tokens

REDIRECT = "https://app.example/callback"
AFTER_LOGOUT = "https://app.example/signed-out"
SUPPORT = operators.app_operator(client_id="helpdesk", admin_role="support")


def _heard(device) -> EventReader:
    """The device's event stream, open (the server answers only once it is subscribed)."""
    reader = EventReader(device.base_url, device)
    assert reader.opened
    return reader


def _said(heard: EventReader) -> dict:
    """The data of the one session_revoked event the stream heard."""
    event = heard.wait(10)
    assert event is not None and event[0] == "session_revoked", event
    return event[1]


def _problem(answer: requests.Response) -> dict:
    body = answer.json()
    return {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail")}


def test_each_operator_action_that_ends_a_session_says_which(make_server):
    url, ctx = make_server()
    person = register_device(url)
    person.login(PASSWORD)
    user_uuid = person.key_file.user_uuid
    why = ActionRequest(reason="ticket 12")

    heard = _heard(person)
    operators.revoke_sessions(ctx, operator=SUPPORT, user_uuid=user_uuid, request=why)
    assert _said(heard) == {"reason": "admin", "admin_action": "sessions_ended"}
    assert _problem(person.request("GET", "/session/me")) == {
        "code": "session_revoked", "reason": "admin", "admin_action": "sessions_ended"}

    phone = add_device(ctx, person, name="phone")
    phone.login(PASSWORD, force=True)
    heard = _heard(phone)
    operators.unbind_device(ctx, operator=SUPPORT, user_uuid=user_uuid, device_id=phone.key_file.device_id,
                            request=why)
    assert _said(heard) == {"reason": "device_unbound", "admin_action": "device_removed"}

    person.login(PASSWORD, force=True)
    heard = _heard(person)
    operators.lock(ctx, operator=SUPPORT, user_uuid=user_uuid, request=why)
    assert _said(heard) == {"reason": "admin", "admin_action": "locked"}
    # A locked account's session keeps answering 403 account_locked (SPEC §4), the stream said why.
    assert _problem(person.request("GET", "/session/me")) == {"code": "account_locked"}


def test_the_persons_own_logout_names_their_device_and_an_apps_logout_names_the_app_too(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), post_logout_redirect_uris=(AFTER_LOGOUT,)))
    device = register_device(url)
    device.login(PASSWORD)
    heard = _heard(device)
    device.request("POST", "/session/logout")
    assert _said(heard) == {"reason": "logged_out", "by_device": device.key_file.device_id}

    device.login(PASSWORD)
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)
    kept = requests.get(url + "/oidc/logout", allow_redirects=False, timeout=10, params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT})
    heard = _heard(device)
    assert sign_out_as_device(url, device, sign_out_page_request(kept.headers["Location"])).status_code == 200
    said = {"reason": "logged_out", "by_device": device.key_file.device_id,
            "by_app": credentials.app.client_id, "by_app_name": "Notes"}
    assert _said(heard) == said
    answer = device.request("GET", "/session/me")
    assert answer.status_code == 401 and _problem(answer) == {"code": "session_revoked", **said}
