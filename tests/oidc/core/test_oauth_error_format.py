"""Every refusal at /oidc/token, /oidc/revoke and /oidc/par is RFC 6749 §5.2 JSON (SPEC §14), those that
come from citylogin's session layer underneath included: a locked account's refresh and code are
`400 invalid_grant`, before an unlock and after it (the lock ended the session; an unlock revives no
session), never `403 application/problem+json account_locked`; userinfo answers a locked person's access
token as any ended session's, RFC 6750 §3's 401 with the Bearer challenge. tests/oidc/test_odd_parameters.py holds
every answer of the three endpoints to the standards' list of errors, property-based; app_grants/test_grant_faults.py
a database that fails: a quick 503 `temporarily_unavailable`."""
from __future__ import annotations

import pytest
import requests

from accounts import user_service as users
from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.core.oauth_errors import api_error
from sessions import service as sessions
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import code_for

REDIRECT = "https://app.example/callback"
SCOPE = "openid offline_access"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _token(url: str, credentials, **form: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data=form, timeout=10,
                         auth=(credentials.app.client_id, credentials.client_secret))


def _signed_in(url: str, credentials, device) -> dict:
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE)
    issued = _token(url, credentials, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                    code_verifier=verifier)
    assert issued.status_code == 200, issued.text
    return issued.json()


def _assert_invalid_grant(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    assert response.json()["error"] == "invalid_grant" and response.headers["Cache-Control"] == "no-store"


def test_a_locked_accounts_refresh_and_code_are_invalid_grant_before_and_after_an_unlock(provider):
    url, ctx = provider
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)
    waiting_code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE)
    user_uuid = device.key_file.user_uuid

    assert users.lock_account(ctx, user_uuid=user_uuid) == 1
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    _assert_invalid_grant(_token(url, credentials, **refresh))
    _assert_invalid_grant(_token(url, credentials, grant_type="authorization_code", code=waiting_code,
                                 redirect_uri=REDIRECT, code_verifier=verifier))
    revoked = requests.post(url + "/oidc/revoke", data={"token": tokens["refresh_token"]}, timeout=10,
                            auth=(credentials.app.client_id, credentials.client_secret))
    assert revoked.status_code == 200, revoked.text  # RFC 7009 §2.2: a dead token is no error

    users.unlock_account(ctx, user_uuid=user_uuid)
    _assert_invalid_grant(_token(url, credentials, **refresh))  # the lock ended that session for good
    device.login(PASSWORD)                                       # a new one signs the app in again
    again = _signed_in(url, credentials, device)
    rotated = _token(url, credentials, grant_type="refresh_token", refresh_token=again["refresh_token"])
    assert rotated.status_code == 200, rotated.text


def test_userinfo_refuses_a_locked_persons_token_with_401_and_the_bearer_challenge(provider):
    """RFC 6750 §3: the token no longer counts (the lock ended its session), so 401 invalid_token with
    `WWW-Authenticate: Bearer error="invalid_token"`, in the body every other ended session gets at
    userinfo (session_revoked and why); before and after an unlock. citylogin's own token of the same
    session keeps its 403 account_locked (SPEC §4)."""
    url, ctx = provider
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device, other = register_device(url), register_device(url)
    device.login(PASSWORD)
    other.login(PASSWORD)
    tokens, others = _signed_in(url, credentials, device), _signed_in(url, credentials, other)
    assert _userinfo(url, tokens["access_token"]).status_code == 200
    user_uuid = device.key_file.user_uuid

    assert users.lock_account(ctx, user_uuid=user_uuid) == 1
    locked = _userinfo(url, tokens["access_token"])
    assert bearer_problem(locked) == (401, "session_revoked", "admin")
    assert locked.json()["admin_action"] == "locked"
    assert problem(device.request("GET", "/session/me"))[:2] == (403, "account_locked")
    users.unlock_account(ctx, user_uuid=user_uuid)
    assert bearer_problem(_userinfo(url, tokens["access_token"]))[:2] == (401, "session_revoked")

    other.logout()  # any other ending: the same status, challenge and code
    assert bearer_problem(_userinfo(url, others["access_token"])) == (401, "session_revoked", "logged_out")


def _userinfo(url: str, access_token: str) -> requests.Response:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


def test_each_refusal_of_the_session_layer_has_its_oauth_error():
    """What oidc.core.oauth_errors makes of an ApiError that escapes from under Authlib."""
    def said(error) -> tuple[int, str, str | None]:
        response = api_error(error)
        assert response.mimetype == "application/json"
        return response.status_code, response.get_json()["error"], response.headers.get("Retry-After")

    from common.errors import StorageUnavailable
    from sessions.binding import InvalidDpopProof
    assert said(sessions.AccountLocked()) == (400, "invalid_grant", None)
    assert said(sessions.AccountDeleted()) == (400, "invalid_grant", None)
    assert said(sessions.InvalidToken()) == (400, "invalid_grant", None)
    assert said(InvalidDpopProof(reason="no proof")) == (400, "invalid_dpop_proof", None)
    status, error, retry_after = said(StorageUnavailable())
    assert (status, error) == (503, "temporarily_unavailable") and retry_after
