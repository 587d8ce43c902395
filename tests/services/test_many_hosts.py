"""SPEC §10 "Running on many hosts": two all-in-one processes, each with its own empty data
directory, sharing only DynamoDB and the configuration. Whatever one mints the other accepts, a
revocation on one reaches an event stream held on the other, a key rotation run from a third
process reaches both within the reload interval, and no private key is ever written to a file."""
from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import jwt
import pytest
import requests

from citylogin.client.api import Client, ConcurrentLoginRequired, sign_challenge
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.services import running_service

RELOAD_SECONDS = 2


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def me(url: str, client: Client, token: str | None = None) -> requests.Response:
    """GET /session/me on `url` with the client's (or an older) bound token and a fresh proof by its key."""
    token = token or client.access_token
    headers = {"Authorization": f"DPoP {token}", "DPoP": client.proof("GET", url + "/session/me", access_token=token)}
    return requests.get(url + "/session/me", headers=headers, timeout=10)


def login_with_challenge_from(challenge_url: str, login_url: str, client: Client) -> dict:
    """Log `client` in on `login_url` with a challenge issued by `challenge_url`."""
    key_file = client.key_file
    challenge = requests.post(challenge_url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge), "force": True}
    proof = client.proof("POST", login_url + "/login/")  # binds the session to the device key, as Client.login
    response = requests.post(login_url + "/login/", json=body, headers={"DPoP": proof}, timeout=10)
    assert response.status_code == 200, response.text
    return client._keep_tokens(response.json())


def first_event(url: str, headers: dict[str, str], events: queue.Queue) -> None:
    """Put (event name, time received) of the first event of the stream into `events`."""
    with requests.get(url + "/session/events", headers=headers, stream=True, timeout=30) as response:
        events.put(("open", time.monotonic()))
        for line in response.iter_lines(decode_unicode=True):
            if line and line.startswith("event:"):
                events.put((line.split(":", 1)[1].strip(), time.monotonic()))
                return


def private_key_files(directory: Path) -> list[Path]:
    found = []
    for path in directory.rglob("*"):
        if path.is_file() and (path.name == "refresh.key" or (path.name.startswith("jwt-") and path.suffix == ".key")
                               or b"PRIVATE KEY" in path.read_bytes()):
            found.append(path)
    return found


@pytest.fixture
def hosts_env(dynamodb_endpoint, tmp_path):
    """The configuration every host shares: one DynamoDB, one table prefix, one key-encryption key."""
    return {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("hosts") + "_",
                          "key_ring_reload_seconds": RELOAD_SECONDS, "log_level": "WARNING",
                          **FAST_ARGON2, **RAISED_LIMITS}),
            "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}


def host_env(shared: dict, data_dir: Path) -> dict:
    data_dir.mkdir()
    return {**shared, "CITYLOGIN_DATA_DIR": str(data_dir)}


def test_two_hosts_share_only_dynamodb(hosts_env, tmp_path):
    with ExitStack() as stack:
        a = stack.enter_context(running_service("citylogin", host_env(hosts_env, tmp_path / "a"), args=("serve",)))
        b = stack.enter_context(running_service("citylogin", host_env(hosts_env, tmp_path / "b"), args=("serve",)))
        name = unique_name()

        # Register on A, log in on B with a challenge A issued.
        phone = Client(a)
        phone.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        login_with_challenge_from(a, b, phone)
        assert me(a, phone).status_code == 200  # B's access token works on A

        phone.base_url = a  # B's refresh token refreshes on A
        phone.refresh()
        assert me(b, phone).status_code == 200

        # A pairing code made on A redeems on B.
        qr_code = phone.request_pairing()["qr_code"]
        laptop = Client(b)
        laptop.pair(qr_code, username=name, password=PASSWORD)

        # A 409 confirm token from A confirms on B.
        laptop.base_url = a
        with pytest.raises(ConcurrentLoginRequired) as refused:
            laptop.login(PASSWORD)
        laptop.base_url = b
        laptop.confirm(refused.value.confirm_token)
        assert me(a, laptop).status_code == 200
        assert me(b, phone).json()["code"] == "session_revoked"

        # A logout on A reaches an event stream held on B within 2 s.
        events: queue.Queue = queue.Queue()
        stream_headers = laptop.auth_headers("GET", b + "/session/events")
        threading.Thread(target=first_event, args=(b, stream_headers, events), daemon=True).start()
        assert events.get(timeout=30)[0] == "open"  # its answer starts once it is subscribed (no sleep needed)
        laptop.base_url = a
        logged_out = time.monotonic()
        laptop.logout()
        event, received = events.get(timeout=30)
        assert event == "session_revoked"
        assert received - logged_out < 2.0

        # A key rotation run from a third process reaches both hosts within the reload interval.
        laptop.login(PASSWORD, force=True)
        old_access, old_kid = laptop.access_token, kid_of(laptop.access_token)
        old_refresh_kid = laptop.refresh_token.split(".")[2]
        rotation = subprocess.run([sys.executable, "-m", "citylogin", "keys", "rotate"], capture_output=True,
                                  text=True, timeout=60, env={**os.environ, **host_env(hosts_env, tmp_path / "c")})
        assert rotation.returncode == 0, rotation.stderr
        rotated = time.monotonic()
        new_kids = {line.split()[1]: line.split()[3] for line in rotation.stdout.splitlines()
                    if line.startswith("new ")}
        assert set(new_kids) == {"jwt", "jwt_rsa", "jwt_ec", "refresh"} and new_kids["jwt"] != old_kid

        # A new key signs once it is one reload interval old (published before use); the slack is
        # for the requests of this loop and the hosts' reads on a busy machine.
        reached = {}
        while len(reached) < 2 and time.monotonic() - rotated < RELOAD_SECONDS + 30:
            for url in {a, b} - set(reached):
                laptop.base_url = url
                laptop.refresh()
                if kid_of(laptop.access_token) == new_kids["jwt"]:
                    assert laptop.refresh_token.split(".")[2] == new_kids["refresh"]
                    reached[url] = time.monotonic() - rotated
            time.sleep(0.1)
        print(f"rotation reached the hosts after {sorted(reached.values())} s (reload every {RELOAD_SECONDS} s)")
        assert set(reached) == {a, b}, reached
        for url in (a, b):  # tokens signed before the rotation still verify everywhere
            assert me(url, laptop, old_access).status_code == 200
            keys = {k["kid"] for k in requests.get(url + "/.well-known/jwks.json", timeout=10).json()["keys"]}
            assert {old_kid, new_kids["jwt"]} <= keys
        assert old_refresh_kid != new_kids["refresh"]

    for host in ("a", "b", "c"):
        assert private_key_files(tmp_path / host) == []
