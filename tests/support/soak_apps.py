"""The soak's apps (SPEC §14): OpenID Connect apps that the soak's devices sign in to on either
process, as an app's users would. Their refresh tokens are sent again as a lost answer's retry or by
two tabs at once (inside the grace: the same successor pair, nothing ended) and, now and then, once
more after the grace (that app's grant ends, the app is told, the session lives on); codes are
replayed at the other process (the replay revokes what the first use gave, and the app is told); new
apps are added while the soak runs. What the checker then asks: every app given an ID token of a
session that ended, or whose grant a replay or a late reuse revoked, received its Back-Channel Logout
token (none lost), and no session ended by a refresh race."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jwt
import requests

from citylogin.client.api import Client
from tests.support.oidc import authorize_url, http_of, pkce_pair, query_of

REDIRECT = "https://app.soak.example/callback"
SCOPE = "openid offline_access"
GRACE_MARGIN = 3  # seconds past CITYLOGIN_REFRESH_REUSE_GRACE before a reuse counts as late


def add_app(env: dict[str, str], name: str, *extra: str) -> dict[str, str]:
    """`citylogin apps add NAME --json ...` as an operator runs it: the app's credentials."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | env
    done = subprocess.run([sys.executable, "-m", "citylogin", "apps", "add", name, "--json", *extra], env=full,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@dataclass
class HeldGrant:
    """What one app holds of one session: its newest tokens, and the refresh tokens they replaced with
    when each was replaced."""
    app: dict[str, str]
    session_id: str
    access_token: str
    refresh_token: str
    replaced: list[tuple[str, float]] = field(default_factory=list)


class AppTraffic:
    """The apps' side of the soak; `step(client)` runs one app operation for a signed-in device."""

    def __init__(self, urls: list[str], rng: random.Random, *, grace: float, ops: Counter, errors: list[str],
                 lock: threading.Lock) -> None:
        self.urls, self.random, self.grace = urls, rng, grace
        self.ops, self.errors, self.lock = ops, errors, lock
        self.apps: list[dict[str, str]] = []
        self.held: list[HeldGrant] = []
        self.issued: set[tuple[str, str]] = set()  # (client_id, sid): an ID token was given
        self.revoked: set[tuple[str, str]] = set()  # grants a replay or a late reuse ended

    # --- the apps ------------------------------------------------------------------------------

    def add(self, env: dict[str, str], receiver: str) -> None:
        app = add_app(env, f"soak-oidc-{len(self.apps)}", "--redirect-uri", REDIRECT,
                      "--backchannel-logout-uri", receiver + "/backchannel")
        with self.lock:
            self.apps.append(app)
            self.ops["app_added"] += 1

    def keep_adding(self, env: dict[str, str], receiver: str, *, every: float, until: float) -> threading.Thread:
        """A thread adding a new app every `every` seconds until the monotonic `until`."""
        def adding() -> None:
            while time.monotonic() + every < until:
                time.sleep(every)
                try:
                    self.add(env, receiver)
                except subprocess.SubprocessError as error:
                    self.errors.append(f"apps add failed: {error}")
        thread = threading.Thread(target=adding, daemon=True)
        thread.start()
        return thread

    # --- one operation -------------------------------------------------------------------------

    def step(self, client: Client) -> None:
        if self.random.random() < 0.4:
            grant = self.sign_in(client)
            if grant is not None:
                self._give_back(grant)
        else:
            self.refresh()

    def sign_in(self, client: Client, *, replay_chance: float = 0.2) -> HeldGrant | None:
        """The device signs in to an app (single sign-on on its session); the app redeems the code, and
        now and then (`replay_chance`) the code is replayed at any process; the grant the app holds."""
        with self.lock:
            if not self.apps or not client.access_token:
                return
            app = self.random.choice(self.apps)
        verifier, challenge = pkce_pair()
        # In the device's own browser (its cookie jar): the request is bound to the browser that started it.
        asked = http_of(client).get(authorize_url(self.random.choice(self.urls), response_type="code",
                                                  client_id=app["client_id"], redirect_uri=REDIRECT, scope=SCOPE,
                                                  state="soak", code_challenge=challenge,
                                                  code_challenge_method="S256"),
                                    allow_redirects=False, timeout=30)
        if asked.status_code != 303:
            self._error("authorize", asked)
            return None
        request_id = urlsplit(asked.headers["Location"]).fragment.removeprefix("oidc=")
        finished = client.request("POST", "/oidc/authorize/complete", json={"request": request_id, "consent": False})
        if finished.status_code == 401:
            return None  # the device's session ended meanwhile
        if finished.status_code != 200:
            self._error("authorize/complete", finished)
            return None
        code = query_of(finished.json()["redirect_to"])["code"]
        first = self._redeem(app, code, verifier)
        self._count("app_sign_in")
        if first.status_code == 400 and first.json().get("error") == "invalid_grant":
            return None  # the session ended between the sign-in and the redemption
        if first.status_code != 200:
            self._error("token (code)", first)
            return None
        tokens = first.json()
        session_id = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]
        with self.lock:
            self.issued.add((app["client_id"], session_id))
        if self.random.random() < replay_chance:
            self.replay(app, code, verifier, session_id, tokens)
            return None
        return HeldGrant(app, session_id, tokens["access_token"], tokens["refresh_token"])

    def replay(self, app: dict[str, str], code: str, verifier: str, session_id: str, tokens: dict) -> None:
        """The code again, at any process: refused, and what it gave is revoked (the app is told)."""
        self._count("code_replay")
        again = self._redeem(app, code, verifier)
        if again.status_code != 400 or again.json().get("error") != "invalid_grant":
            return self._error("a replayed code", again)
        with self.lock:
            self.revoked.add((app["client_id"], session_id))
        if self._userinfo(tokens["access_token"]).status_code != 401:
            self.errors.append("an access token of a replayed code still opens userinfo")

    def refresh(self, grant: HeldGrant | None = None) -> HeldGrant | None:
        """One app's refresh (of a held grant, given back after): once, a retry of the same token, or two
        tabs at once on both processes; the grant with its new tokens, or None once it has ended."""
        keep = grant is None
        grant = grant or self._take()
        if grant is None:
            return None
        mode = self.random.choice(["once", "retry", "race"])
        self._count(f"app_refresh_{mode}")
        if mode == "once":
            answers = [self._refresh(grant.app, grant.refresh_token)]
        elif mode == "retry":
            answers = [self._refresh(grant.app, grant.refresh_token) for _ in range(2)]
        else:
            answers = self._at_once(grant.app, grant.refresh_token)
        if any(a.status_code not in (200, 400) for a in answers):
            self._error("token (refresh)", next(a for a in answers if a.status_code != 200))
            return None
        good = [a.json() for a in answers if a.status_code == 200]
        if not good:
            return None  # the session or the grant ended meanwhile: the grant is let go
        pairs = {(g["access_token"], g["refresh_token"]) for g in good}
        if len(pairs) > 1:
            self.errors.append("the same refresh token inside the grace got two different successor pairs")
        if len(good) < len(answers) and self._userinfo(good[0]["access_token"]).status_code == 200:
            self.errors.append("a refresh token sent again inside the grace was refused while its grant lived")
        renewed = HeldGrant(grant.app, grant.session_id, good[0]["access_token"], good[0]["refresh_token"],
                            [*grant.replaced, (grant.refresh_token, time.time())])
        if keep:
            self._give_back(renewed)
        return renewed

    def keep_reusing_late(self, steady: Client, *, until: float) -> threading.Thread:
        """A thread in which a device nobody else touches (its session lives through the soak) signs in to
        an app, refreshes, and after the grace sends the replaced refresh token again, over and over: each
        time that app's grant ends (its tokens refused, the app told) and the device's session goes on."""
        def reusing() -> None:
            while time.monotonic() + self.grace + GRACE_MARGIN < until:
                grant = self.sign_in(steady, replay_chance=0)
                renewed = self.refresh(grant) if grant else None
                if renewed is None:
                    self.errors.append("the steady device could not sign in to an app and refresh")
                    return
                time.sleep(self.grace + GRACE_MARGIN)
                self.late_reuse(steady, renewed)
        thread = threading.Thread(target=reusing, daemon=True)
        thread.start()
        return thread

    def late_reuse(self, steady: Client, grant: HeldGrant) -> None:
        """The grant's replaced refresh token, sent well after the grace: that app's grant ends, and the
        device's citylogin session is not touched."""
        self._count("app_late_reuse")
        answer = self._refresh(grant.app, grant.replaced[-1][0])
        if answer.status_code != 400 or answer.json().get("error") != "invalid_grant":
            return self._error("a late reuse", answer)
        with self.lock:
            self.revoked.add((grant.app["client_id"], grant.session_id))
        if self._userinfo(grant.access_token).status_code != 401:
            self.errors.append("an app's access token still opens userinfo after a late refresh reuse")
        if steady.request("GET", "/session/me").status_code != 200:
            self.errors.append("a late refresh reuse by an app ended the device's citylogin session")

    # --- the checker's questions -----------------------------------------------------------------

    def owed(self, ended_sessions: set[str]) -> set[tuple[str, str]]:
        """(client_id, sid) of every logout token the apps must receive."""
        return {pair for pair in self.issued if pair[1] in ended_sessions} | self.revoked

    # --- HTTP ----------------------------------------------------------------------------------

    def _redeem(self, app: dict[str, str], code: str, verifier: str) -> requests.Response:
        return requests.post(self.random.choice(self.urls) + "/oidc/token", timeout=30, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
            auth=(app["client_id"], app["client_secret"]))

    def _refresh(self, app: dict[str, str], refresh_token: str, url: str | None = None) -> requests.Response:
        return requests.post((url or self.random.choice(self.urls)) + "/oidc/token", timeout=30,
                             data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                             auth=(app["client_id"], app["client_secret"]))

    def _at_once(self, app: dict[str, str], refresh_token: str) -> list[requests.Response]:
        answers: list[requests.Response] = []
        start = threading.Barrier(len(self.urls))

        def send(url: str) -> None:
            start.wait()
            answer = self._refresh(app, refresh_token, url)
            with self.lock:
                answers.append(answer)
        threads = [threading.Thread(target=send, args=(url,)) for url in self.urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def _userinfo(self, access_token: str) -> requests.Response:
        return requests.get(self.random.choice(self.urls) + "/oidc/userinfo", timeout=30,
                            headers={"Authorization": f"Bearer {access_token}"})

    def _take(self) -> HeldGrant | None:
        """A held grant, taken out so that no other worker uses it meanwhile."""
        with self.lock:
            if not self.held:
                return None
            grant = self.random.choice(self.held)
            self.held.remove(grant)
            return grant

    def _give_back(self, grant: HeldGrant) -> None:
        with self.lock:
            self.held.append(grant)

    def _count(self, op: str) -> None:
        with self.lock:
            self.ops[op] += 1

    def _error(self, what: str, response: requests.Response) -> None:
        self.errors.append(f"{what} answered {response.status_code}: {response.text[:200]}")


def received_logouts(receiver: str) -> set[tuple[str, str]]:
    """(aud, sid) of every Back-Channel Logout token the receiver kept (a receiver deduplicates)."""
    kept = requests.get(receiver + "/received", timeout=10).json()["sets"]
    pairs = set()
    for token in kept:
        claims = jwt.decode(token, options={"verify_signature": False})
        if "http://schemas.openid.net/event/backchannel-logout" in claims.get("events", {}):
            pairs.add((claims["aud"], claims["sid"]))
    return pairs
