"""The OpenID client of the peer bench (bench/peer_bench.py): the same code drives citylogin and
node-oidc-provider, each found by its discovery document, over keep-alive connections (one
requests.Session per thread). Only the person's part of a sign-in differs, one adapter per side:
citylogin's signed-in device completes the request (POST /oidc/authorize/complete, as its web UI
does), node-oidc-provider's bench-only route logs an account in (bench/peer/server.mjs).

Each measured call builds its request (PKCE pair, DPoP proof, Basic credentials, body) before its
clock starts, times the exchange alone, then checks that the answer is what the row measures: it
returns the latency in seconds, or None when the answer was not."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Callable, Protocol
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import requests

from citylogin.client.api import Client

REDIRECT = "https://bench.example/callback"
SCOPE = "openid profile offline_access"
DISCOVERY = "/.well-known/openid-configuration"
TIMEOUT = 30
REDIRECTS = (302, 303)

Call = Callable[[], "float | None"]


def http_session() -> requests.Session:
    """Keep-alive, and straight to 127.0.0.1 whatever the proxy variables say."""
    session = requests.Session()
    session.trust_env = False
    return session


@dataclass(frozen=True)
class Side:
    """One provider as its client knows it: a name, its base URL, the app's credentials, and the
    endpoints its discovery document names."""
    name: str
    base_url: str
    client_id: str
    client_secret: str
    endpoints: dict[str, str]

    @classmethod
    def discover(cls, name: str, base_url: str, app: dict[str, str]) -> Side:
        answer = http_session().get(base_url + DISCOVERY, timeout=TIMEOUT)
        answer.raise_for_status()
        meta = answer.json()
        endpoints = {kind: meta[f"{kind}_endpoint"] for kind in ("authorization", "token", "userinfo", "introspection")}
        return cls(name=name, base_url=base_url, client_id=app["client_id"], client_secret=app["client_secret"],
                   endpoints=endpoints | {"discovery": base_url + DISCOVERY})

    @property
    def basic(self) -> dict[str, str]:
        """client_secret_basic: the id and secret form-encoded, then base64 (RFC 6749 §2.3.1)."""
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return cls(verifier, challenge)


class SignIn(Protocol):
    """The person's part of a sign-in, between the authorization request's answer and the redirect
    to the app with the code."""

    def prepare(self, side: Side) -> dict:
        """What can be made before the clock starts (a proof by the device's key)."""
        ...

    def finish(self, http: requests.Session, side: Side, answer: requests.Response, prepared: dict) -> str:
        """The redirect URI with the code, from the authorization endpoint's answer."""
        ...


class DeviceSignIn:
    """citylogin: the browser lands on the sign-in page (…#oidc=<request>), and the device, signed in,
    completes the request with its own session."""

    def __init__(self, device: Client) -> None:
        self.device = device

    def prepare(self, side: Side) -> dict:
        # A published run outlasts the device's access token (15 minutes): its session is refreshed
        # before the token runs out, here, before any clock starts.
        self.device.refresh_if_due()
        url = side.base_url + "/oidc/authorize/complete"
        return {"url": url, "headers": {**self.device.auth_headers("POST", url), "Content-Type": "application/json"}}

    def finish(self, http: requests.Session, side: Side, answer: requests.Response, prepared: dict) -> str:
        _expect(answer, REDIRECTS, "authorize")
        request_id = urlsplit(answer.headers["Location"]).fragment.removeprefix("oidc=")
        done = http.post(prepared["url"], headers=prepared["headers"], data=json.dumps({"request": request_id}),
                         timeout=TIMEOUT)
        _expect(done, (200,), "authorize/complete")
        return done.json()["redirect_to"]


class AccountSignIn:
    """node-oidc-provider: its interaction, finished by the bench-only route with an account id
    (login and consent), then the authorization resumed. A fresh cookie jar per sign-in, as a new
    browser: every sign-in is a whole interaction, never the last one's session."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def prepare(self, side: Side) -> dict:
        return {"data": {"accountId": self.account_id}}

    def finish(self, http: requests.Session, side: Side, answer: requests.Response, prepared: dict) -> str:
        _expect(answer, REDIRECTS, "authorize")
        interaction = urljoin(side.base_url, answer.headers["Location"])
        finished = http.post(interaction + "/login", data=prepared["data"], allow_redirects=False, timeout=TIMEOUT)
        _expect(finished, REDIRECTS, "interaction")
        resumed = http.get(urljoin(side.base_url, finished.headers["Location"]), allow_redirects=False,
                           timeout=TIMEOUT)
        _expect(resumed, REDIRECTS, "resume")
        return resumed.headers["Location"]


class CookieSignIn:
    """The provider floor (bench/peer_floor.py): the person is signed in at the provider (a cookie, as a
    browser is), and one request lets the app in: GET /authorize -> 303 /floor/signin?request=... -> 303
    to the redirect URI with the code."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def prepare(self, side: Side) -> dict:
        return {"cookies": {"floor_account": self.account_id}}

    def finish(self, http: requests.Session, side: Side, answer: requests.Response, prepared: dict) -> str:
        _expect(answer, REDIRECTS, "authorize")
        signed_in = http.get(urljoin(side.base_url, answer.headers["Location"]), cookies=prepared["cookies"],
                             allow_redirects=False, timeout=TIMEOUT)
        _expect(signed_in, REDIRECTS, "sign-in")
        return signed_in.headers["Location"]


class Refused(RuntimeError):
    """An answer that is not what the step expects."""


def _expect(answer: requests.Response, statuses: tuple[int, ...], step: str) -> None:
    if answer.status_code not in statuses:
        raise Refused(f"{step}: {answer.status_code} {answer.text[:300]}")


class OidcClient:
    """One thread's app at one provider: its own keep-alive session, and one way to sign a person in."""

    def __init__(self, side: Side, sign_in: SignIn | None = None) -> None:
        """Without `sign_in`, a client that only reads (discovery, or a token made by another)."""
        self.side, self.sign_in, self.http = side, sign_in, http_session()

    @property
    def person(self) -> SignIn:
        if self.sign_in is None:
            raise ValueError("this client signs nobody in")
        return self.sign_in

    # the steps, each a prepared request

    def _authorize(self, pkce: Pkce) -> requests.PreparedRequest:
        query = urlencode({"response_type": "code", "client_id": self.side.client_id, "redirect_uri": REDIRECT,
                           "scope": SCOPE, "code_challenge": pkce.challenge, "code_challenge_method": "S256",
                           "state": "s", "nonce": "n"})
        return self._prepare("GET", f"{self.side.endpoints['authorization']}?{query}")

    def _token(self, form: dict[str, str]) -> requests.PreparedRequest:
        return self._prepare("POST", self.side.endpoints["token"], headers=self.side.basic, data=form)

    def _prepare(self, method: str, url: str, **kwargs) -> requests.PreparedRequest:
        return self.http.prepare_request(requests.Request(method, url, **kwargs))

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        return self.http.send(prepared, allow_redirects=False, timeout=TIMEOUT)

    def code(self, pkce: Pkce, prepared: dict) -> str:
        """Authorize and the person's part: the code of the redirect to the app."""
        if isinstance(self.sign_in, AccountSignIn):
            self.http.cookies.clear()
        answer = self._send(self._authorize(pkce))
        redirect = self.person.finish(self.http, self.side, answer, prepared)
        return parse_qs(urlsplit(redirect).query)["code"][0]

    def redeem(self, code: str, pkce: Pkce) -> dict:
        answer = self._send(self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                         "code_verifier": pkce.verifier}))
        _expect(answer, (200,), "token")
        return answer.json()

    def tokens(self) -> dict:
        """A whole sign-in, untimed: the token endpoint's answer (access, refresh and ID token)."""
        pkce = Pkce.new()
        return self.redeem(self.code(pkce, self.person.prepare(self.side)), pkce)

    def codes(self, count: int) -> list[tuple[str, Pkce]]:
        """`count` codes, each with its PKCE pair, made now to be redeemed later (within their 60 s)."""
        made = []
        for _ in range(count):
            pkce = Pkce.new()
            made.append((self.code(pkce, self.person.prepare(self.side)), pkce))
        return made

    # the measured calls: the latency in seconds, or None if the answer is not what the row measures

    def refresh_call(self, refresh_token: str) -> Call:
        """The refresh grant, rotating this thread's own grant; its answer must carry an ID token."""
        held = [refresh_token]

        def call() -> float | None:
            prepared = self._token({"grant_type": "refresh_token", "refresh_token": held[0]})
            answer, took = self._timed(prepared)
            if answer.status_code != 200:
                return None
            body = answer.json()
            held[0] = body["refresh_token"]
            return took if body.get("id_token") else None
        return call

    def code_call(self, codes: list[tuple[str, Pkce]]) -> Call:
        """Each call redeems the next of `codes` (made beforehand)."""
        pending = list(reversed(codes))

        def call() -> float | None:
            code, pkce = pending.pop()
            prepared = self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                    "code_verifier": pkce.verifier})
            answer, took = self._timed(prepared)
            return took if answer.status_code == 200 and "id_token" in answer.json() else None
        return call

    def flow_call(self) -> Call:
        """A whole code flow: authorize, the person's part, token, userinfo."""
        def call() -> float | None:
            pkce, prepared = Pkce.new(), self.person.prepare(self.side)
            started = time.perf_counter()
            try:
                tokens = self.redeem(self.code(pkce, prepared), pkce)
                answer = self._send(self._prepare("GET", self.side.endpoints["userinfo"],
                                                  headers={"Authorization": f"Bearer {tokens['access_token']}"}))
            except Refused:
                return None
            took = time.perf_counter() - started
            return took if answer.status_code == 200 else None
        return call

    def userinfo_call(self, access_token: str) -> Call:
        def call() -> float | None:
            prepared = self._prepare("GET", self.side.endpoints["userinfo"],
                                     headers={"Authorization": f"Bearer {access_token}"})
            answer, took = self._timed(prepared)
            return took if answer.status_code == 200 and answer.json().get("sub") else None
        return call

    def introspection_call(self, access_token: str) -> Call:
        """Introspection of an access token with the client's Basic credentials: it must be active."""
        def call() -> float | None:
            prepared = self._prepare("POST", self.side.endpoints["introspection"], headers=self.side.basic,
                                     data={"token": access_token})
            answer, took = self._timed(prepared)
            return took if answer.status_code == 200 and answer.json().get("active") is True else None
        return call

    def discovery_call(self) -> Call:
        def call() -> float | None:
            answer, took = self._timed(self._prepare("GET", self.side.endpoints["discovery"]))
            return took if answer.status_code == 200 and answer.json().get("issuer") else None
        return call

    def _timed(self, prepared: requests.PreparedRequest) -> tuple[requests.Response, float]:
        started = time.perf_counter()
        answer = self._send(prepared)
        return answer, time.perf_counter() - started
