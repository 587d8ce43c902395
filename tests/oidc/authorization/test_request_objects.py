"""Request objects at a real `citylogin serve` (RFC 9101, OpenID Connect Core §6; SPEC §14): apps added by
`citylogin apps add` with each request-object option send their authorization requests by value, by a
registered request_uri, or pushed (PAR); a person signs in on a device and the app redeems the code.
Each rule holds over HTTP: the object's claims win over the query's, a broken or replayed object is
invalid_request_object at the app, answered as the object asked (its state, its response mode), an
app's algorithm and its "signed only" hold at /oidc/authorize and /oidc/par, and a request_uri that is
not registered or cannot be fetched is invalid_request_uri. Nothing is ever a 500."""
from __future__ import annotations

import time
import uuid
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import jwt as pyjwt
import pytest
import requests

from tests.support.live import PASSWORD, register_device
from tests.support.oidc import finish_as_device, http_of, pkce_pair, query_of
from tests.support.request_objects import (ALGORITHMS, REDIRECT, Deployment, request_object_deployment, signed,
                                           standard_claims, unsigned)

pytestmark = pytest.mark.slow  # a server process


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory) -> Deployment:
    with request_object_deployment(dynamodb_endpoint, tmp_path_factory.mktemp("reqobj")) as made:
        yield made


@pytest.fixture(scope="module")
def device(deployment):
    device = register_device(deployment.hosts[0])
    device.login(PASSWORD)
    return device


def _query(deployment: Deployment, name: str, **extra: str) -> dict[str, str]:
    """What stays outside the object (OIDC Core §6.1): response_type, client_id, scope, redirect_uri."""
    return {"response_type": "code", "client_id": deployment.client_id(name), "scope": "openid",
            "redirect_uri": REDIRECT, **extra}


def _claims(deployment: Deployment, name: str, **params) -> dict:
    verifier, challenge = pkce_pair()
    request = {"response_type": "code", "scope": "openid", "redirect_uri": REDIRECT, "state": "inside",
               "nonce": uuid.uuid4().hex, "code_challenge": challenge, "code_challenge_method": "S256", **params}
    claims = {**standard_claims(deployment.client_id(name), deployment.issuer), **request}
    claims["verifier"] = verifier  # kept by the test (taken out before signing)
    return claims


def _object(deployment: Deployment, claims: dict, *, alg: str = "RS256", **header) -> str:
    body = {name: value for name, value in claims.items() if name != "verifier"}
    return signed(deployment.keys.for_alg(alg), body, alg=alg, header=header or None)


def _authorize(deployment: Deployment, params: dict[str, str], *, browser=None, method: str = "GET",
               host: int = 0) -> requests.Response:
    http = http_of(browser) if browser is not None else requests.Session()
    url = deployment.hosts[host] + "/oidc/authorize"
    if method == "POST":
        return http.post(url, data=params, allow_redirects=False, timeout=30)
    return http.get(f"{url}?{urlencode(params)}", allow_redirects=False, timeout=30)


def _at_app(deployment: Deployment, response: requests.Response) -> dict[str, str]:
    """The answer sent back to the app by redirect: its parameters, iss checked (RFC 9207)."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    answer = query_of(location)
    assert answer["iss"] == deployment.issuer, answer
    return answer


def _sign_in_page(response: requests.Response) -> str:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    fragment = urlsplit(response.headers["Location"]).fragment
    assert fragment.startswith("oidc="), response.headers["Location"]
    return fragment.removeprefix("oidc=")


def _redeemed(deployment: Deployment, name: str, device, response: requests.Response, verifier: str) -> dict:
    """The person signs in on the device; the app gets its code back and redeems it: the ID token's claims."""
    answer = query_of(finish_as_device(device, _sign_in_page(response)))
    form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT,
            "code_verifier": verifier}
    issued = _back_channel(deployment, name, "/oidc/token", form)
    assert issued.status_code == 200, issued.text
    return {"answer": answer, "id_token": pyjwt.decode(issued.json()["id_token"], options={"verify_signature": False})}


def _back_channel(deployment: Deployment, name: str, path: str, form: dict[str, str]) -> requests.Response:
    """A POST to the token or PAR endpoint as the app authenticates there: an app with keys by a client
    assertion it signs (private_key_jwt), another by its secret."""
    app = deployment.apps[name]
    if not app.get("jwks"):
        return requests.post(deployment.hosts[0] + path, data=form, auth=(app["client_id"], app["client_secret"]),
                             timeout=30)
    now = int(time.time())
    assertion = signed(deployment.keys.ec, {"iss": app["client_id"], "sub": app["client_id"], "aud": deployment.issuer,
                                            "jti": uuid.uuid4().hex, "iat": now, "exp": now + 60},
                       alg="ES256", header={"typ": "JWT"})
    return requests.post(deployment.hosts[0] + path, timeout=30, data={
        **form, "client_id": app["client_id"], "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_signed_object_signs_a_person_in_and_its_claims_win(deployment, device, alg):
    claims = _claims(deployment, "signed", scope="openid profile")
    sent = _query(deployment, "signed", state="outside", nonce="outside", request=_object(deployment, claims, alg=alg))
    flow = _redeemed(deployment, "signed", device, _authorize(deployment, sent, browser=device), claims["verifier"])
    assert flow["answer"]["state"] == "inside"                           # the object's state, not the query's
    assert flow["id_token"]["nonce"] == claims["nonce"]                   # ... its nonce, its PKCE challenge
    assert "preferred_username" in flow["id_token"]                       # ... and its scope (profile)


def test_a_post_carries_one_too(deployment, device):
    claims = _claims(deployment, "signed")
    sent = _query(deployment, "signed", request=_object(deployment, claims, alg="ES256"))
    flow = _redeemed(deployment, "signed", device, _authorize(deployment, sent, browser=device, method="POST"),
                     claims["verifier"])
    assert flow["answer"]["state"] == "inside"


def _broken(deployment: Deployment, change: str) -> str:
    now = int(time.time())
    claims = _claims(deployment, "signed")
    edits = {"aud": {"aud": deployment.issuer + "/elsewhere"}, "iss": {"iss": deployment.client_id("plain")},
             "expired": {"exp": now - 3600, "nbf": now - 3700}, "not_yet": {"nbf": now + 3600, "exp": now + 3700},
             "too_long": {"exp": now + 7200}, "client_id": {"client_id": deployment.client_id("plain")},
             "response_type": {"response_type": "token"}, "nested_uri": {"request_uri": "https://app.example/r"}}
    if change in edits:
        return _object(deployment, {**claims, **edits[change]})
    if change in ("no_exp", "no_jti", "no_aud"):
        return _object(deployment, {name: value for name, value in claims.items() if name != change[3:]})
    if change == "foreign_key":
        from tests.support.request_objects import new_app_keys
        return signed(new_app_keys("foreign").rsa, {k: v for k, v in claims.items() if k != "verifier"},
                      header={"kid": deployment.keys.rsa.kid})
    if change == "alg_none":
        return unsigned({k: v for k, v in claims.items() if k != "verifier"})
    if change == "jwe":
        return "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn"
    assert change == "tampered"
    header, body, signature = _object(deployment, claims).split(".")
    return f"{header}.{_object(deployment, {**claims, 'scope': 'openid email'}).split('.')[1]}.{signature}"


BROKEN = ["aud", "iss", "expired", "not_yet", "too_long", "client_id", "response_type", "nested_uri", "no_aud",
          "foreign_key", "alg_none", "jwe", "tampered"]


@pytest.mark.parametrize("change", BROKEN)
def test_a_broken_object_is_invalid_request_object_at_the_app_with_its_state(deployment, change):
    answer = _at_app(deployment, _authorize(deployment, _query(deployment, "signed", state="outside",
                                                               request=_broken(deployment, change))))
    assert answer["error"] == "invalid_request_object" and answer["error_description"], answer
    # the object's own state once it reads (an encrypted one does not: the query's)
    assert answer.get("state") == ("outside" if change == "jwe" else "inside"), answer
    assert "code" not in answer


@pytest.mark.parametrize("left_out", ["exp", "jti"])
def test_exp_and_jti_are_required_of_an_app_whose_requests_must_be_signed_alone(deployment, device, left_out):
    """OIDC Core §6.1 asks a signed object for iss and aud alone (the Foundation's signed request object
    carries neither exp nor jti): any app's object may leave them out, as its query could. An app whose
    every request must be signed (RFC 9101 §10.5) or held to FAPI 2.0 needs both: its objects expire and
    are used once."""
    name = "signed"
    claims = {k: v for k, v in _claims(deployment, name).items() if k != left_out}
    sent = _query(deployment, name, request=_object(deployment, claims))
    assert _sign_in_page(_authorize(deployment, sent, browser=device))
    strict = {k: v for k, v in _claims(deployment, "strict").items() if k != left_out}
    refused = _at_app(deployment, _authorize(deployment, {"client_id": deployment.client_id("strict"),
                                                          "request": _object(deployment, strict, alg="PS256")}))
    assert refused["error"] == "invalid_request_object" and left_out in refused["error_description"], refused


def test_an_object_is_used_once_and_a_refused_request_spends_nothing(deployment, device):
    claims = _claims(deployment, "signed", prompt="select_account")        # a prompt value not supported
    refused = _query(deployment, "signed", request=_object(deployment, claims))
    for _ in range(2):  # the request is refused after the object checked out: its jti is not spent
        assert _at_app(deployment, _authorize(deployment, refused))["error"] == "invalid_request"
    good = _query(deployment, "signed", request=_object(deployment, _claims(deployment, "signed")))
    assert _sign_in_page(_authorize(deployment, good, browser=device))
    again = _at_app(deployment, _authorize(deployment, good, browser=device))
    assert again["error"] == "invalid_request_object" and again["state"] == "inside"


class _Fields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields = "", {}

    def handle_starttag(self, tag, attrs):
        named = dict(attrs)
        if tag == "form":
            self.action = named.get("action") or ""
        elif tag == "input":
            self.fields[named.get("name") or ""] = named.get("value") or ""


def test_an_error_comes_in_the_response_mode_the_object_asked_for(deployment):
    expired = _claims(deployment, "signed", response_mode="form_post", exp=int(time.time()) - 3600)
    response = _authorize(deployment, _query(deployment, "signed", state="outside",
                                             request=_object(deployment, expired)))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html"), response.text
    page = _Fields()
    page.feed(response.text)
    assert page.action == REDIRECT and page.fields["error"] == "invalid_request_object", page.fields
    assert page.fields["state"] == "inside" and page.fields["iss"] == deployment.issuer
    unreadable = _authorize(deployment, _query(deployment, "signed", state="outside", request="not.an.object"))
    assert _at_app(deployment, unreadable)["state"] == "outside"     # nothing read: the query's mode and state


def test_unsigned_objects_only_from_the_app_that_allows_them(deployment, device):
    for name in ("unsigned", "signed", "strict", "plain"):
        claims = _claims(deployment, name)
        sent = _query(deployment, name, request=unsigned({k: v for k, v in claims.items() if k != "verifier"}))
        response = _authorize(deployment, sent, browser=device)
        if name == "unsigned":
            assert _redeemed(deployment, name, device, response, claims["verifier"])["answer"]["state"] == "inside"
        else:
            assert _at_app(deployment, response)["error"] == "invalid_request_object", name


def test_an_app_that_requires_signed_objects_signs_with_its_one_algorithm_only(deployment, device):
    strict = "strict"
    plain_query = _query(deployment, strict, state="s", code_challenge=pkce_pair()[1], code_challenge_method="S256")
    assert _at_app(deployment, _authorize(deployment, plain_query))["error"] == "invalid_request"
    rs256 = _query(deployment, strict, request=_object(deployment, _claims(deployment, strict), alg="RS256"))
    assert _at_app(deployment, _authorize(deployment, rs256))["error"] == "invalid_request_object"
    claims = {k: v for k, v in _claims(deployment, strict).items() if k != "nonce"}
    # the query's parameters are ignored but the client_id: a nonce added to the URL is not the app's
    sent = _query(deployment, strict, nonce="added-on-the-way", request=_object(deployment, claims, alg="PS256"))
    flow = _redeemed(deployment, strict, device, _authorize(deployment, sent, browser=device), claims["verifier"])
    assert "nonce" not in flow["id_token"] and flow["answer"]["state"] == "inside"


def _push(deployment: Deployment, name: str, form: dict[str, str]) -> requests.Response:
    return _back_channel(deployment, name, "/oidc/par", form)


def test_a_pushed_request_may_be_a_request_object(deployment, device):
    claims = _claims(deployment, "strict")
    request_object = _object(deployment, claims, alg="PS256")
    pushed = _push(deployment, "strict", {"client_id": deployment.client_id("strict"), "request": request_object})
    assert pushed.status_code == 201, pushed.text
    replayed = _push(deployment, "strict", {"request": request_object})
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_request_object"
    plain = _push(deployment, "strict", {k: v for k, v in _query(deployment, "strict").items()})
    assert plain.status_code == 400 and plain.json()["error"] == "invalid_request"   # signed only, also at PAR
    expired = _object(deployment, {**_claims(deployment, "signed"), "exp": int(time.time()) - 3600})
    refused = _push(deployment, "signed", {"request": expired})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request_object"
    sent = {"client_id": deployment.client_id("strict"), "request_uri": pushed.json()["request_uri"]}
    flow = _redeemed(deployment, "strict", device, _authorize(deployment, sent, browser=device), claims["verifier"])
    assert flow["id_token"]["nonce"] == claims["nonce"] and flow["answer"]["state"] == "inside"


def test_an_object_by_reference_from_a_registered_request_uri(deployment, device):
    claims = _claims(deployment, "signed")
    deployment.published.answers["/objects/signed"] = ("ok", _object(deployment, claims, alg="EdDSA").encode())
    sent = {"client_id": deployment.client_id("signed"), "request_uri": deployment.published_at + "/objects/signed#v1"}
    flow = _redeemed(deployment, "signed", device, _authorize(deployment, sent, browser=device), claims["verifier"])
    assert flow["answer"]["state"] == "inside"
    for uri in (deployment.published_at + "/objects/other", "https://app.example/objects/signed"):  # not registered
        answer = _at_app(deployment, _authorize(deployment, _query(deployment, "signed", state="q", request_uri=uri)))
        assert answer["error"] == "invalid_request_uri" and answer["state"] == "q"
        assert "/objects/other" not in deployment.published.fetched         # never fetched


@pytest.mark.parametrize("mode", ["html", "404", "redirect", "huge", "drip", "hang"])
def test_a_request_uri_whose_server_fails_is_invalid_request_uri_at_the_app(deployment, mode):
    """The wrong type, a 404, a redirect (not followed), an endless body, a byte at a time, no answer:
    the app hears invalid_request_uri with its state, never a 500 or a request that hangs."""
    deployment.published.answers["/objects/fault"] = (mode, deployment.published_at.encode() + b"/objects/signed")
    faulty = _query(deployment, "signed", state="q", request_uri=deployment.published_at + "/objects/fault")
    answer = _at_app(deployment, _authorize(deployment, faulty))
    assert answer["error"] == "invalid_request_uri" and answer["state"] == "q", answer


def test_what_is_an_error_page(deployment):
    request_object = _object(deployment, _claims(deployment, "signed"))
    for params in ({"client_id": "app_nobody", "request": request_object}, {"request": request_object},
                   {"client_id": deployment.client_id("signed"), "request": request_object,
                    "redirect_uri": "https://app.example/callback#x"}):
        response = _authorize(deployment, params)
        assert response.status_code == 400 and response.headers["Content-Type"].startswith("text/html"), params
    both = _query(deployment, "signed", state="q", request=request_object,
                  request_uri=deployment.published_at + "/objects/signed")
    assert _at_app(deployment, _authorize(deployment, both))["error"] == "invalid_request"
