"""The seed flow end to end over HTTP against the four services, each its own process."""
from __future__ import annotations

import base64
import io
import json
from contextlib import ExitStack

import pytest
import requests
import zxingcpp
from PIL import Image

from citylogin.client.api import Client, ConcurrentLoginRequired
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.services import running_service

PUBLIC_URL = "https://login.example.org"
MODULES = ["registration.app_registration", "login_app.app_login", "session_manager.app_session_manager",
           "device_manager.app_device_manager"]


@pytest.fixture(scope="module")
def services(dynamodb_endpoint, data_dir, table_prefix):
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir,
                      "table_prefix": table_prefix, "public_url": PUBLIC_URL, **FAST_ARGON2, **RAISED_LIMITS})
    with ExitStack() as stack:
        yield dict(zip(("registration", "login", "session", "device"),
                       (stack.enter_context(running_service(m, env)) for m in MODULES), strict=True))


def decode_qr_png(data_uri: str) -> str:
    assert data_uri.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])))
    # QR codes only, as a camera app in QR mode: an any-format scan now and then also "finds" a short
    # ITF bar code in the modules (about 1 in 500 with the fixed mask; the QR code itself always reads).
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1
    return results[0].text


def test_seed_flow_pair_a_second_device_by_qr(services):
    name = unique_name()
    device1 = Client(services["registration"])
    key1 = device1.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    on_login = Client(services["login"], key_file=key1)
    on_login.login(PASSWORD)

    body = request_pairing(services, on_login)
    assert body["expires_in"] == 600
    assert decode_qr_png(body["qr_png"]) == body["qr_code"] == f"{PUBLIC_URL}/#pair={body['qr_payload']}"

    device2 = Client(services["device"])
    key2 = device2.pair(decode_qr_png(body["qr_png"]), username=name, password=PASSWORD, device_name="phone")
    assert key2.fingerprint != key1.fingerprint
    assert key2.user_uuid == key1.user_uuid

    list_url = services["device"] + "/device/list"
    listed = requests.get(list_url, timeout=10, headers=on_login.auth_headers("GET", list_url)).json()["devices"]
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


def b64url(data: dict | list) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def new_account(services) -> tuple[str, Client]:
    name = unique_name()
    key = Client(services["registration"]).register(username=name, email=f"{name}@example.com", password=PASSWORD)
    on_login = Client(services["login"], key_file=key)
    on_login.login(PASSWORD)
    return name, on_login


def request_pairing(services, on_login: Client) -> dict:
    url = services["registration"] + "/registration/request_pairing_token"
    response = requests.post(url, timeout=10, headers=on_login.auth_headers("POST", url))
    assert response.status_code == 201, response.text
    return response.json()


def test_the_qr_png_holds_the_pairing_link_of_the_public_url(services):
    _, on_login = new_account(services)
    body = request_pairing(services, on_login)
    link = decode_qr_png(body["qr_png"])
    assert link.startswith(f"{PUBLIC_URL}/#pair=")
    assert link.removeprefix(f"{PUBLIC_URL}/#pair=") == body["qr_payload"]
    assert set(body) == {"qr_code", "qr_payload", "qr_png", "expires_at", "expires_in"}


SCANNED_FORMS = {
    "link": lambda body: body["qr_code"],
    "bare payload": lambda body: body["qr_payload"],
    "link of another host": lambda body: f"http://192.168.1.20:8080/#pair={body['qr_payload']}",
    "link in whitespace": lambda body: f"  \n{body['qr_code']}\t ",
    "padded payload": lambda body: body["qr_payload"] + "=" * (-len(body["qr_payload"]) % 4),
}


def test_device_register_takes_the_link_or_the_payload(services):
    name, on_login = new_account(services)
    for form, scanned in SCANNED_FORMS.items():
        response = requests.post(services["device"] + "/device/register", timeout=10, json={
            "qr_code": scanned(request_pairing(services, on_login)), "username": name, "password": PASSWORD})
        assert response.status_code == 201, (form, response.text)
        assert response.json()["uuid"] == on_login.key_file.user_uuid


UUID = "0b8e8f5e-9f0a-4c1e-9d1b-3a2b1c0d9e8f"
TOKEN = "A" * 43
GOOD = b64url({"v": 1, "uuid": UUID, "token": TOKEN})


@pytest.mark.parametrize("qr_code", [
    "not a pairing code!",
    "a",                                                         # not a base64 length
    "abc",                                                       # base64, not JSON
    GOOD + "$",
    "x" * 3000,                                                  # over-long (the field allows 4096)
    f"{PUBLIC_URL}/" + "a" * 2100 + f"#pair={GOOD}",             # over-long link
    f"{PUBLIC_URL}/",                                            # a link without a fragment
    f"{PUBLIC_URL}/#verify={GOOD}",                              # a fragment without pair=
    f"{PUBLIC_URL}/#pair=",
    f"{PUBLIC_URL}/#pair={GOOD}&x=1",
    f"{PUBLIC_URL}/#pair=%20{GOOD}",
    b64url({"v": 2, "uuid": UUID, "token": TOKEN}),              # wrong version
    b64url({"v": True, "uuid": UUID, "token": TOKEN}),
    b64url({"v": 1, "uuid": "not-a-uuid", "token": TOKEN}),
    b64url({"v": 1, "uuid": UUID, "token": "short"}),
    b64url({"v": 1, "uuid": UUID}),
    b64url([1, UUID, TOKEN]),
])
@pytest.mark.parametrize("path", ["/device/register", "/registration/"])
def test_garbage_is_400_invalid_qr(services, qr_code, path):
    url = services["device"] if path == "/device/register" else services["registration"]
    response = requests.post(url + path, timeout=10, json={"qr_code": qr_code, "username": "someone",
                                                            "password": PASSWORD})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_qr"), response.text
