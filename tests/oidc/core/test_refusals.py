"""Refusals an operator can see (SPEC §14): each refused authorization, PAR, token or revocation request
is logged once at INFO with the endpoint, the client, the OAuth error and a finer reason, and counted by
those in citylogin_oidc_refusals_total; no log line carries what the request held in secret (the code,
a token, the verifier, the client's secret or assertion, the state)."""
from __future__ import annotations

import logging
import re
import secrets

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.core.refusals import UNREADABLE, shown_client_id
from oidc.core.refusals import log as refusal_log
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import authorize_url, code_for, pkce_pair, query_of, signed_in_tokens, waiting_request

REDIRECT = "https://app.example/callback"
METRIC = "citylogin_oidc_refusals_total"


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    """One all-in-one app for the module, an app registered on it, and a signed-in device."""
    config = app_settings(dynamodb_endpoint, data_dir, table_prefix)
    with app_servers(config) as start:
        url, ctx = start(host_name="127.0.0.1")
        credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
        device = register_device(url)
        device.login(PASSWORD)
        yield url, ctx, credentials, device


@pytest.fixture
def refusals(caplog):
    """The refusal lines a step logs, everything it logs at any level (for what must not be in it), and
    the counter's move for a set of labels."""
    caplog.set_level(logging.DEBUG)

    class Seen:
        def lines(self) -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == refusal_log.name]

        def text(self) -> str:
            return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)

        def clear(self) -> None:
            caplog.clear()

    return Seen()


def count(endpoint: str, error: str, reason: str) -> float:
    return REGISTRY.get_sample_value(METRIC, {"endpoint": endpoint, "error": error, "reason": reason}) or 0.0


def _one_refusal(seen, *, endpoint: str, client_id: str, error: str, reason: str) -> None:
    lines = seen.lines()
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.INFO
    assert lines[0].oidc_refusal == {"endpoint": endpoint, "client_id": client_id, "error": error, "reason": reason}
    assert f"client_id={client_id}" in lines[0].getMessage() and f"reason={reason}" in lines[0].getMessage()


def _params(client_id: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
            "state": "state-" + secrets.token_urlsafe(16), "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


AUTHORIZATION_REFUSALS = [
    # (what is changed in a good request, where the error goes, error, reason)
    ({"code_challenge_method": "plain"}, "app", "invalid_request", "pkce_method"),
    ({"client_id": "app_nobody"}, "page", "invalid_client", "client_unknown"),
    ({"redirect_uri": "https://elsewhere.example/cb"}, "page", "invalid_request", "redirect_uri_not_registered"),
    ({"prompt": "sometimes"}, "app", "invalid_request", "prompt_unsupported"),
    ({"response_mode": "fragment_jwt"}, "app", "invalid_request", "response_mode_unsupported"),
    ({"max_age": "soon"}, "app", "invalid_request", "max_age_malformed"),
    ({"login_hint": "h" * 4000, "nonce": "n" * 4000, "ui_locales": "u" * 400}, "app", "invalid_request",
     "request_too_large"),
]


@pytest.mark.parametrize("changed, goes_to, error, reason", AUTHORIZATION_REFUSALS,
                         ids=[case[3] for case in AUTHORIZATION_REFUSALS])
def test_each_refused_authorization_request_is_one_line_and_one_count(server, refusals, changed, goes_to, error,
                                                                       reason):
    url, _, credentials, _ = server
    params = {**_params(credentials.app.client_id), **changed}
    before = count("authorize", error, reason)
    refusals.clear()
    answer = requests.get(authorize_url(url, **params), allow_redirects=False, timeout=10)
    if goes_to == "page":
        assert answer.status_code == 400 and "Location" not in answer.headers
    else:
        assert answer.status_code == 303 and query_of(answer.headers["Location"])["error"] == error
    _one_refusal(refusals, endpoint="authorize", client_id=params["client_id"], error=error, reason=reason)
    assert count("authorize", error, reason) == before + 1
    assert params["state"] not in refusals.text() and params["code_challenge"] not in refusals.text()


def test_pkce_refusals_say_which_step(server, refusals):
    url, ctx, _, device = server
    strict = apps.add_app(ctx, name="Strict", push_url=None,
                          oidc=OidcClient(redirect_uris=(REDIRECT,), require_pkce=True))
    params = {k: v for k, v in _params(strict.app.client_id).items() if not k.startswith("code_challenge")}
    refusals.clear()
    answer = requests.get(authorize_url(url, **params), allow_redirects=False, timeout=10)
    assert query_of(answer.headers["Location"])["error"] == "invalid_request"
    _one_refusal(refusals, endpoint="authorize", client_id=strict.app.client_id, error="invalid_request",
                 reason="pkce_missing")

    auth = (strict.app.client_id, strict.client_secret)
    for verifier, error, reason in ((None, "invalid_grant", "pkce_verifier_missing"),
                                    ("short", "invalid_request", "pkce_verifier_malformed"),
                                    (pkce_pair()[0], "invalid_grant", "pkce_verifier_mismatch")):
        code, _ = code_for(url, strict.app.client_id, device, redirect_uri=REDIRECT)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                **({"code_verifier": verifier} if verifier else {})}
        refusals.clear()
        answer = requests.post(url + "/oidc/token", data=form, auth=auth, timeout=10)
        assert answer.json()["error"] == error, answer.text
        _one_refusal(refusals, endpoint="token", client_id=strict.app.client_id, error=error, reason=reason)
        assert code not in refusals.text() and (verifier or code) not in refusals.text()


def test_prompt_none_is_counted_and_the_persons_own_no_is_not(server, refusals):
    url, _, credentials, _ = server
    before = count("authorize", "login_required", "prompt_none")
    for error, logged in (("login_required", 1), ("access_denied", 0)):
        browser = requests.Session()
        request_id, _ = waiting_request(url, credentials.app.client_id, redirect_uri=REDIRECT, browser=browser,
                                        state="st")
        refusals.clear()
        answer = browser.post(url + "/oidc/authorize/cancel", json={"request": request_id, "error": error}, timeout=10)
        assert answer.status_code == 200 and query_of(answer.json()["redirect_to"])["error"] == error
        assert len(refusals.lines()) == logged
        assert request_id not in refusals.text()
    assert count("authorize", "login_required", "prompt_none") == before + 1


def test_each_refused_token_request_is_one_line_and_one_count_and_no_secret(server, refusals):
    url, _, credentials, device = server
    client_id, secret = credentials.app.client_id, credentials.client_secret
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    verifier, _ = pkce_pair()
    code = "not-a-code-" + secrets.token_urlsafe(24)
    cases = [
        # (form, Basic credentials, status, error, reason)
        ({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
         (client_id, secret), 400, "invalid_grant", "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
         (client_id, "wrong-" + secret), 401, "invalid_client", "invalid_client"),
        ({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_secret": secret},
         (client_id, secret), 400, "invalid_request", "client_authentication_repeated"),
        ({"grant_type": "password", "username": "someone", "password": PASSWORD},
         (client_id, secret), 400, "unsupported_grant_type", "unsupported_grant_type"),
    ]
    for form, auth, status, error, reason in cases:
        before = count("token", error, reason)
        refusals.clear()
        answer = requests.post(url + "/oidc/token", data=form, auth=auth, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
        _one_refusal(refusals, endpoint="token", client_id=client_id, error=error, reason=reason)
        assert count("token", error, reason) == before + 1
        for held in (secret, code, verifier, tokens["refresh_token"], tokens["access_token"], PASSWORD):
            assert held not in refusals.text()


def test_refused_pushed_and_revocation_requests_are_one_line_each(server, refusals):
    url, _, credentials, _ = server
    client_id, secret = credentials.app.client_id, credentials.client_secret
    params = _params(client_id)
    cases = [
        ("par", "/oidc/par", {**params, "prompt": "sometimes"}, (client_id, secret), 400, "invalid_request",
         "prompt_unsupported"),
        ("par", "/oidc/par", params, (client_id, "wrong-" + secret), 401, "invalid_client", "invalid_client"),
        ("revoke", "/oidc/revoke", {"token": "a-token-" + secrets.token_urlsafe(16)}, (client_id, "wrong-" + secret),
         401, "invalid_client", "invalid_client"),
        ("revoke", "/oidc/revoke", {"token": "a-token-" + secrets.token_urlsafe(16), "token_type_hint": "id_token"},
         (client_id, secret), 400,
         "unsupported_token_type", "unsupported_token_type"),
    ]
    for endpoint, path, form, auth, status, error, reason in cases:
        before = count(endpoint, error, reason)
        refusals.clear()
        answer = requests.post(url + path, data=form, auth=auth, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
        _one_refusal(refusals, endpoint=endpoint, client_id=client_id, error=error, reason=reason)
        assert count(endpoint, error, reason) == before + 1
        assert secret not in refusals.text() and params["state"] not in refusals.text()
        assert form.get("token", secret) not in refusals.text()


def test_a_client_id_that_is_no_token_is_logged_as_unreadable(server, refusals):
    url, _, credentials, _ = server
    refusals.clear()
    answer = requests.get(authorize_url(url, **_params("an app\twith\nlines")), allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert [r.oidc_refusal["client_id"] for r in refusals.lines()] == ["(unreadable)"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(sent=st.none() | st.text(max_size=200) | st.from_regex(r"app_[0-9a-f]{20}", fullmatch=True))
def test_a_client_id_is_logged_as_one_printable_word_or_not_at_all(sent):
    """Whatever a request claims as its client_id, the log line gets it as one printable-ASCII word
    (so that it can end no line and forge no field), or a placeholder."""
    shown = shown_client_id(sent)
    assert shown in ("-", UNREADABLE) or shown == sent
    assert re.fullmatch(r"[\x21-\x7e]{1,128}", shown)
