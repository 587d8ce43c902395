"""The seed flow end to end over HTTP against the four services, each its own process."""
from __future__ import annotations

import base64
import io
from contextlib import ExitStack

import pytest
import requests
import zxingcpp
from PIL import Image

from citylogin.client import Client, ConcurrentLoginRequired
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.services import running_service

MODULES = ["registration.app_registration", "login_app.app_login", "session_manager.app_session_manager",
           "device_manager.app_device_manager"]


@pytest.fixture(scope="module")
def services(dynamodb_endpoint, data_dir, table_prefix):
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir,
                      "table_prefix": table_prefix, **FAST_ARGON2})
    with ExitStack() as stack:
        yield dict(zip(("registration", "login", "session", "device"),
                       (stack.enter_context(running_service(m, env)) for m in MODULES)))


def decode_qr_png(data_uri: str) -> str:
    assert data_uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    return results[0].text


def test_seed_flow_pair_a_second_device_by_qr(services):
    name = unique_name()
    device1 = Client(services["registration"])
    key1 = device1.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    on_login = Client(services["login"], key_file=key1)
    on_login.login(PASSWORD)

    pairing = requests.post(services["registration"] + "/registration/request_pairing_token", timeout=10,
                            headers={"Authorization": f"Bearer {on_login.access_token}"})
    assert pairing.status_code == 201, pairing.text
    body = pairing.json()
    assert body["expires_in"] == 600
    assert decode_qr_png(body["qr_png"]) == body["qr_code"]

    device2 = Client(services["device"])
    key2 = device2.pair(decode_qr_png(body["qr_png"]), username=name, password=PASSWORD, device_name="phone")
    assert key2.fingerprint != key1.fingerprint
    assert key2.user_uuid == key1.user_uuid

    listed = requests.get(services["device"] + "/device/list", timeout=10,
                          headers={"Authorization": f"Bearer {on_login.access_token}"}).json()["devices"]
    assert {d["device_id"] for d in listed} == {key1.device_id, key2.device_id}
    assert [d["current"] for d in listed] == [True, False]

    with pytest.raises(ConcurrentLoginRequired) as refused:
        Client(services["login"], key_file=key2).login(PASSWORD)
    assert [d["device_id"] for d in refused.value.active_devices] == [key1.device_id]


def test_seed_compatible_pairing_request_and_registration_with_qr_code(services):
    name = unique_name()
    key1 = Client(services["registration"]).register(username=name, email=f"{name}@example.com", password=PASSWORD)
    pairing = requests.post(services["registration"] + "/registration/request_pairing_token", timeout=10,
                            json={"username": name, "password": PASSWORD, "client_cert_fp": key1.fingerprint})
    assert pairing.status_code == 201
    second = requests.post(services["registration"] + "/registration/", timeout=10, json={
        "qr_code": pairing.json()["qr_code"], "username": name, "password": PASSWORD})
    assert second.status_code == 201
    assert second.json()["uuid"] == key1.user_uuid
    assert "private_key" in second.json()  # no key sent: the server generated one
