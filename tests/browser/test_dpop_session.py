"""The web UI's session is bound to the browser's device key (SPEC §12), read off Chromium's own network
log: login, refresh, every API call and the live event stream carry a DPoP proof for exactly that
request, the token goes as `Authorization: DPoP`, and no access or refresh token is in any URL. The
stream is what tells the page, when another device logs in with force, why it was logged out."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from playwright.sync_api import Route, expect

from citylogin.client.api import Client
from common.crypto import dpop
from tests.conftest import unique_name
from tests.support.live import PASSWORD

TOKEN_ISSUERS = ("/login/", "/login/confirm", "/session/refresh")
# The SDK instance the web UI uses: the same module URL gives the page's own instance.
REFRESH = """async () => {
  const { citylogin } = await import("/web/api.js");
  const before = citylogin.session.accessToken;
  await citylogin.refresh();
  return { before, after: citylogin.session.accessToken, tokenType: citylogin.session.tokenType };
}"""


@dataclass
class NetworkLog:
    """Every request the page made (method, URL, headers, when) and the answers that issued tokens."""

    requests: list[tuple[str, str, dict[str, str], int]] = field(default_factory=list)
    token_answers: list[dict] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("request", lambda r: self.requests.append((r.method, r.url, r.headers, int(time.time()))))
        # Read at once: a reload drops the bodies of the earlier document's answers.
        page.on("response", lambda r: self.token_answers.append(r.json())
                if urlsplit(r.url).path in TOKEN_ISSUERS and r.status == 200 else None)

    def to(self, path: str) -> list[tuple[str, str, dict[str, str], int]]:
        return [entry for entry in self.requests if urlsplit(entry[1]).path == path]

    def issued_tokens(self) -> list[tuple[str, str]]:
        """(access token, refresh token) of each login, confirm and refresh, read from the answers."""
        return [(body["access_token"], body["refresh_token"]) for body in self.token_answers]


def assert_proof_fits(method: str, url: str, headers: dict[str, str], sent_at: int) -> None:
    """The request's DPoP proof is signed, for this method and URL, fresh, and bound to its token."""
    proof, _key = dpop.read_proof(headers["dpop"])
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if token:
        assert scheme == "DPoP", (method, url, scheme)
    dpop.check_proof(proof, method=method, urls=[url], now=sent_at, access_token=token or None)
    assert proof.jti and proof.htu == url.split("?", 1)[0]


def test_login_refresh_calls_and_stream_are_dpop_bound_and_no_token_is_in_a_url(make_server, new_device):
    url, _ = make_server()
    a = new_device(url)
    log = NetworkLog()
    log.watch(a.page)
    a.open()
    user = unique_name()
    a.register(user, device_name="Chromium laptop")
    other = Client(url)
    other.pair(a.show_pairing_code(), username=user, password=PASSWORD, device_name="Python laptop")
    a.log_out()
    a.log_in(user)                                           # through the login form
    a.expect_devices_screen()

    rotated = a.page.evaluate(REFRESH)                       # the SDK's refresh, as a token's expiry would
    assert rotated["tokenType"] == "DPoP" and rotated["after"] != rotated["before"]
    with a.page.expect_response(lambda r: r.url.endswith("/device/list")) as listed:
        a.refresh_devices()                                  # an API call with the new token
    assert listed.value.ok
    expect(a.device("Python laptop")).to_be_visible()
    a.page.reload()                                          # the key from IndexedDB signs the refresh that resumes
    a.expect_devices_screen()
    expect(a.device("Python laptop")).to_be_visible()

    other.login(PASSWORD, force=True)                        # logs the browser out: it hears why on its stream
    expect(a.banner).to_contain_text("Signed in on another device", timeout=5000)
    a.expect_login_screen()

    logins, refreshes, streams = log.to("/login/"), log.to("/session/refresh"), log.to("/session/events")
    # Logins: registration's and the form's; refreshes: the SDK's and the reload's; a stream for each.
    assert len(logins) == 2 and len(refreshes) == 2 and len(streams) >= 2
    assert all("dpop" in entry[2] for entry in (*logins, *refreshes, *streams))
    proofs = [entry for entry in log.requests if "dpop" in entry[2]]
    for method, request_url, headers, sent_at in proofs:
        assert_proof_fits(method, request_url, headers, sent_at)
    assert len({dpop.read_proof(entry[2]["dpop"])[0].jti for entry in proofs}) == len(proofs)   # each one new
    with_token = [entry for entry in log.requests if "authorization" in entry[2]]
    assert with_token and all(entry[2]["authorization"].startswith("DPoP ") for entry in with_token)
    assert all("dpop" in entry[2] for entry in with_token)
    assert any(urlsplit(entry[1]).path == "/device/list" for entry in with_token)

    tokens = {token for pair in log.issued_tokens() for token in pair}
    assert len(tokens) == 8                                  # two logins and two refreshes, each a new pair
    assert not [entry[1] for entry in log.requests if any(token in entry[1] for token in tokens)]
    assert all(urlsplit(entry[1]).query == "" for entry in streams)


def test_a_401_use_dpop_nonce_is_answered_once_with_the_servers_nonce(make_server, new_device):
    url, _ = make_server()
    a = new_device(url)
    log = NetworkLog()
    log.watch(a.page)
    demanded: list[str] = []

    def ask_for_a_nonce_once(route: Route) -> None:
        if demanded:
            route.continue_()
            return
        # A current nonce of this server (POST /login/challenge hands one out), as a server that
        # demands nonces would send it with its 401.
        demanded.append(requests.post(url + "/login/challenge", json={}, timeout=10).headers["DPoP-Nonce"])
        route.fulfill(status=401, content_type="application/problem+json",
                      headers={"DPoP-Nonce": demanded[0], "WWW-Authenticate": 'DPoP error="use_dpop_nonce"'},
                      body=json.dumps({"status": 401, "code": "use_dpop_nonce", "title": "Use the DPoP nonce"}))

    a.page.route("**/device/list", ask_for_a_nonce_once)
    a.open()
    a.register(unique_name(), device_name="Alice laptop")    # its device list is the first call refused
    expect(a.device("Alice laptop")).to_be_visible()
    a.tab("Sessions")
    expect(a.page.locator("#session-rows tr")).to_have_count(1)

    first, again = (dpop.read_proof(entry[2]["dpop"])[0] for entry in log.to("/device/list")[:2])
    assert first.nonce is None and again.nonce == demanded[0] and again.jti != first.jti
    later = dpop.read_proof(log.to("/session/list")[0][2]["dpop"])[0]
    assert later.nonce                                       # the server's latest DPoP-Nonce, from then on
