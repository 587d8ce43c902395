"""The requests the benchmark makes, through citylogin.client.api or by hand over HTTP (never a domain
package: the benchmark must run unchanged against older checkouts)."""
from __future__ import annotations

import secrets
import time

import requests

from citylogin.client.api import Client, KeyFile, sign_challenge
from loadgen import local_session

PASSWORD = "Bench-" + secrets.token_hex(8)  # random: never in the common-password list


def new_client(base_url: str, *, key_file: KeyFile | None = None) -> Client:
    return Client(base_url, key_file=key_file, session=local_session(), timeout=30)


def register(base_url: str, name: str) -> Client:
    """A new account (lowercase name: usernames are stored case-folded) with this device."""
    client = new_client(base_url)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind="ecdsa-p256")
    return client


def login_with_retry(client: Client, attempts: int = 3) -> None:
    """A login for set-up steps, retried on a dropped connection (see bench/README.md). By hand and
    without a DPoP proof, as older checkouts log in: the session is a bearer session, so that the
    figures compare across commits (bench/dpop.py measures what binding adds)."""
    for attempt in range(attempts):
        try:
            login_by_hand(client, local_session())
            return
        except requests.ConnectionError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def auth_headers(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.access_token}"}


def challenge(client: Client, http: requests.Session) -> str:
    # No body here, unlike citylogin.client.api: the view never reads one, and an unread body can make
    # gunicorn's gthread worker swallow the next request on the connection (see bench/README.md).
    response = http.post(client.base_url + "/login/challenge", timeout=30)
    response.raise_for_status()
    return response.json()["challenge"]


def post_login(client: Client, http: requests.Session, challenge_value: str) -> float:
    """POST /login/ with a challenge already fetched; keeps the tokens; returns its latency (s)."""
    key_file = client.key_file
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge_value, "signature": sign_challenge(key_file.private_key(), challenge_value)}
    start = time.perf_counter()
    response = http.post(client.base_url + "/login/", json=body, timeout=30)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"login failed: {response.status_code} {response.text[:300]}")
    tokens = response.json()
    client.access_token, client.refresh_token = tokens["access_token"], tokens["refresh_token"]
    return elapsed


def login_by_hand(client: Client, http: requests.Session) -> float:
    """Challenge, then POST /login/; returns the latency of POST /login/ alone."""
    return post_login(client, http, challenge(client, http))


def refresh(client: Client, http: requests.Session) -> bool:
    """POST /session/refresh; keeps the rotated pair. True on 200."""
    response = http.post(client.base_url + "/session/refresh", json={"refresh_token": client.refresh_token},
                         timeout=30)
    if response.status_code != 200:
        return False
    tokens = response.json()
    client.access_token, client.refresh_token = tokens["access_token"], tokens["refresh_token"]
    return True


def request_pairing_qr(client: Client, http: requests.Session) -> str:
    """POST /registration/request_pairing_token (Bearer, no body); the QR payload."""
    response = http.post(client.base_url + "/registration/request_pairing_token", headers=auth_headers(client),
                         timeout=30)
    if response.status_code != 201:
        raise RuntimeError(f"pairing token: {response.status_code} {response.text[:300]}")
    return response.json()["qr_code"]


def redeem_pairing_qr(client: Client, qr_payload: str) -> None:
    """POST /device/register with the QR: a new device (and key) of the same account."""
    new_client(client.base_url).pair(qr_payload, username=client.key_file.username, password=PASSWORD)


def hand_to_floor(client: Client, floor_url: str) -> Client:
    """The floor's own items for a user citylogin registered (POST /floor/users, bench/floor_app.py);
    the returned client talks to the floor with the same key file. citylogin must not log it in again."""
    key_file = client.key_file
    response = local_session().post(floor_url + "/floor/users", timeout=30, json={
        "username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64()})
    if response.status_code != 201:
        raise RuntimeError(f"floor user: {response.status_code} {response.text[:300]}")
    return new_client(floor_url, key_file=key_file)


def timed_refresh(client: Client, http: requests.Session) -> float:
    """POST /session/refresh (raises unless 200); its latency (s)."""
    start = time.perf_counter()
    if not refresh(client, http):
        raise RuntimeError("refresh failed")
    return time.perf_counter() - start


def timed_me(client: Client, http: requests.Session) -> float:
    start = time.perf_counter()
    response = http.get(client.base_url + "/session/me", headers=auth_headers(client), timeout=30)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"/session/me: {response.status_code} {response.text[:300]}")
    return elapsed


def timed_login(client: Client, http: requests.Session) -> float:
    """Challenge and POST /login/, both timed: a login as the person waits for it."""
    start = time.perf_counter()
    post_login(client, http, challenge(client, http))
    return time.perf_counter() - start


def timed_pairing(client: Client, http: requests.Session) -> float:
    start = time.perf_counter()
    request_pairing_qr(client, http)
    return time.perf_counter() - start
