"""A browser's part of the OpenID Connect code flow, as the web UI plays it (SPEC §14): follow the
app's authorization request to citylogin's sign-in page, and finish it with the device's session. The
browser is the device's own HTTP session (its cookie jar): /oidc/authorize binds the request to the
browser that started it by a cookie, which the device's calls then carry as a browser's would."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from requests.cookies import RequestsCookieJar

from citylogin.client.api import Client
from citylogin.client.keys import sign_challenge
from oidc.authorization.browser_binding import COOKIE_PREFIX


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) of RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


Browser = Client | requests.Session  # a device's HTTP session, or a cookie jar of its own (a browser)
LOOPBACK_DOMAINS = frozenset({"127.0.0.1", "localhost.local"})  # how http.cookiejar names a loopback host


class LoopbackJar(RequestsCookieJar):
    """A browser's rule for a loopback server: it is a secure context, so a Secure cookie it set (a server
    whose CITYLOGIN_PUBLIC_URL is https, reached on a test's plain http socket) is sent back to it over
    http, where http.cookiejar would keep it for https alone."""

    def set_cookie(self, cookie, *args, **kwargs):
        if cookie.domain in LOOPBACK_DOMAINS:
            cookie.secure = False
        return super().set_cookie(cookie, *args, **kwargs)


def http_of(browser: Browser) -> requests.Session:
    """The browser's HTTP session, its cookie jar keeping a browser's rule for loopback servers."""
    http = browser.http if isinstance(browser, Client) else browser
    if not isinstance(http.cookies, LoopbackJar):
        jar = LoopbackJar()
        jar.update(http.cookies)
        http.cookies = jar
    return http


def sign_in_page_request(authorize_url: str, *, browser: Browser) -> str:
    """The request id the authorization endpoint sends `browser` to the sign-in page with (its cookie for
    the request stays in the browser's jar)."""
    response = http_of(browser).get(authorize_url, allow_redirects=False, timeout=10)
    assert response.status_code == 303, (response.status_code, response.text)
    fragment = urlsplit(response.headers["Location"]).fragment
    assert fragment.startswith("oidc="), response.headers["Location"]
    return fragment.removeprefix("oidc=")


def finish_as_device(device: Client, request_id: str, *, consent: bool = False) -> str:
    """What the signed-in web UI does: finish the request with the device's session; the redirect."""
    response = device.request("POST", "/oidc/authorize/complete", json={"request": request_id, "consent": consent})
    assert response.status_code == 200, response.text
    return response.json()["redirect_to"]


def authorize_url(base_url: str, **params: str) -> str:
    return f"{base_url}/oidc/authorize?{urlencode(params)}"


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def waiting_request(url: str, client_id: str, *, redirect_uri: str, browser: Browser, scope: str = "openid",
                    **extra: str) -> tuple[str, str]:
    """(the sign-in page's request id, its PKCE verifier): a fresh authorization request with PKCE S256,
    started by `browser` and waiting for it."""
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return sign_in_page_request(authorize_url(url, **params), browser=browser), verifier


def code_for(url: str, client_id: str, device: Client, *, redirect_uri: str, scope: str = "openid",
             **extra: str) -> tuple[str, str]:
    """(a code the device's session gives the app, its PKCE verifier): the authorization request in the
    device's browser, the sign-in page's request id, the device finishing it."""
    request_id, verifier = waiting_request(url, client_id, redirect_uri=redirect_uri, browser=device, scope=scope,
                                           **extra)
    return query_of(finish_as_device(device, request_id))["code"], verifier


def signed_in_tokens(url: str, credentials, device: Client, *, redirect_uri: str, scope: str = "openid",
                     **extra: str) -> dict:
    """The tokens a confidential app gets for the device's session (the code redeemed at once)."""
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=redirect_uri, scope=scope, **extra)
    issued = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": redirect_uri, "code_verifier": verifier},
                           auth=(credentials.app.client_id, credentials.client_secret), timeout=10)
    assert issued.status_code == 200, issued.text
    return issued.json()


SIGN_OUT_PURPOSE = "citylogin-sign-out:"


def sign_out_page_request(location: str) -> str:
    """The handle /oidc/logout sends the browser to the sign-out page with (its 303's Location)."""
    fragment = urlsplit(location).fragment
    assert fragment.startswith("oidc-logout="), location
    return fragment.removeprefix("oidc-logout=")


def sign_out_as_device(url: str, device: Client, request_id: str, *, confirm: bool = False,
                       purpose: str = SIGN_OUT_PURPOSE, challenge: str | None = None) -> requests.Response:
    """What the sign-out page does: the device signs a fresh challenge for the app's logout request."""
    challenge = challenge or requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    return requests.post(url + "/oidc/logout/device", timeout=10, json={
        "request": request_id, "client_cert": device.key_file.client_cert_b64(), "challenge": challenge,
        "signature": sign_challenge(device.key_file.private_key(), challenge, purpose=purpose), "confirm": confirm})


ERROR_PAGE_CODE = re.compile(r'<main class="oidc-page" data-error="(?P<error>[a-z_]+)">')


def error_page(response: requests.Response, *, lang: str = "en") -> str:
    """An error page /oidc shows the person (SPEC §14): 400, HTML in `lang`, never a redirect, a link to
    citylogin's home, no inline script and nothing stored; the OAuth error it names for the developer."""
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("text/html"), response.headers["Content-Type"]
    assert "Location" not in response.headers and response.headers["Cache-Control"] == "no-store"
    assert f'<html lang="{lang}">' in response.text and response.headers["Content-Language"] == lang
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "<script>" not in response.text
    assert re.search(r'<a href="https?://[^"/]+/">', response.text), response.text
    found = ERROR_PAGE_CODE.search(response.text)
    assert found, response.text[:500]
    return found["error"]


def stolen_request_cookies(source: Browser, target: Browser) -> None:
    """`target` gets a copy of every authorization request cookie of `source` (a thief who took the
    cookie along with a request's id): for checks that hold even then."""
    for cookie in http_of(source).cookies:
        if cookie.name.startswith(COOKIE_PREFIX):
            http_of(target).cookies.set_cookie(cookie)
