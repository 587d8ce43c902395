"""What the person or an operator ended stays ended (SPEC §14): a code given before the person signed its app
out of the session, withdrew its consent, or before an operator removed the app, gives nothing when redeemed
after (invalid_grant), and no grant is made; a code given after any of them works as ever. On DynamoDB Local,
over HTTP; the same on two processes in tests/oidc/test_two_processes.py, under faults in
tests/oidc/app_grants/test_grant_faults.py."""
from __future__ import annotations

import pytest
import requests
from authlib.oauth2.rfc6749 import InvalidGrantError

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.token import codes
from oidc.app_grants import ending as grants
from oidc.token import redemption
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import code_for, finish_as_device, query_of, waiting_request

REDIRECT = "https://app.example/callback"
SCOPE = "openid offline_access"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


@pytest.fixture
def signed_in(provider):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    return device


def _app(ctx, *, consent: bool = False):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=consent))


def _code(url: str, credentials, device, *, consent: bool = False) -> tuple[str, str]:
    """(a code the device's session gives the app, its verifier); the person allows the app when asked."""
    request_id, verifier = waiting_request(url, credentials.app.client_id, redirect_uri=REDIRECT, browser=device,
                                           scope=SCOPE)
    return query_of(finish_as_device(device, request_id, consent=consent))["code"], verifier


def _redeem(url: str, credentials, code: str, verifier: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, "code_verifier": verifier},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


def _refused(answer: requests.Response) -> None:
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert "access_token" not in answer.json()


def _live_grant(ctx, device, credentials):
    return grants.store(ctx).get(session_id=device.session_id, client_id=credentials.app.client_id)


def test_a_code_given_before_the_person_signed_the_app_out_gives_nothing(provider, signed_in):
    url, ctx = provider
    credentials = _app(ctx)
    first = _redeem(url, credentials, *_code(url, credentials, signed_in)).json()
    waiting = _code(url, credentials, signed_in)             # the app asks again (another tab, a re-login)
    signed_out = signed_in.request("DELETE", f"/session/{signed_in.session_id}/apps/{credentials.app.client_id}")
    assert signed_out.status_code == 204, signed_out.text

    _refused(_redeem(url, credentials, *waiting))
    assert _live_grant(ctx, signed_in, credentials) is None  # no grant, so no refresh token that rotates
    assert not any(a["client_id"] == credentials.app.client_id
                   for s in signed_in.list_sessions() if s["current"] for a in s["apps"])
    renewed = requests.post(url + "/oidc/token", auth=(credentials.app.client_id, credentials.client_secret),
                            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, timeout=10)
    _refused(renewed)

    again = _redeem(url, credentials, *_code(url, credentials, signed_in))  # the person signs in to it again
    assert again.status_code == 200, again.text
    assert _live_grant(ctx, signed_in, credentials) is not None
    _refused(_redeem(url, credentials, *waiting))            # and the old code still gives nothing


def test_a_code_given_before_the_person_withdrew_consent_gives_nothing(provider, signed_in):
    """Whether or not the app held a grant on this session when the consent went, and even once the person
    allowed the app again: that code was given under the consent they withdrew."""
    url, ctx = provider
    credentials = _app(ctx, consent=True)
    before_any_grant = _code(url, credentials, signed_in, consent=True)
    assert _redeem(url, credentials, *_code(url, credentials, signed_in)).status_code == 200  # remembered
    with_a_grant = _code(url, credentials, signed_in)
    withdrawn = signed_in.request("DELETE", f"/account/consents/{credentials.app.client_id}")
    assert withdrawn.status_code == 204

    _refused(_redeem(url, credentials, *with_a_grant))
    _refused(_redeem(url, credentials, *before_any_grant))
    assert _live_grant(ctx, signed_in, credentials) is None

    allowed_again = _code(url, credentials, signed_in, consent=True)
    _refused(_redeem(url, credentials, *with_a_grant))       # given before the withdrawal: still nothing
    assert _redeem(url, credentials, *allowed_again).status_code == 200


def test_a_code_given_before_the_app_was_removed_gives_nothing(provider, signed_in):
    """The redemption's own transaction checks the app's record: a process whose registry copy still holds
    the app (it sees a removal within a second) refuses too."""
    url, ctx = provider
    credentials = _app(ctx)
    code, _ = code_for(url, credentials.app.client_id, signed_in, redirect_uri=REDIRECT, scope=SCOPE)
    opened = codes.opened(ctx.refresh_secrets, code, now=ctx.epoch())
    assert opened is not None
    apps.remove_app(ctx, client_id=credentials.app.client_id)

    grant = opened.signed_in(refresh_generation=1, grant_id="0123456789abcdef0123456789abcdef") \
        .grant(client_id=credentials.app.client_id, scope=opened.scope)
    with pytest.raises(InvalidGrantError):
        redemption.redeem(ctx, code=opened, grant=grant, app=credentials.app)
    assert grants.store(ctx).record(session_id=signed_in.session_id, client_id=credentials.app.client_id) is None
    assert _redeem(url, credentials, code, "x" * 43).status_code in (400, 401)  # over HTTP, refused either way


def test_codes_given_after_the_persons_action_work(provider, signed_in):
    """The rule refuses only what came before: an app signed out and signed in again in the same second
    gets its new grant, and replacing a live grant works as before."""
    url, ctx = provider
    credentials = _app(ctx)
    for _ in range(3):
        assert _redeem(url, credentials, *_code(url, credentials, signed_in)).status_code == 200
        assert signed_in.request("DELETE", f"/session/{signed_in.session_id}/apps/{credentials.app.client_id}") \
            .status_code == 204
        assert _live_grant(ctx, signed_in, credentials) is None
    for _ in range(2):  # a new sign-in replacing a live grant
        assert _redeem(url, credentials, *_code(url, credentials, signed_in)).status_code == 200
    assert _live_grant(ctx, signed_in, credentials) is not None
