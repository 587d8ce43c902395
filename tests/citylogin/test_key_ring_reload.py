"""SPEC §10, keys: every process re-reads the key ring on its reload interval whether or not it
signs, so a process that only verifies publishes a rotated key and drops a retired one within the
interval; a retirement edited back in DynamoDB without the key-encryption key is not taken back."""
from __future__ import annotations

import base64
import os
import time
from contextlib import ExitStack

import jwt
import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client
from common.database import dynamo
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.support.fixtures import app_servers, problem
from tests.support.live import PASSWORD, register_device
from tests.support.services import running_service

RELOAD_SECONDS = 1.0
WITHIN = 30.0  # many intervals: on a loaded machine a read may wait; without one the key never shows


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def me(url: str, client: Client, token: str) -> requests.Response:
    """GET /session/me on `url` with `token` (bound to the client's key) and a fresh proof."""
    headers = {"Authorization": f"DPoP {token}", "DPoP": client.proof("GET", url + "/session/me", access_token=token)}
    return requests.get(url + "/session/me", headers=headers, timeout=10)


def published(url: str) -> set[str]:
    """The access-token keys (EdDSA) of the JWKS; the ID-token keys (RSA, P-256) rotate beside them."""
    return {key["kid"] for key in requests.get(url + "/.well-known/jwks.json", timeout=10).json()["keys"]
            if key["alg"] == "EdDSA"}


def eventually(check, what: str) -> float:
    """Seconds until check() holds; fails after WITHIN."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < WITHIN, f"{what} not within {WITHIN} s"
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.fixture
def shared(dynamodb_endpoint, tmp_path) -> dict:
    """The settings every process of one deployment shares (its own key ring)."""
    return {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(tmp_path),
            "table_prefix": unique_name("reload") + "_", "key_ring_reload_seconds": RELOAD_SECONDS,
            "key_encryption_key": base64.b64encode(os.urandom(32)).decode(), "log_level": "WARNING", **FAST_ARGON2}


def keys(env: dict, *args: str) -> str:
    result = CliRunner().invoke(main, ["keys", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_process_that_only_verifies_sees_a_rotation_and_a_retirement(shared):
    env = config_env(shared)
    with app_servers(shared) as start:
        signer_url, ctx = start()
        client = register_device(signer_url)
        client.login(PASSWORD)
        old_token, old_kid = client.access_token, kid_of(client.access_token)
        with running_service("session_manager.app_session_manager", env) as verifier:
            assert me(verifier, client, old_token).status_code == 200
            assert published(verifier) == {old_kid}

            new_kid = keys(env, "rotate").split("new jwt key ")[1].split()[0]
            # No request names the new kid and the verifier signs nothing: its JWKS still shows it.
            seconds = eventually(lambda: new_kid in published(verifier), "the new key in the verifier's JWKS")
            print(f"rotation published by the verifier after {seconds:.1f} s")

            keys(env, "retire", "--force", old_kid)
            seconds = eventually(lambda: me(verifier, client, old_token).status_code == 401,
                                 "the retired key refused by the verifier")
            assert problem(me(verifier, client, old_token))[:2] == (401, "invalid_token")
            print(f"retirement reached the verifier after {seconds:.1f} s")
            assert published(verifier) == {new_kid}
            assert "retired" in keys(env, "list")

            # A writer without the key-encryption key marks the retired key active again.
            client_db = dynamo.make_client(region="us-east-1", endpoint_url=shared["dynamodb_endpoint_url"])
            client_db.update_item(TableName=shared["table_prefix"] + "key_ring",
                                  Key={"ring": {"S": "main"}, "key_id": {"S": f"jwt#{old_kid}"}},
                                  UpdateExpression="SET #s = :active", ExpressionAttributeNames={"#s": "state"},
                                  ExpressionAttributeValues={":active": {"S": "active"}})
            time.sleep(2 * RELOAD_SECONDS)
            assert problem(me(verifier, client, old_token))[:2] == (401, "invalid_token")
            with running_service("session_manager.app_session_manager", env) as fresh:  # no memory of it
                assert problem(me(fresh, client, old_token))[:2] == (401, "invalid_token")
                assert published(fresh) == {new_kid}


class CachedJwks:
    """A process's JWKS as an app sees it through a caching proxy: fetched again only once the last
    copy's Cache-Control max-age has run out."""

    def __init__(self, url: str) -> None:
        self.url, self.kids, self.fresh_until = url, set(), 0.0

    def __call__(self) -> set[str]:
        if time.monotonic() >= self.fresh_until:
            fetched_at = time.monotonic()
            response = requests.get(self.url + "/.well-known/jwks.json", timeout=10)
            max_age = int(response.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
            self.kids = {key["kid"] for key in response.json()["keys"] if key["alg"] == "EdDSA"}
            self.fresh_until = fetched_at + max_age
        return self.kids


def test_three_idle_processes_publish_a_rotated_key_before_any_of_them_signs_with_it(shared):
    """Each round reads the three JWKS (as cached, honouring max-age), then has each process sign (a
    refresh): the first token with the new kid must come from a round whose three JWKS, read before
    it, all list the new kid."""
    shared = {**shared, "key_ring_reload_seconds": 3.0}  # signs 3 s after the rotation
    env = config_env(shared)
    with app_servers(shared) as start, ExitStack() as processes:
        url, _ = start()
        client = register_device(url)
        client.login(PASSWORD)
        urls = [processes.enter_context(running_service("session_manager.app_session_manager", env))
                for _ in range(3)]
        caches = [CachedJwks(each) for each in urls]
        old_kid = kid_of(client.access_token)
        assert [cache() for cache in caches] == [{old_kid}] * 3

        new_kid = keys(env, "rotate").split("new jwt key ")[1].split()[0]
        rotated, rounds = time.monotonic(), 0
        while True:
            jwks = [cache() for cache in caches]
            signed = []
            for each in urls:
                client.base_url = each
                client.refresh()
                signed.append(kid_of(client.access_token))
            rounds += 1
            if new_kid in signed:
                break
            assert set(signed) == {old_kid} and time.monotonic() - rotated < 30, (signed, jwks)
            time.sleep(0.05)
        print(f"the new key signed after {time.monotonic() - rotated:.1f} s, round {rounds}")
        assert jwks == [{old_kid, new_kid}] * 3, "a process signed with a key that not every JWKS listed"
