"""The upstream OpenID Provider of the federation tests (SPEC §16): node-oidc-provider, unmodified, in its own
Node 22 process (tests/interop/upstream/server.mjs, installed by scripts/setup.sh), answering as Google, as
Apple or as a company's provider, with test hooks that say who signs in next, cancel, rotate its keys, break
an endpoint or tamper with the next ID token.

    def test_sign_in(upstream_factory):
        upstream = upstream_factory("google", clients=[client("citylogin", redirect_uri=CALLBACK)])
        upstream.next_login(sub="g-1", email="ada@example.com", email_verified=True, hd="example.com")
        answer = upstream.authorize(requests.Session(), authorization_url)   # -> Answer(method, url, params)

Registered for the whole suite (tests/conftest.py's pytest_plugins): the fixture `upstream_factory`."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests

from bench.peer_servers import node_binary  # Node 22 of the wheel, as the benchmark's peer runs
from tests.support.ports import free_port

UPSTREAM_DIR = Path(__file__).resolve().parents[1] / "interop" / "upstream"
MODES = ("google", "apple", "company")
READY_TIMEOUT_S = 60.0          # Node's start and three RSA keys on a machine at 80% load
LOCALHOST_ONLY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@dataclass(frozen=True)
class AppleKey:
    """An operator's Sign in with Apple key: the private PEM is the .p8 file the operator gives citylogin,
    the public one is what the upstream checks the JWT client secret with."""
    private_pem: str
    public_pem: str
    team_id: str = "TEAM123456"
    key_id: str = "KEY1234567"

    @classmethod
    def generate(cls, *, team_id: str = "TEAM123456", key_id: str = "KEY1234567") -> AppleKey:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(private_pem=private, public_pem=public, team_id=team_id, key_id=key_id)

    def client_secret(self, *, client_id: str, audience: str, lifetime_s: int = 3600,
                      issued_at: int | None = None) -> str:
        """A JWT client secret as Apple asks for it (ES256; kid, iss = team id, sub = client id, aud, iat, exp)."""
        from joserfc import jwt
        from joserfc.jwk import ECKey

        iat = int(time.time()) if issued_at is None else issued_at
        claims = {"iss": self.team_id, "sub": client_id, "aud": audience, "iat": iat, "exp": iat + lifetime_s}
        return jwt.encode({"alg": "ES256", "kid": self.key_id}, claims, ECKey.import_key(self.private_pem))

    def config(self, *, audience: str | None = None) -> dict[str, Any]:
        return {"public_key": self.public_pem, "team_id": self.team_id, "key_id": self.key_id,
                **({"audience": audience} if audience else {})}


def client(client_id: str = "citylogin", *, redirect_uri: str, secret: str | None = None,
           auth_method: str = "client_secret_basic", **metadata: Any) -> dict[str, Any]:
    """One client of the upstream (node-oidc-provider's client metadata). In apple mode the secret and the
    method are the upstream's own: the client authenticates with the JWT client secret."""
    return {"client_id": client_id, "client_secret": secret or secrets.token_hex(16),
            "redirect_uris": [redirect_uri], "token_endpoint_auth_method": auth_method, **metadata}


@dataclass(frozen=True)
class Answer:
    """The provider's answer to an authorization as it reaches the relying party: a GET of the redirect URI
    with the query, or (form_post) a POST of the form's fields to it."""
    method: str
    url: str                     # the redirect URI, without the query
    params: dict[str, str]

    def deliver(self, session: requests.Session, **options: Any) -> requests.Response:
        """Sends the answer to the relying party as the browser would (its redirects not followed)."""
        sent = {"params": self.params} if self.method == "GET" else {"data": self.params}
        return session.request(self.method, self.url, allow_redirects=False, timeout=30, **sent, **options)


class _Form(HTMLParser):
    """The action and hidden inputs of node-oidc-provider's form_post page."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.action = found.get("action") or ""
        elif tag == "input" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""


class Upstream:
    """One upstream provider process. start() it (or use it as a context manager after start), then drive
    it through its hooks; stop() ends its process group."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.process: subprocess.Popen | None = None
        self.base_url = ""
        self.issuer = ""
        self.mode = ""

    def start(self, mode: str, *, clients: list[dict[str, Any]], apple: AppleKey | None = None,
              issuer_path: str = "", apple_audience: str | None = None) -> Upstream:
        """Starts the provider as `mode` answers, with `clients`, its issuer http://127.0.0.1:PORT + issuer_path
        (e.g. "/realms/acme"); apple mode needs the operator's `apple` key."""
        if mode not in MODES or (mode == "apple") != (apple is not None):
            raise ValueError(f"mode {mode!r}: one of {MODES}; apple mode, and only it, takes an AppleKey")
        missing = not (UPSTREAM_DIR / "node_modules" / "oidc-provider" / "package.json").exists()
        if missing:
            raise RuntimeError(f"{UPSTREAM_DIR}/node_modules lacks oidc-provider: run scripts/setup.sh --tests")
        port = free_port()
        self.mode, self.base_url = mode, f"http://127.0.0.1:{port}"
        self.issuer = self.base_url + issuer_path.rstrip("/")
        config = {"port": port, "mode": mode, "issuer": self.issuer, "clients": clients,
                  **({"apple": apple.config(audience=apple_audience)} if apple else {})}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / f"upstream-{port}.json"
        config_path.write_text(json.dumps(config))
        self.log_path = self.work_dir / f"upstream-{port}.log"
        self._launch(config_path)
        return self

    def _launch(self, config_path: Path) -> None:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}, **LOCALHOST_ONLY,
               "NODE_ENV": "production"}
        # stdout too goes to the log: node-oidc-provider writes its warnings there, after the ready line
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([str(node_binary()), "server.mjs", str(config_path)], cwd=UPSTREAM_DIR,
                                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Until the log has the "ready" line; a RuntimeError with the log if the process ends or time runs out."""
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any(line.startswith("ready ") for line in self.log().splitlines()):
            if self.process.poll() is not None:
                raise RuntimeError(f"the upstream did not start ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the upstream was not ready within {READY_TIMEOUT_S} s:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        """The end of the process's stderr (node-oidc-provider's server errors, refused Apple secrets)."""
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    # The test hooks (POST /__test/<hook> at the server's root).
    def _hook(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.post(f"{self.base_url}/__test/{name}", json=body or {}, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def next_login(self, **claims: Any) -> None:
        """Who the next authorization signs in as: sub (required), email, email_verified, name, given_name,
        family_name, hd, picture ... (the mode's claims; Apple: a private-relay e-mail unless given)."""
        self._hook("next-login", claims)

    def cancel_next(self) -> None:
        """The next authorization ends with error=access_denied."""
        self._hook("cancel-next")

    def rotate_keys(self, *, drop_old: bool = False) -> dict[str, Any]:
        """A new RSA key signs from now on; the JWKS has [new, old] (or only new). -> {"kid", "kids"}."""
        return self._hook("rotate", {"drop_old": drop_old})

    def fault(self, endpoint: str, mode: str | None) -> None:
        """endpoint discovery|jwks|token answers slow (30 s), garbage (200, not JSON) or error (500); None clears."""
        self._hook("fault", {"endpoint": endpoint, "mode": mode})

    def tamper(self, kind: str | None) -> None:
        """The next token answer's ID token is wrong_aud, wrong_iss, expired, bad_signature, alg_none,
        wrong_nonce, hs256_with_public_key or no_azp_multi_aud (None clears)."""
        self._hook("tamper", {"kind": kind})

    # Reading it, and the person's part of a sign-in.
    def discovery(self) -> dict[str, Any]:
        return requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=30).json()

    def jwks(self) -> dict[str, Any]:
        return requests.get(self.discovery()["jwks_uri"], timeout=30).json()

    def authorize(self, session: requests.Session, url: str) -> Answer:
        """Follows the provider's redirects from the authorization `url` (the person signs in as next_login
        said) up to its answer to the relying party, which is returned, not sent."""
        for _ in range(10):
            response = session.get(url, allow_redirects=False, timeout=30)
            if response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                if not url.startswith(self.base_url + "/"):
                    target = urlsplit(url)
                    return Answer("GET", target._replace(query="", fragment="").geturl(), dict(parse_qsl(target.query)))
                continue
            form = _Form()
            form.feed(response.text)
            if form.action:                      # form_post: 200, or 400 with an error
                return Answer("POST", form.action, form.fields)
            raise AssertionError(f"the upstream answered {response.status_code}: {response.text[:500]}")
        raise AssertionError(f"more than 10 redirects from {url}")

    def stop(self) -> None:
        """Ends the process group (node and anything it started) and waits for it: no orphan."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def upstream_factory(tmp_path_factory) -> Iterator[Callable[..., Upstream]]:
    """upstream_factory(mode, clients=[...], apple=None, issuer_path="") starts an upstream; all stop at teardown
    (a failing test gets the end of each one's log)."""
    started: list[Upstream] = []

    def start(mode: str, **options: Any) -> Upstream:
        upstream = Upstream(tmp_path_factory.mktemp("upstream"))
        started.append(upstream)
        return upstream.start(mode, **options)

    yield start
    for upstream in started:
        upstream.stop()
        if upstream.log():
            print(f"--- upstream {upstream.mode} log (tail) ---\n{upstream.log()}", file=sys.stderr)
