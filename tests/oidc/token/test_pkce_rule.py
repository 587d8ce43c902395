"""PKCE as the certified providers require it (SPEC §14): required of a public client, of an app added
with --require-pkce, and of every app by CITYLOGIN_OIDC_REQUIRE_PKCE; a confidential client may omit it,
with or without a nonce. Whatever was asked is enforced (RFC 9700 §4.8.2): a code asked for with a
challenge needs its verifier, and one asked for without refuses any code_verifier. PAR follows the rule."""
from __future__ import annotations

import jwt
import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient, PkceRule
from relying_parties.registry import current_app
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import authorize_url, finish_as_device, pkce_pair, query_of, sign_in_page_request
from tests.support.waiting import wait_until

REDIRECT = "https://app.example/callback"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _app(ctx, **options):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), **options))


def _request(credentials, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": REDIRECT,
            "scope": "openid", "state": "st", **extra}


def _code(url: str, device, params: dict[str, str]) -> str:
    return query_of(finish_as_device(device, sign_in_page_request(authorize_url(url, **params),
                                                                  browser=device)))["code"]


def _redeem(url: str, credentials, code: str, **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if credentials.client_secret:
        return requests.post(url + "/oidc/token", data=data, timeout=10,
                             auth=(credentials.app.client_id, credentials.client_secret))
    return requests.post(url + "/oidc/token", data={**data, "client_id": credentials.app.client_id}, timeout=10)


def _refused_at_authorize(url: str, params: dict[str, str]) -> dict[str, str]:
    """The error the app hears back at its redirect URI (the person signs nothing in)."""
    answer = requests.get(authorize_url(url, **params), allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    assert answer.headers["Location"].startswith(REDIRECT + "?")
    return query_of(answer.headers["Location"])


def _signed_in(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device


def test_a_confidential_client_signs_in_without_pkce_with_or_without_a_nonce(provider):
    """The Foundation's Basic OP plan, mozilla-django-oidc, mod_auth_openidc: no challenge at all."""
    url, ctx = provider
    credentials = _app(ctx)
    device = _signed_in(url)
    for extra in ({}, {"nonce": "n-1"}):
        issued = _redeem(url, credentials, _code(url, device, _request(credentials, **extra)))
        assert issued.status_code == 200, issued.text
        id_token = jwt.decode(issued.json()["id_token"], options={"verify_signature": False})
        assert id_token["sub"] == device.key_file.user_uuid
        assert id_token.get("nonce") == extra.get("nonce")


def test_what_was_asked_is_enforced_no_downgrade_either_way(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = _signed_in(url)

    # asked for without a challenge: any code_verifier is refused (an attacker's injected code), the code
    # stays its client's, which redeems it as asked
    code = _code(url, device, _request(credentials))
    for verifier in (pkce_pair()[0], ""):
        refused = _redeem(url, credentials, code, code_verifier=verifier)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant"), refused.text
    assert _redeem(url, credentials, code).status_code == 200

    # asked for with a challenge: its verifier, and nothing else, redeems it
    verifier, challenge = pkce_pair()
    code = _code(url, device, _request(credentials, code_challenge=challenge, code_challenge_method="S256"))
    missing = _redeem(url, credentials, code)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_grant"), missing.text
    wrong = _redeem(url, credentials, code, code_verifier=pkce_pair()[0])
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant"), wrong.text
    assert _redeem(url, credentials, code, code_verifier=verifier).status_code == 200


def test_a_sent_challenge_is_s256_and_well_formed_for_every_client(provider):
    url, ctx = provider
    credentials = _app(ctx)
    _, challenge = pkce_pair()
    for bad in ({"code_challenge": challenge, "code_challenge_method": "plain"}, {"code_challenge": challenge},
                {"code_challenge_method": "S256"}, {"code_challenge": "", "code_challenge_method": "S256"},
                {"code_challenge": "short", "code_challenge_method": "S256"}):
        refused = _refused_at_authorize(url, _request(credentials, **bad))
        assert (refused["error"], refused["state"], refused["iss"]) == ("invalid_request", "st", url), bad


@pytest.mark.parametrize("options", [{"public": True}, {"require_pkce": True}], ids=["public", "require_pkce"])
def test_a_public_client_and_a_require_pkce_app_are_refused_without_it(provider, options):
    url, ctx = provider
    credentials = _app(ctx, **options)
    refused = _refused_at_authorize(url, _request(credentials))
    assert refused["error"] == "invalid_request" and "PKCE is required" in refused["error_description"]
    # with it they sign in
    device = _signed_in(url)
    verifier, challenge = pkce_pair()
    code = _code(url, device, _request(credentials, code_challenge=challenge, code_challenge_method="S256"))
    assert _redeem(url, credentials, code, code_verifier=verifier).status_code == 200


def test_a_code_asked_without_pkce_is_refused_once_the_app_requires_it(provider):
    """The rule is read again at the token endpoint: an operator who turns on --require-pkce between the
    request and its redemption gets it at once."""
    url, ctx = provider
    credentials = _app(ctx)
    code = _code(url, _signed_in(url), _request(credentials))
    apps.update_app(ctx, client_id=credentials.app.client_id,
                    oidc=OidcClient(redirect_uris=(REDIRECT,), require_pkce=True))
    wait_until(lambda: current_app(ctx, client_id=credentials.app.client_id).oidc().require_pkce,  # type: ignore
               timeout=5, what="the server's copy of the app requires PKCE")
    refused = _redeem(url, credentials, code)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant"), refused.text


def test_the_operator_setting_requires_it_of_every_app(make_server):
    url, ctx = make_server(host_name="127.0.0.1", oidc_require_pkce=True)
    credentials = _app(ctx)
    assert credentials.app.oidc().pkce_rule(required_of_every_app=True) is PkceRule.OPERATOR_SETTING
    refused = _refused_at_authorize(url, _request(credentials, nonce="n-1"))
    assert refused["error"] == "invalid_request" and "PKCE is required" in refused["error_description"]
    pushed = requests.post(url + "/oidc/par", data=_request(credentials), timeout=10,
                           auth=(credentials.app.client_id, credentials.client_secret))
    assert (pushed.status_code, pushed.json()["error"]) == (400, "invalid_request"), pushed.text


def test_par_follows_the_same_rule(provider):
    url, ctx = provider
    confidential, strict = _app(ctx), _app(ctx, require_pkce=True)
    device = _signed_in(url)

    def push(credentials, **extra: str) -> requests.Response:
        return requests.post(url + "/oidc/par", data=_request(credentials, **extra), timeout=10,
                             auth=(credentials.app.client_id, credentials.client_secret))

    refused = push(strict)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request"), refused.text
    assert "PKCE is required" in refused.json()["error_description"]
    assert push(confidential, code_challenge_method="plain", code_challenge=pkce_pair()[1]).status_code == 400

    pushed = push(confidential)
    assert pushed.status_code == 201, pushed.text
    presented = authorize_url(url, client_id=confidential.app.client_id, request_uri=pushed.json()["request_uri"])
    code = query_of(finish_as_device(device, sign_in_page_request(presented, browser=device)))["code"]
    downgrade = _redeem(url, confidential, code, code_verifier=pkce_pair()[0])
    assert (downgrade.status_code, downgrade.json()["error"]) == (400, "invalid_grant")
    assert _redeem(url, confidential, code).status_code == 200


def test_each_rule_is_named():
    assert OidcClient(public=True).pkce_rule(required_of_every_app=False) is PkceRule.PUBLIC_CLIENT
    assert OidcClient(profile="fapi2").pkce_rule(required_of_every_app=False) is PkceRule.FAPI2_PROFILE
    assert OidcClient(require_pkce=True).pkce_rule(required_of_every_app=True) is PkceRule.REQUIRE_PKCE
    assert OidcClient().pkce_rule(required_of_every_app=True) is PkceRule.OPERATOR_SETTING
    assert OidcClient().pkce_rule(required_of_every_app=False) is PkceRule.WHEN_SENT
    assert [rule.required for rule in PkceRule] == [True, True, True, True, False]
