"""Pushed Authorization Requests (RFC 9126, SPEC §14): the app pushes its request with its credentials
and gets a one-time request_uri for the browser; the request is checked at the push (JSON errors, no
redirect), the request_uri works once, for its own client, within 60 s; an app added with
--require-par signs in no other way."""
from __future__ import annotations

import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import authorize_url, finish_as_device, pkce_pair, query_of, sign_in_page_request

REDIRECT = "https://app.example/callback"


def _app(ctx, **options):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), **options))


def _push(url: str, credentials, **params: str) -> requests.Response:
    return requests.post(url + "/oidc/par", data=params, auth=(credentials.app.client_id, credentials.client_secret),
                         timeout=10)


def _request(credentials, challenge: str, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": REDIRECT,
            "scope": "openid", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256", **extra}


def test_a_pushed_request_signs_in_once_through_its_request_uri(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx, require_par=True)
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert metadata["pushed_authorization_request_endpoint"] == url + "/oidc/par"
    device = register_device(url)
    device.login(PASSWORD)
    verifier, challenge = pkce_pair()

    pushed = _push(url, credentials, **_request(credentials, challenge))
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["Cache-Control"] == "no-store"
    answer = pushed.json()
    assert answer["expires_in"] == 60 and answer["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")

    presented = authorize_url(url, client_id=credentials.app.client_id, request_uri=answer["request_uri"])
    callback = query_of(finish_as_device(device, sign_in_page_request(presented, browser=device)))
    assert callback["state"] == "st" and callback["iss"] == url
    issued = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": callback["code"],
                                                      "redirect_uri": REDIRECT, "code_verifier": verifier},
                           auth=(credentials.app.client_id, credentials.client_secret), timeout=10)
    assert issued.status_code == 200, issued.text

    again = requests.get(presented, allow_redirects=False, timeout=10)     # one authorization request each
    assert again.status_code == 400 and "Location" not in again.headers

    # --require-par: the parameters in the browser's URL are refused, back at the app with the error
    direct = requests.get(authorize_url(url, **_request(credentials, challenge)), allow_redirects=False, timeout=10)
    assert direct.status_code == 303
    assert query_of(direct.headers["Location"])["error"] == "invalid_request"


def test_a_push_is_checked_and_its_request_uri_is_its_clients_alone(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials, other = _app(ctx), _app(ctx)
    _, challenge = pkce_pair()
    for bad, error in (({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
                       ({"code_challenge_method": "plain"}, "invalid_request"),
                       ({"response_type": "token"}, "unsupported_response_type"),
                       ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
                       ({"client_id": other.app.client_id}, "invalid_request")):
        refused = _push(url, credentials, **_request(credentials, challenge, **bad))
        assert refused.status_code == 400 and "Location" not in refused.headers, (bad, refused.text)
        assert refused.json()["error"] == error, bad
    wrong_secret = requests.post(url + "/oidc/par", data=_request(credentials, challenge),
                                 auth=(credentials.app.client_id, "wrong"), timeout=10)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"

    request_uri = _push(url, credentials, **_request(credentials, challenge)).json()["request_uri"]
    stolen = requests.get(authorize_url(url, client_id=other.app.client_id, request_uri=request_uri),
                          allow_redirects=False, timeout=10)
    assert stolen.status_code == 400 and "Location" not in stolen.headers
    for made_up in ("urn:ietf:params:oauth:request_uri:nope", "https://evil.example/request", ""):
        refused = requests.get(authorize_url(url, client_id=credentials.app.client_id, request_uri=made_up),
                               allow_redirects=False, timeout=10)
        assert refused.status_code == 400 and "Location" not in refused.headers, made_up


def test_a_push_with_the_secret_in_its_form_stores_no_credential(make_server):
    """client_secret_post: the secret authenticates the push; the stored request holds no copy of it."""
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    pushed = requests.post(url + "/oidc/par", data={**_request(credentials, pkce_pair()[1]),
                                                    "client_secret": credentials.client_secret}, timeout=10)
    assert pushed.status_code == 201, pushed.text
    stored = repr(ctx.dynamodb.scan(TableName=ctx.tables.one_time_tokens)["Items"])
    assert "oidc_par" in stored and credentials.client_secret not in stored
    presented = authorize_url(url, client_id=credentials.app.client_id, request_uri=pushed.json()["request_uri"])
    assert query_of(finish_as_device(device, sign_in_page_request(presented, browser=device)))["state"] == "st"
