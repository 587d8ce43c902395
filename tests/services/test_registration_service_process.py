"""`python -m registration.app_registration` as a real process over HTTP (the seed's cases),
and racing registrations against it."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from accounts import user_service as users
from tests.conftest import unique_name
from tests.registration.test_registration_api import stored_user_count


@pytest.fixture
def app(base_config):
    from registration.app_registration import create_app
    return create_app(base_config)


def test_get(registration_url):
    response = requests.get(registration_url + "/registration/", timeout=10)
    assert response.status_code == 200
    assert response.json()["service"] == "citylogin registration"


def test_post_success(registration_url):
    name = unique_name()
    response = requests.post(registration_url + "/registration/", timeout=10, json={
        "username": name, "email": f"{name}@example.com", "password": "a long passphrase"})
    assert response.status_code == 201
    assert {"uuid", "device_id", "client_cert", "fingerprint", "ca_cert", "private_key"} <= response.json().keys()


def test_post_no_body(registration_url):
    response = requests.post(registration_url + "/registration/", timeout=10)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_json"


def test_post_missing_fields(registration_url):
    response = requests.post(registration_url + "/registration/", json={"username": unique_name()}, timeout=10)
    assert (response.status_code, response.json()["code"]) == (400, "missing_fields")


def race(registration_url: str, bodies: list[dict]) -> list[requests.Response]:
    barrier = Barrier(len(bodies))

    def post(body):
        with requests.Session() as session:
            barrier.wait()
            return session.post(registration_url + "/registration/", json=body, timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


@pytest.mark.parametrize("round_", range(5))
def test_twenty_racing_registrations_of_one_username(registration_url, app, round_):
    # Transaction conflicts among the racers are retried: never a 503 (issue 16 item 23).
    name = unique_name()
    bodies = [{"username": name, "email": f"{name}{i}@example.com", "password": "a long passphrase"}
              for i in range(20)]
    statuses = sorted((r.status_code, r.json().get("code")) for r in race(registration_url, bodies))
    assert statuses == [(201, None)] + [(409, "username_taken")] * 19
    assert stored_user_count(app, name) == 1


def test_twenty_racing_registrations_of_one_email_in_other_case(registration_url, app):
    # A held address is not told apart (SPEC §4): all twenty are made, exactly one holds the address.
    name = unique_name()
    email = f"{name}@Example.com"
    variants = [email.upper() if i % 2 else email.lower() for i in range(20)]
    bodies = [{"username": f"{name}_{i}", "email": variants[i], "password": "a long passphrase"}
              for i in range(20)]
    responses = race(registration_url, bodies)
    assert sorted((r.status_code, r.json().get("code")) for r in responses) == [(201, None)] * 20
    assert sum(stored_user_count(app, b["username"]) for b in bodies) == 20
    context = app.extensions["citylogin"]
    holder = users.email_holder(context, email=email)
    made = [users.get_user(context, user_uuid=r.json()["uuid"]) for r in responses]
    assert [u.user_uuid for u in made if u.email] == [holder]
    assert all(u.unclaimed_email for u in made if u.user_uuid != holder)
