"""response_mode=form_post (OAuth 2.0 Form Post Response Mode; SPEC §14) and the error pages of
/oidc/authorize and /oidc/logout: every authorization response of a form_post request — the code, the
person's refusal, the server's own refusal once the redirect URI is trusted — reaches the app as a form
the browser POSTs from a page that fits the CSP, its values escaped; a request with no trusted way back,
or a logout that does not check out, is an HTML page in the person's language with a way back."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.authorization import response_mode
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import error_page, pkce_pair, sign_in_page_request

REDIRECT = "https://app.example/callback"
AFTER_LOGOUT = "https://app.example/signed-out"
NATIVE = "com.example.notes:/callback"


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    """One all-in-one app for the module, an app registered on it, and a signed-in device."""
    config = app_settings(dynamodb_endpoint, data_dir, table_prefix)
    with app_servers(config) as start:
        url, ctx = start(host_name="127.0.0.1")
        credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(
            redirect_uris=(REDIRECT, NATIVE), post_logout_redirect_uris=(AFTER_LOGOUT,)))
        device = register_device(url)
        device.login(PASSWORD)
        yield url, ctx, credentials, device


class _Form(HTMLParser):
    """The form of a form_post page: its method, action, fields (unescaped) and whether a script is inline."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str | None] = {}
        self.fields: list[tuple[str, str]] = []
        self.inline_script = False
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.form = attributes
        elif tag == "input":
            self.fields.append((attributes["name"] or "", attributes["value"] or ""))
        elif tag == "script":
            self._in_script = True
            if attributes.get("src"):
                self.scripts.append(attributes["src"] or "")

    def handle_endtag(self, tag):
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data):
        self.inline_script = self.inline_script or (self._in_script and bool(data.strip()))


def _form_post_page(response: requests.Response) -> _Form:
    """A form_post page: 200 HTML, never stored or redirected, within a CSP with no inline script; its form."""
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("text/html") and "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    parsed = _Form()
    parsed.feed(response.text)
    assert not parsed.inline_script and parsed.scripts == ["/web/oidc_page.js"]
    assert parsed.form["method"] == "post" and parsed.form["id"] == "oidc-response"
    return parsed


def _request(client_id: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
            "state": "st", "code_challenge": challenge, "code_challenge_method": "S256", "response_mode": "form_post",
            **extra}


def _authorize(url: str, params: dict[str, str] | list[tuple[str, str]], **headers: str) -> requests.Response:
    return requests.get(f"{url}/oidc/authorize?{urlencode(params)}", allow_redirects=False, timeout=10,
                        headers=headers)


def _respond(url: str, sealed: str, **headers: str) -> requests.Response:
    return requests.post(url + "/oidc/authorize/respond", data={"response": sealed}, allow_redirects=False,
                         timeout=10, headers=headers)


def test_discovery_lists_form_post(server):
    url, *_ = server
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert metadata["response_modes_supported"] == ["query", "form_post"]


def test_the_code_reaches_the_app_as_a_post_and_redeems(server):
    url, _, credentials, device = server
    verifier, challenge = pkce_pair()
    params = {**_request(credentials.app.client_id), "code_challenge": challenge, "nonce": "n-1"}
    request_id = sign_in_page_request(f"{url}/oidc/authorize?{urlencode(params)}", browser=device)
    finished = device.request("POST", "/oidc/authorize/complete", json={"request": request_id, "consent": False})
    assert finished.status_code == 200, finished.text
    answer = finished.json()
    assert answer["redirect_to"] == REDIRECT and answer["form_post"]  # no code in any address
    page = _form_post_page(_respond(url, answer["form_post"]))
    assert page.form["action"] == REDIRECT
    fields = dict(page.fields)
    assert [name for name, _ in page.fields] == ["code", "state", "iss"] and fields["state"] == "st"
    assert fields["iss"] == url and fields["code"] not in answer["form_post"]
    issued = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": fields["code"],
                                                      "redirect_uri": REDIRECT, "code_verifier": verifier},
                           auth=(credentials.app.client_id, credentials.client_secret), timeout=10)
    assert issued.status_code == 200, issued.text
    assert "id_token" in issued.json()


def test_a_pushed_request_answers_by_form_post_too(server):
    url, _, credentials, device = server
    pushed = requests.post(url + "/oidc/par", data=_request(credentials.app.client_id), timeout=10,
                           auth=(credentials.app.client_id, credentials.client_secret))
    assert pushed.status_code == 201, pushed.text
    presented = {"client_id": credentials.app.client_id, "request_uri": pushed.json()["request_uri"]}
    sent_to = f"{url}/oidc/authorize?{urlencode(presented)}"
    finished = device.request("POST", "/oidc/authorize/complete",
                              json={"request": sign_in_page_request(sent_to, browser=device), "consent": False})
    page = _form_post_page(_respond(url, finished.json()["form_post"]))
    assert page.form["action"] == REDIRECT and {"code", "state", "iss"} == {name for name, _ in page.fields}


def test_the_persons_refusal_reaches_the_app_as_a_post(server):
    url, _, credentials, _ = server
    browser = requests.Session()                                    # nobody signed in there
    request_id = sign_in_page_request(f"{url}/oidc/authorize?{urlencode(_request(credentials.app.client_id))}",
                                      browser=browser)
    cancelled = browser.post(url + "/oidc/authorize/cancel", json={"request": request_id, "error": "access_denied"},
                             timeout=10)
    assert cancelled.status_code == 200 and cancelled.json()["redirect_to"] == REDIRECT, cancelled.text
    page = _form_post_page(_respond(url, cancelled.json()["form_post"]))
    assert page.fields == [("error", "access_denied"), ("state", "st"), ("iss", url)]


def test_the_servers_refusal_is_the_page_once_the_redirect_is_trusted(server):
    url, _, credentials, _ = server
    for odd in ({"prompt": "select_account"}, {"max_age": "soon"}, {"request": "e30.e30."}):
        page = _form_post_page(_authorize(url, _request(credentials.app.client_id, **odd)))
        fields = dict(page.fields)
        assert page.form["action"] == REDIRECT and fields["state"] == "st" and fields["iss"] == url, odd
        assert fields["error"] in ("invalid_request", "invalid_request_object") and fields["error_description"]
    # an unsupported response_mode cannot be the way its own refusal comes back: the query (the default)
    for mode in ("form_post.jwt", "fragment"):
        refused = _authorize(url, _request(credentials.app.client_id, response_mode=mode))
        assert refused.status_code == 303
        assert refused.headers["Location"].startswith(REDIRECT + "?error=invalid_request"), mode
    # a native app's own scheme takes no POST: form_post is refused there, by its query
    refused = _authorize(url, _request(credentials.app.client_id, redirect_uri=NATIVE))
    assert refused.status_code == 303 and refused.headers["Location"].startswith(NATIVE + "?error=invalid_request")


def test_every_value_on_the_page_is_escaped(server):
    url, _, credentials, _ = server
    state = "\"><script>alert(1)</script>&amp;'<"
    page = _authorize(url, _request(credentials.app.client_id, state=state, prompt="bogus"))
    assert "<script>alert" not in page.text and "&quot;&gt;&lt;script&gt;" in page.text
    assert dict(_form_post_page(page).fields)["state"] == state  # the app gets exactly what it sent


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_response_that_is_not_ours_or_is_over_is_an_error_page(server, lang):
    url, ctx, credentials, _ = server
    answer = response_mode.AuthorizationResponse(redirect_uri="https://evil.example/", fields=(("code", "x"),),
                                                 form_post=True)
    expired = response_mode.seal(ctx.refresh_secrets, answer, now=ctx.epoch() - response_mode.RESPONSE_TTL - 1)
    live = response_mode.seal(ctx.refresh_secrets, answer, now=ctx.epoch())
    kid, _, payload = live.partition(".")
    altered = f"{kid}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}"
    for bad in (expired, altered, "x" * 80, f"{kid}.{'A' * 100}", ""):
        refused = _respond(url, bad, **{"Accept-Language": lang})
        assert error_page(refused, lang=lang) == "oidc_request_unknown", bad
        assert "evil.example" not in refused.text
    assert _form_post_page(_respond(url, live)).form["action"] == "https://evil.example/"  # ours and live


AUTHORIZE_REFUSALS = {
    "unknown client": ({"client_id": "no-such-app"}, "invalid_client"),
    "unregistered redirect": ({"redirect_uri": "https://evil.example/callback"}, "invalid_request"),
    "malformed redirect": ({"redirect_uri": "https://app.example/call back#x"}, "invalid_request"),
    "unknown request_uri": ({"request_uri": "urn:ietf:params:oauth:request_uri:nothing-here"}, "invalid_request"),
}
TITLES = {"en": ("This sign-in cannot go on", "This sign-out cannot go on"),
          "ja": ("このサインインは続けられません", "このサインアウトは続けられません")}


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("case", AUTHORIZE_REFUSALS)
def test_authorize_with_no_trusted_way_back_is_a_page_in_the_persons_language(server, case, lang):
    url, _, credentials, _ = server
    changed, error = AUTHORIZE_REFUSALS[case]
    refused = _authorize(url, {**_request(credentials.app.client_id), **changed}, **{"Accept-Language": lang})
    assert error_page(refused, lang=lang) == error
    assert TITLES[lang][0] in refused.text and f'<a href="{url}/">' in refused.text
    assert "evil.example" not in refused.text  # nothing the request chose is shown


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_repeated_client_id_is_a_page_too(server, lang):
    url, _, credentials, _ = server
    sent = [*_request(credentials.app.client_id).items(), ("client_id", credentials.app.client_id)]
    assert error_page(_authorize(url, sent, **{"Accept-Language": f"{lang};q=0.9"}), lang=lang) == "invalid_request"


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_logout_that_does_not_check_out_is_a_page_in_the_persons_language(server, lang):
    url, ctx, credentials, _ = server
    hint = ctx.jwt.sign_jwt({"iss": "https://elsewhere.example", "sub": "s", "sid": "x", "aud": "a"},
                            algorithm="RS256", typ="JWT")
    for bad in ({"id_token_hint": hint}, {"id_token_hint": "not.a.jwt"}, {"client_id": "no-such-app"},
                {"client_id": credentials.app.client_id, "post_logout_redirect_uri": "https://evil.example/"}):
        refused = requests.get(url + "/oidc/logout", params=bad, allow_redirects=False, timeout=10,
                               headers={"Accept-Language": lang})
        assert error_page(refused, lang=lang) == "invalid_request", bad
        assert TITLES[lang][1] in refused.text and all(value not in refused.text for value in bad.values())
