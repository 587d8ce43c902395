"""What the tests of a ticket's flows share (SPEC §16): an all-in-one app that serves /federation, an operator's
provider, tickets as the callback leaves them (federation.tickets.issue: the upstream round trip is tested
with the real provider elsewhere), and a device's proof as at POST /login/."""
from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from threading import Barrier
from typing import Any, Iterator, TypeVar

import requests

from citylogin.app import blueprints, given
from citylogin.client.api import Client
from citylogin.client.keys import KeyFile, generate_key, private_key_pem, public_key_pem, sign_challenge
from common.runtime.context import AppContext
from common.web.app_factory import create_service_app
from federation import providers, tickets
from federation import views as federation_views
from federation.models import Purpose, UpstreamIdentity
from tests.conftest import unique_name
from tests.support.live import serving

T = TypeVar("T")

ISSUER = "https://idp.example/"


@contextmanager
def federation_app(base_config: dict[str, Any], **settings: Any) -> Iterator[tuple[str, AppContext]]:
    """(url, context) of the all-in-one app with /federation among its blueprints (the login service's)."""
    mounted = blueprints()
    if federation_views.bp not in mounted:
        mounted.append(federation_views.bp)
    app = create_service_app(name="citylogin", blueprints=mounted, given=given(),
                             test_config={**base_config, **settings})
    with serving(app) as url:
        yield url, app.extensions["citylogin"]


def provider(ctx: AppContext, *, signup: str = "allow", display_name: str = "Acme") -> str:
    name = unique_name("idp").lower().replace("_", "-")[:30]
    providers.add_provider(ctx, name=name, issuer=ISSUER, client_id="citylogin", client_secret="s3cret",
                           signup=signup, display_name=display_name)
    return name


def identity(name: str, *, email: str | None = None, verified: bool = False,
             sub: str | None = None) -> UpstreamIdentity:
    return UpstreamIdentity(provider=name, issuer=ISSUER, sub=sub or unique_name("sub"), email=email,
                            email_verified=verified)


def ticket(ctx: AppContext, who: UpstreamIdentity, *, purpose: Purpose = "sign_in") -> str:
    return tickets.issue(ctx.dynamodb, ctx.tables, identity=who, purpose=purpose, now=ctx.epoch())


def post(url: str, path: str, body: Any, *, ticket_value: str | None = None,
         headers: dict[str, str] | None = None) -> requests.Response:
    cookies = {tickets.COOKIE: ticket_value} if ticket_value else {}
    return requests.post(url + path, json=body, cookies=cookies, headers=headers, timeout=60)


def proof(device: Client, **extra: Any) -> dict[str, Any]:
    """The device's proof for POST /federation/login or /link: its certificate and a signed fresh challenge."""
    key_file = device.require_key_file()
    challenge = requests.post(key_file.base_url + "/login/challenge", timeout=30).json()["challenge"]
    return {"client_cert": key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(key_file.private_key(), challenge), **extra}


def sign_up(url: str, ticket_value: str, *, username: str | None = None,
            device_name: str = "Laptop") -> tuple[requests.Response, Client | None]:
    """POST /federation/signup with a new key: the answer, and on 201 a Client holding that device's key."""
    username = username or unique_name()
    return _new_device(url, "/federation/signup", {"username": username, "device_name": device_name,
                                                   "device_class": "desktop", "locale": "ja"},
                       ticket_value=ticket_value, username=username)


def pair(url: str, ticket_value: str | None, qr_code: str, *, username: str = "",
         device_name: str = "Phone") -> tuple[requests.Response, Client | None]:
    """POST /federation/pair with a new key and the pairing code `qr_code` (`username`: the account's, for the
    Client's key file): the answer, and on 201 a Client holding that device's key."""
    return _new_device(url, "/federation/pair", {"qr_code": qr_code, "device_name": device_name,
                                                 "device_class": "mobile"},
                       ticket_value=ticket_value, username=username)


def recover(url: str, ticket_value: str | None, recovery_code: str, *, username: str = "",
            **extra: Any) -> tuple[requests.Response, Client | None]:
    """POST /federation/recover with a new key and `recovery_code`: the answer, and on 201 its Client."""
    return _new_device(url, "/federation/recover", {"recovery_code": recovery_code, "device_name": "Found",
                                                    **extra},
                       ticket_value=ticket_value, username=username)


def _new_device(url: str, path: str, body: dict[str, Any], *, ticket_value: str | None,
                username: str) -> tuple[requests.Response, Client | None]:
    key = generate_key()
    answer = post(url, path, {**body, "public_key": public_key_pem(key)}, ticket_value=ticket_value)
    if answer.status_code != 201:
        return answer, None
    made = answer.json()
    return answer, Client(url, key_file=KeyFile(
        base_url=url, username=username, user_uuid=made["uuid"], device_id=made["device_id"],
        device_name=made["device_name"], private_key_pem=private_key_pem(key),
        client_cert_pem=base64.b64decode(made["client_cert"]).decode(), fingerprint=made["fingerprint"],
        ca_cert_pem=made["ca_cert"]))


class Person:
    """A password-less account made with provider `name` (signed up and signed in with a ticket): its identity,
    device, session and Bearer header; and the reauth tickets and tokens a fresh sign-in with the provider gives."""

    def __init__(self, url: str, ctx, name: str, *, who: UpstreamIdentity | None = None) -> None:
        self.url, self.ctx = url, ctx
        self.who = who or identity(name)
        value = ticket(ctx, self.who)
        _, self.device = sign_up(url, value)
        assert self.device is not None
        signed = post(url, "/federation/login", proof(self.device), ticket_value=value).json()
        self.user_uuid, self.session_id = signed["user_uuid"], signed["session_id"]
        self.bearer = {"Authorization": f"Bearer {signed['access_token']}"}

    def reauth_ticket(self, *, who: UpstreamIdentity | None = None, user_uuid: str | None = None,
                      purpose: str = "reauth") -> str:
        """The ticket a round trip of purpose "reauth" leaves (federation.round_trip._reauth_ticket)."""
        return tickets.issue(self.ctx.dynamodb, self.ctx.tables, identity=who or self.who, purpose=purpose,  # type: ignore[arg-type]
                             now=self.ctx.epoch(), user_uuid=user_uuid or self.user_uuid)

    def reauth(self, ticket_value: str | None, *, bearer: dict[str, str] | None = None) -> requests.Response:
        return post(self.url, "/federation/reauth", {}, ticket_value=ticket_value,
                    headers=self.bearer if bearer is None else bearer)

    def token(self) -> str:
        answer = self.reauth(self.reauth_ticket())
        assert answer.status_code == 200, answer.text
        return answer.json()["reauth_token"]

    def call(self, method: str, path: str, body: dict) -> requests.Response:
        return requests.request(method, self.url + path, json=body, headers=self.bearer, timeout=60)


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Each call on its own thread, all let go together (a barrier): the races of the federation's tests."""
    barrier = Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))
