"""examples/notes end to end (SPEC §11): `citylogin serve`, the notes app in its own process under each
of its protections, and the real nginx. Device A reads its notes through the app's API; device B of
the same account logs in and confirms (the account allows one device); A's next request to the APP's
API is refused 401 session_revoked: through nginx's auth_request at once (the app reading nginx's
X-Citylogin-* headers with examples/notes/forward_auth.py), with the guard within 1 s,
with pushed events within 2 s."""
from __future__ import annotations

import base64
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass

import jwt
import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citylogin.cli.main import main
from citylogin.client.api import Client
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD, register_device
from tests.support.nginx import require_nginx, running_forward_auth_nginx
from tests.support.notes import add_app, as_of_now, first_refusal, notes_api, running_notes, second_device
from tests.support.ports import free_port
from tests.support.services import running_service

SET_TYPE = "application/secevent+jwt"


@dataclass(frozen=True)
class Deployment:
    citylogin: str               # where devices register and log in
    env: dict[str, str]          # citylogin's settings, for its CLI
    apps: dict[str, dict]        # name -> the credentials `citylogin apps add` printed
    notes: dict[str, str]        # protection -> the notes API's address (nginx's for forward-auth)


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory) -> Deployment:
    require_nginx()
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("notes") + "_",
                         "trusted_proxies": 1, "max_concurrent_devices": 1, "log_level": "WARNING",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), **FAST_ARGON2, **RAISED_LIMITS,
                         # the guard's notes hear of an end within 1 s: citylogin reads its feed this often
                         "events_poll_interval": 0.25,
                         # a guard's long poll still open at the end is held at most this long: the
                         # server's stop waits for it (30 s by default, past the stop's patience)
                         "ssf_long_poll_seconds": 5}),
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    # The apps first, as the README has it.
    initialized = CliRunner().invoke(main, ["init"], env=env)
    assert initialized.exit_code == 0, initialized.output
    push_port = free_port()
    apps = {"guard": add_app(env, "notes (guard)"),
            "push": add_app(env, "notes (push)", push_url=f"http://127.0.0.1:{push_port}/ssf/push"),
            "relay": add_app(env, "notes (SETs relayed by the test)"),
            "bystander": add_app(env, "another app")}
    with ExitStack() as stack:
        citylogin = stack.enter_context(running_service("citylogin", env, args=("serve",)))
        app = stack.enter_context(running_notes(citylogin, "forward-auth"))
        notes = {"forward-auth": stack.enter_context(running_forward_auth_nginx(
                     tmp_path_factory.mktemp("nginx"), citylogin_urls=[citylogin], app_urls=[app])),
                 "guard": stack.enter_context(running_notes(citylogin, "guard", credentials=apps["guard"])),
                 "push": stack.enter_context(running_notes(citylogin, "push", port=push_port,
                                                           credentials=apps["push"])),
                 "relay": stack.enter_context(running_notes(citylogin, "push", credentials=apps["relay"]))}
        yield Deployment(citylogin, env, apps, notes)


@pytest.fixture
def device_a(deployment) -> Client:
    client = register_device(deployment.citylogin)
    client.login(PASSWORD)
    return client


def reads_and_writes_its_notes(url: str, device: Client) -> None:
    assert notes_api(url, device).json() == {"user_uuid": device.key_file.user_uuid, "notes": []}
    added = notes_api(url, device, "POST", json={"text": "buy milk"})
    assert added.status_code == 201, added.text
    listed = notes_api(url, device)
    assert listed.status_code == 200 and [note["text"] for note in listed.json()["notes"]] == ["buy milk"]


def displaced(device: Client) -> Client:
    """Device B of `device`'s account logs in and confirms: the account allows one device, so A's session ends."""
    other = second_device(device)
    other.login(PASSWORD, force=True)
    return other


def assert_revoked(response: requests.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "session_revoked"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("protection, within", [("forward-auth", 0.0), ("guard", 1.0), ("push", 2.0)])
def test_a_displaced_device_is_refused_by_the_apps_api(deployment, device_a, protection, within):
    url = deployment.notes[protection]
    reads_and_writes_its_notes(url, device_a)
    token = as_of_now(device_a)  # its token and key: a proof per request, as the page makes them

    device_b = displaced(device_a)
    # within 0: the very next request; else the first answer that is not a 200, asked for up to `within` s
    assert_revoked(first_refusal(url, token, within=within))

    # B is the same account: its notes are A's
    assert [note["text"] for note in notes_api(url, device_b).json()["notes"]] == ["buy milk"]
    assert notes_api(url, token).status_code == 401


@pytest.mark.parametrize("protection", ["forward-auth", "guard", "push"])
def test_without_a_valid_token_the_api_refuses(deployment, device_a, protection):
    url = deployment.notes[protection]
    for token in (None, "not-a-jwt", device_a.access_token[:-4] + "AAAA"):
        response = notes_api(url, token)
        assert (response.status_code, response.json()["code"]) == (401, "invalid_token"), response.text
    bound_as_bearer = notes_api(url, device_a.access_token)  # copied without the key: worthless
    assert (bound_as_bearer.status_code, bound_as_bearer.json()["code"]) == (401, "invalid_dpop_proof")
    bad_note = notes_api(url, device_a, "POST", json={"text": ""})
    assert (bad_note.status_code, bad_note.json()["code"]) == (400, "invalid_note")
    missing = notes_api(url, device_a, "DELETE", path="/api/notes/nope")
    assert (missing.status_code, missing.json()["code"]) == (404, "note_not_found")


def test_the_page_loads_the_sdk_from_citylogin(deployment):
    for protection in ("forward-auth", "guard", "push"):
        page = requests.get(deployment.notes[protection] + "/", timeout=10)
        assert page.status_code == 200
        assert f'<meta name="citylogin-url" content="{deployment.citylogin}">' in page.text
        assert requests.get(deployment.notes[protection] + "/static/notes.js", timeout=10).status_code == 200


# The push receiver alone: the test relays the SETs it polls for the "relay" app to that app's
# receiver, so each refusal is of a SET citylogin really signed.

def polled_sets(deployment: Deployment, app: str, *, at_least: int = 1) -> list[str]:
    credentials = deployment.apps[app]
    deadline = time.monotonic() + 30
    while True:
        polled = requests.post(deployment.citylogin + "/ssf/poll", json={"returnImmediately": True},
                               auth=(credentials["client_id"], credentials["client_secret"]), timeout=10)
        assert polled.status_code == 200, polled.text
        sets = list(polled.json()["sets"].values())
        if len(sets) >= at_least or time.monotonic() > deadline:
            return sets
        time.sleep(0.1)


def push(deployment: Deployment, body: str, content_type: str = SET_TYPE) -> requests.Response:
    return requests.post(deployment.notes["relay"] + "/ssf/push", data=body.encode(),
                         headers={"Content-Type": content_type}, timeout=10)


def test_the_push_receiver_takes_a_set_once_and_refuses_the_session_from_then_on(deployment, device_a):
    url = deployment.notes["relay"]
    reads_and_writes_its_notes(url, device_a)
    session_id, token = device_a.session_id, as_of_now(device_a)
    device_a.logout()
    assert notes_api(url, token).status_code == 200     # nothing relayed yet: the receiver cannot know

    sets = [s for s in polled_sets(deployment, "relay", at_least=1)
            if session_id in str(jwt.decode(s, options={"verify_signature": False}))]
    assert len(sets) == 1
    assert push(deployment, sets[0]).status_code == 202
    assert push(deployment, sets[0]).status_code == 202  # delivered again (at least once): still fine
    refused = notes_api(url, token)
    assert_revoked(refused)
    assert refused.json()["reason"] == "logged_out"


def test_the_push_receiver_refuses_what_is_not_a_set_for_this_app(deployment, device_a):
    token = device_a.access_token or ""
    device_a.logout()
    others = polled_sets(deployment, "bystander")
    assert others, "the bystander app has events"

    def refusal(body: str, content_type: str = SET_TYPE) -> str:
        response = push(deployment, body, content_type)
        assert response.status_code == 400, (response.status_code, response.text)
        return response.json()["err"]

    assert refusal(others[0]) == "invalid_request"                      # aud: another app's client_id
    assert refusal(others[0], "application/jwt") == "invalid_request"   # not as a SET
    assert refusal("not a jwt") == "invalid_request"
    assert refusal(token) == "invalid_request"                          # an access token, typ at+jwt

    header, claims = jwt.get_unverified_header(others[0]), jwt.decode(others[0], options={"verify_signature": False})
    claims["aud"] = deployment.apps["relay"]["client_id"]
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
    assert refusal(forged) == "invalid_key"                             # citylogin's kid, another key
    unknown = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={**header, "kid": "k"})
    assert refusal(unknown) == "invalid_key"
