"""The guard's own DPoP nonces (RFC 9449 §8, §9): a device whose clock is 10 minutes behind is
asked for the guard's nonce (401 use_dpop_nonce with a DPoP-Nonce, which a browser on another
origin may read) and is served with a proof over it, in Flask and under ASGI; a forged, old, other
app's or citylogin's nonce does not excuse its clock; guards sharing the secret take each other's
nonces; a proof over a nonce is still spent once, for as long as its nonce is current; an app may
require the nonce; and the Python client answers each app's demand by itself, against a real
citylogin."""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, g
from flask_cors import CORS
from requests.structures import CaseInsensitiveDict
from starlette.middleware.cors import CORSMiddleware

from citylogin.client import keys as client_keys
from citylogin.client.keys import dpop_proof, generate_key
from citylogin_guard import Guard, GuardMiddleware, Unauthorized
from citylogin_guard.dpop import read_proof, replay_key
from citylogin_guard.nonces import DpopNonces
from common.crypto import dpop as citylogin_dpop
from tests.guard.checks import SharedStore, bound_claims
from tests.guard.conftest import CALL_TIMEOUT
from tests.guard.test_guard_live import add_app, citylogin, guarded_app  # noqa: F401 (citylogin: a fixture)
from tests.support.live import PASSWORD, register_device, serving
from tests.support.waiting import wait_until

SECRET = "the notes app's nonce secret, on all its hosts"
OTHER_SECRET = "another app's nonce secret, not this one's"
BEHIND = -600.0  # seconds the device's clock is off: 10 minutes behind
USE_NONCE_CHALLENGE = 'DPoP error="use_dpop_nonce", algs="ES256 EdDSA ML-DSA-87"'
PAGE_ORIGIN = "https://notes.example.com"  # a browser page calling the API from another origin
API = "https://api.example.com/notes"


def proof_from_behind(key: Any, token: str, url: str, *, nonce: str | None = None) -> str:
    """A proof as a device whose clock is 10 minutes behind makes it."""
    return dpop_proof(key, method="GET", url=url, access_token=token, nonce=nonce, now=time.time() + BEHIND)


def verify(guard: Guard, token: str, proof: str) -> Any:
    return guard.verify(f"DPoP {token}", dpop=proof, method="GET", url=API)


def current(secret: str, nonce: str) -> bool:
    """Whether `nonce` is one the guards with `secret` take now."""
    left = DpopNonces(secret).seconds_left(nonce, time.time())
    return left is not None and left > 0


def _replay_key(proof: str) -> str:
    """What the replay store is asked to keep for `proof` (RFC 9449 §11.1: its key and jti)."""
    return replay_key(read_proof(proof))


def refusal(call: Callable[..., Any], *args: Any) -> Unauthorized:
    with pytest.raises(Unauthorized) as refused:
        call(*args)
    return refused.value


# --- an app protected by the guard, with CORS for its page as the guard's README says ----------------

@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass
class App:
    url: str  # the URL of GET /api/me as the app sees it, which a proof names
    get: Callable[[dict[str, str]], Answer]


def flask_app(guard: Guard) -> App:
    app = Flask(__name__)
    guard.init_app(app)
    CORS(app, origins=[PAGE_ORIGIN], allow_headers=["Authorization", "DPoP"],
         expose_headers=["DPoP-Nonce", "WWW-Authenticate"])

    @app.get("/api/me")
    @guard.required
    def me():
        return {"user": g.citylogin.user_uuid}

    client = app.test_client()

    def get(headers: dict[str, str]) -> Answer:
        response = client.get("/api/me", headers={"Origin": PAGE_ORIGIN, **headers})
        return Answer(response.status_code, response.headers, response.get_json(force=True))

    return App("http://localhost/api/me", get)


def asgi_app(guard: Guard) -> TestClient:
    app = FastAPI()
    app.add_middleware(GuardMiddleware, guard=guard, protect=lambda path: path.startswith("/api/"))
    # added last, so outermost: the guard's refusals pass through it too
    app.add_middleware(CORSMiddleware, allow_origins=[PAGE_ORIGIN], allow_headers=["Authorization", "DPoP"],
                       expose_headers=["DPoP-Nonce", "WWW-Authenticate"])

    @app.get("/api/me")
    def me(request: Request) -> dict[str, str]:
        return {"user": request.state.citylogin.user_uuid}

    return TestClient(app)


def asgi_served(guard: Guard) -> App:
    client = asgi_app(guard)

    def get(headers: dict[str, str]) -> Answer:
        response = client.get("/api/me", headers={"Origin": PAGE_ORIGIN, **headers})
        return Answer(response.status_code, response.headers, response.json())

    return App("http://testserver/api/me", get)


@pytest.fixture(params=["flask", "asgi"])
def served(request: pytest.FixtureRequest) -> Callable[[Guard], App]:
    return {"flask": flask_app, "asgi": asgi_served}[request.param]


def test_a_device_ten_minutes_behind_is_asked_for_the_nonce_and_served_over_it(make_guard, transmitter, served):
    app = served(make_guard(dpop_nonce_secret=SECRET))
    key = generate_key("ecdsa-p256")
    token = transmitter.access_token(sub="user-behind", **bound_claims(key))

    asked = app.get({"Authorization": f"DPoP {token}", "DPoP": proof_from_behind(key, token, app.url)})
    assert asked.status == 401
    assert asked.headers["WWW-Authenticate"] == USE_NONCE_CHALLENGE
    assert asked.headers["Content-Type"].split(";")[0] == "application/problem+json"
    assert set(asked.body) == {"type", "title", "status", "code", "detail"}
    assert asked.body["code"] == "use_dpop_nonce" and asked.body["status"] == 401
    nonce = asked.headers["DPoP-Nonce"]
    # a page on another origin can read it (and the challenge) under the CORS the README shows
    exposed = {name.strip().lower() for name in asked.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"dpop-nonce", "www-authenticate"} <= exposed

    over_nonce = {"Authorization": f"DPoP {token}", "DPoP": proof_from_behind(key, token, app.url, nonce=nonce)}
    answer = app.get(over_nonce)
    assert answer.status == 200 and answer.body == {"user": "user-behind"}
    assert current(SECRET, answer.headers["DPoP-Nonce"]), "an answer to a proof carries the newest nonce"

    replayed = app.get(over_nonce)
    assert replayed.status == 401 and replayed.body["code"] == "invalid_dpop_proof"


@pytest.mark.parametrize("off_by", [-90, 90, 600])
def test_a_proof_off_by_over_a_minute_either_way_asks_for_the_nonce_and_passes_over_it(guard, transmitter, off_by):
    key = generate_key("ed25519")
    token = transmitter.access_token(**bound_claims(key))
    asked = refusal(verify, guard, token, dpop_proof(key, method="GET", url=API, access_token=token,
                                                     now=time.time() + off_by))
    assert asked.code == "use_dpop_nonce" and asked.www_authenticate() == USE_NONCE_CHALLENGE
    assert asked.problem()["code"] == "use_dpop_nonce" and asked.headers()["DPoP-Nonce"] == asked.dpop_nonce
    assert verify(guard, token, dpop_proof(key, method="GET", url=API, access_token=token, nonce=asked.dpop_nonce,
                                           now=time.time() + off_by))


def _bad_nonces() -> dict[str, str]:
    genuine = DpopNonces(SECRET).current()
    return {
        "a forged one": genuine[:-1] + ("A" if genuine[-1] != "A" else "B"),
        "one of the app's own, made 90 s ago": DpopNonces(SECRET, clock=lambda: time.time() - 90).current(),
        "one of the app's own, dated 90 s ahead": DpopNonces(SECRET, clock=lambda: time.time() + 90).current(),
        "another app's": DpopNonces(OTHER_SECRET).current(),
        "citylogin's": citylogin_dpop.make_nonce(secret=os.urandom(32), kid="k1", now=int(time.time())),
        "no nonce-looking thing": "x" * 500,
    }


@pytest.mark.parametrize("kind", list(_bad_nonces()))
def test_a_nonce_the_guard_did_not_make_now_does_not_excuse_a_clock_off(make_guard, transmitter, kind):
    guard = make_guard(dpop_nonce_secret=SECRET)
    key = generate_key("ed25519")
    token = transmitter.access_token(**bound_claims(key))
    bad = _bad_nonces()[kind]
    refused = refusal(verify, guard, token, proof_from_behind(key, token, API, nonce=bad))
    assert refused.code == "use_dpop_nonce" and refused.www_authenticate() == USE_NONCE_CHALLENGE
    assert refused.dpop_nonce and refused.dpop_nonce != bad and refused.headers()["DPoP-Nonce"] == refused.dpop_nonce
    assert verify(guard, token, proof_from_behind(key, token, API, nonce=refused.dpop_nonce)), \
        "the nonce the refusal hands out is good"


def test_a_punctual_proof_may_repeat_citylogins_nonce_but_not_a_stale_one_of_the_guards(make_guard, transmitter):
    guard = make_guard(dpop_nonce_secret=SECRET)
    key = generate_key("ecdsa-p256")
    token = transmitter.access_token(**bound_claims(key))
    citylogins = citylogin_dpop.make_nonce(secret=os.urandom(32), kid="k1", now=int(time.time()))
    assert verify(guard, token, dpop_proof(key, method="GET", url=API, access_token=token, nonce=citylogins))
    stale = DpopNonces(SECRET, clock=lambda: time.time() - 90).current()
    refused = refusal(verify, guard, token, dpop_proof(key, method="GET", url=API, access_token=token, nonce=stale))
    assert refused.code == "use_dpop_nonce" and refused.dpop_nonce


def test_guards_sharing_the_secret_take_each_others_nonces_and_a_default_guard_its_own_alone(make_guard,
                                                                                            transmitter):
    first, second = make_guard(dpop_nonce_secret=SECRET), make_guard(dpop_nonce_secret=SECRET.encode())
    key = generate_key("ecdsa-p256")
    token = transmitter.access_token(**bound_claims(key))
    nonce = refusal(verify, first, token, proof_from_behind(key, token, API)).dpop_nonce
    assert nonce is not None
    assert verify(second, token, proof_from_behind(key, token, API, nonce=nonce))
    alone = make_guard()  # a random secret of its own: for one process only
    assert refusal(verify, alone, token, proof_from_behind(key, token, API, nonce=nonce)).code == "use_dpop_nonce"
    assert verify(alone, token, proof_from_behind(key, token, API, nonce=alone.dpop_nonce()))
    with pytest.raises(ValueError):
        make_guard(heard=False, dpop_nonce_secret="too short")


def test_a_proof_over_a_nonce_is_spent_once_for_as_long_as_its_nonce_is_current(make_guard, transmitter):
    shared = SharedStore()
    first = make_guard(dpop_nonce_secret=SECRET, replay_store=shared)
    second = make_guard(dpop_nonce_secret=SECRET, replay_store=shared)
    key = generate_key("ml-dsa-87")
    token = transmitter.access_token(**bound_claims(key))
    proof = proof_from_behind(key, token, API, nonce=first.dpop_nonce())
    assert verify(first, token, proof)
    for guard in (first, second):
        assert refusal(verify, guard, token, proof).code == "invalid_dpop_proof"
    (kept_for,) = shared.spent.values()
    # its iat + 60 s is long past: the nonce, current for 30 to 60 s more, bounds how long it counts
    assert 31 <= kept_for <= 61

    # Dated 10 minutes ahead, it would pass by its iat in 9 minutes (its nonce stale, or another
    # app's once the secret changed): kept till then, or till its token expires if that is sooner.
    for expires_in, at_least, at_most in ((3600, 659, 661), (300, 299, 301)):
        made = time.monotonic()
        token = transmitter.access_token(expires_in=expires_in, **bound_claims(key))
        ahead = dpop_proof(key, method="GET", url=API, access_token=token, nonce=first.dpop_nonce(),
                           now=time.time() - BEHIND)
        assert verify(first, token, ahead)
        late = int(time.monotonic() - made)  # the seconds a busy machine put between the token and its check
        assert at_least - late <= shared.spent[_replay_key(ahead)] <= at_most


def test_an_app_may_require_its_nonce_in_every_proof(make_guard, transmitter):
    guard = make_guard(dpop_nonce_secret=SECRET, require_dpop_nonce=True)
    key = generate_key("ecdsa-p256")
    token = transmitter.access_token(**bound_claims(key))
    citylogins = citylogin_dpop.make_nonce(secret=os.urandom(32), kid="k1", now=int(time.time()))
    for nonce in (None, citylogins):
        punctual = dpop_proof(key, method="GET", url=API, access_token=token, nonce=nonce)
        assert refusal(verify, guard, token, punctual).code == "use_dpop_nonce"
    assert verify(guard, token, dpop_proof(key, method="GET", url=API, access_token=token, nonce=guard.dpop_nonce()))


# --- the Python client against a real citylogin and two apps -------------------------------------------

class ToTestClient(requests.adapters.BaseAdapter):
    """Lets a requests.Session reach an ASGI app in this process through Starlette's TestClient."""

    def __init__(self, client: TestClient) -> None:
        super().__init__()
        self.client = client

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        answer = self.client.request(request.method or "GET", request.url or "", headers=dict(request.headers),
                                     content=request.body)
        response = requests.Response()
        response.status_code, response.url, response.request = answer.status_code, request.url or "", request
        response.headers = CaseInsensitiveDict(answer.headers)
        response.raw = io.BytesIO(answer.content)
        return response

    def close(self) -> None:
        self.client.close()


def test_the_python_client_answers_each_apps_nonce_demand_by_itself(citylogin, monkeypatch):  # noqa: F811
    url, env = citylogin
    flask_credentials, asgi_credentials = add_app(env), add_app(env)
    # every proof the device makes, to citylogin and to the apps, says it is 10 minutes earlier
    monkeypatch.setattr(client_keys, "time", SimpleNamespace(time=lambda: time.time() + BEHIND))
    device = register_device(url)
    device.login(PASSWORD)
    assert device.token_type == "DPoP" and device.dpop_nonce, "citylogin asked for its own nonce"
    statuses: dict[str, list[int]] = {}
    device.http.hooks["response"].append(
        lambda response, *args, **kwargs: statuses.setdefault(response.url, []).append(response.status_code))

    with Guard(url, flask_credentials["client_id"], flask_credentials["client_secret"], leeway=1.0,
               dpop_nonce_secret=SECRET, call_timeout=CALL_TIMEOUT) as flask_guard, \
            Guard(url, asgi_credentials["client_id"], asgi_credentials["client_secret"], leeway=1.0,
                  dpop_nonce_secret=OTHER_SECRET, call_timeout=CALL_TIMEOUT) as asgi_guard, \
            serving(guarded_app(flask_guard)) as flask_url:
        device.http.mount("http://testserver/", ToTestClient(asgi_app(asgi_guard)))
        wait_until(lambda: flask_guard.heard() and asgi_guard.heard(), timeout=10, what="the guards hear citylogin")
        for api in (f"{flask_url}/api/me", "http://testserver/api/me"):
            for _ in range(2):
                answer = device.request("GET", api)
                assert answer.status_code == 200, answer.text
                assert answer.json()["user"] == device.require_key_file().user_uuid
            # asked once, retried at once; the next call's proof carried the newest nonce of that app
            assert statuses[api] == [401, 200, 200]
    assert set(device.dpop_nonces) == {flask_url, "http://testserver"}
    assert current(SECRET, device.dpop_nonces[flask_url])
    assert current(OTHER_SECRET, device.dpop_nonces["http://testserver"])
