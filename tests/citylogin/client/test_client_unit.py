"""citylogin.client.api without the login/session services: keys, key files, errors, token refresh,
and a registration round trip against the real registration service."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import stat
from datetime import datetime, timedelta, timezone

import pytest
import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from citylogin.client.api import (KEY_KINDS, Client, CityloginError, ConcurrentLoginRequired, KeyFile, generate_key,
                                  private_key_pem, sign_challenge)
from citylogin.client.cli import client as client_cli
from citylogin.client.in_use import _chosen, device_list
from tests.conftest import unique_name

PASSWORD = "a long passphrase"


def make_key_file(kind: str = "ecdsa-p256") -> KeyFile:
    return KeyFile(base_url="http://127.0.0.1:1", username="alice", user_uuid="u-1", device_id="d-1",
                   device_name="laptop", private_key_pem=private_key_pem(generate_key(kind)),
                   client_cert_pem="-----BEGIN CERTIFICATE-----\n...", fingerprint="ab" * 32, ca_cert_pem="ca")


def fake_response(status: int, body: dict | str | None, content_type: str = "application/problem+json"):
    response = requests.Response()
    response.status_code = status
    if body is not None:
        response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
        response.headers["Content-Type"] = content_type
    else:
        response._content = b""
    return response


# --- key file ---------------------------------------------------------------------------------

def test_key_file_round_trip_is_mode_0600(tmp_path):
    path = tmp_path / "device.json"
    key_file = make_key_file()
    key_file.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyFile.load(path) == key_file


def test_saving_over_a_readable_file_makes_it_0600(tmp_path):
    path = tmp_path / "device.json"
    path.write_text("old")
    path.chmod(0o644)
    make_key_file().save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyFile.load(path).username == "alice"


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_key_file_private_key_is_the_saved_key(kind, tmp_path):
    key_file = make_key_file(kind)
    key_file.save(tmp_path / "k.json")
    assert private_key_pem(KeyFile.load(tmp_path / "k.json").private_key()) == key_file.private_key_pem


# --- keys and signatures ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", KEY_KINDS)
def test_sign_challenge_verifies(kind):
    key = generate_key(kind)
    signature = base64.b64decode(sign_challenge(key, "nonce-123"), validate=True)
    message = b"citylogin-login:nonce-123"
    if kind == "ecdsa-p256":
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
    else:
        key.public_key().verify(signature, message)


def test_sign_challenge_does_not_verify_for_another_challenge():
    key = generate_key("ed25519")
    signature = base64.b64decode(sign_challenge(key, "one"))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, b"citylogin-login:two")


def test_unknown_key_kind_is_refused():
    with pytest.raises(ValueError, match="rsa"):
        generate_key("rsa")


# --- errors -----------------------------------------------------------------------------------

def test_error_from_problem_body():
    body = {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "taken", "code": "username_taken"}
    error = CityloginError.from_response(fake_response(409, body))
    assert type(error) is CityloginError
    assert (error.status, error.code, error.detail, error.body) == (409, "username_taken", "taken", body)
    assert "username_taken" in str(error)


def test_concurrent_login_error_carries_the_confirm_token():
    body = {"status": 409, "code": "concurrent_login", "detail": "in use", "confirm_token": "ct",
            "active_devices": [{"device_id": "d-2", "device_name": "phone"}]}
    error = CityloginError.from_response(fake_response(409, body))
    assert isinstance(error, ConcurrentLoginRequired)
    assert (error.confirm_token, error.active_devices[0]["device_id"]) == ("ct", "d-2")


def test_concurrent_login_error_lists_the_devices_to_choose_from():
    body = {"status": 409, "code": "concurrent_login", "detail": "Sign in on this device?", "confirm_token": "ct",
            "action": {"kind": "screen", "device_name": "TV", "device_class": "tv", "client_name": "Telly"},
            "needed": 2, "active_devices": [
                {"session_id": "s-1", "device_id": "d-1", "device_name": "laptop", "device_class": "desktop",
                 "login_at": "2026-11-29T06:00:00Z", "last_seen_at": "2026-11-29T06:20:00Z", "ip": "203.0.113.5",
                 "user_agent": None, "apps": [{"client_id": "c-1", "name": "Notes"}], "current": False,
                 "default": True},
                {"session_id": "s-2", "device_id": "d-2", "device_name": "phone", "device_class": "mobile",
                 "login_at": "2026-11-29T06:10:00Z", "last_seen_at": None, "ip": None, "user_agent": "x",
                 "apps": [], "current": True, "default": True},
                {"session_id": "s-3", "device_id": "d-3", "device_name": "tablet", "device_class": "tablet",
                 "login_at": "2026-11-29T06:15:00Z", "last_seen_at": None, "ip": None, "user_agent": None,
                 "apps": [], "current": False, "default": False}]}
    error = CityloginError.from_response(fake_response(409, body))
    assert isinstance(error, ConcurrentLoginRequired)
    assert (error.needed, error.action["kind"], error.defaults) == (2, "screen", ["s-1", "s-2"])
    laptop, phone, _ = error.devices
    assert (laptop.session_id, laptop.apps, laptop.default, laptop.current) == ("s-1", ("Notes",), True, False)
    assert (phone.device_class, phone.current, phone.user_agent) == ("mobile", True, "x")

    listed = device_list(error).splitlines()
    assert re.match(r"1\. +laptop +desktop +.* Notes +\(default\)$", listed[1]), listed
    assert re.match(r"2\. +phone \(this device\) +mobile +.* - +\(default\)$", listed[2]), listed
    assert re.match(r"3\. +tablet +tablet +.* -$", listed[3]), listed
    assert [_chosen(answer, error) for answer in ("", "3 1", "1,2,3", "1", "4 1", "x")] == [
        ["s-1", "s-2"], ["s-1", "s-3"], ["s-1", "s-2", "s-3"], None, None, None]  # at least `needed`


def test_a_concurrent_login_from_an_older_server_still_parses():
    body = {"status": 409, "code": "concurrent_login", "confirm_token": "ct",
            "active_devices": [{"device_id": "d-2", "device_name": "phone"}]}
    error = CityloginError.from_response(fake_response(409, body))
    assert (error.needed, error.action, error.defaults) == (1, {"kind": "login"}, [])
    assert (error.devices[0].device_name, error.devices[0].session_id) == ("phone", "")


def test_displace_is_sent_with_force_on_a_login_and_alone_on_a_confirm():
    tokens = {"access_token": "a", "refresh_token": "r", "session_id": "s-9"}
    client, adapter = scripted_client(fake_response(200, {"challenge": "ch"}, "application/json"),
                                      fake_response(200, tokens, "application/json"),
                                      fake_response(200, tokens, "application/json"))
    client.key_file = make_key_file()
    client.login("pw", displace=["s-2"])
    client.confirm("ct", displace="s-3")  # one id given as a string is one id
    login, confirm = (json.loads(adapter.sent[i].body) for i in (1, 2))
    assert (login["force"], login["displace"]) == (True, ["s-2"])
    assert confirm == {"confirm_token": "ct", "displace": ["s-3"]}


def test_error_from_a_non_json_answer():
    error = CityloginError.from_response(fake_response(502, "Bad Gateway", "text/html"))
    assert (error.status, error.code, error.detail) == (502, "http_error", "Bad Gateway")


# --- token refresh, against a scripted transport ----------------------------------------------

class ScriptedAdapter(requests.adapters.BaseAdapter):
    """Answers each request with the next scripted response and records what was sent."""

    def __init__(self, responses):
        super().__init__()
        self.responses, self.sent = list(responses), []

    def send(self, request, **kwargs):
        self.sent.append(request)
        response = self.responses.pop(0)
        response.request, response.url = request, request.url
        return response

    def close(self):
        pass


def scripted_client(*responses) -> tuple[Client, ScriptedAdapter]:
    adapter, session = ScriptedAdapter(responses), requests.Session()
    session.mount("http://", adapter)
    client = Client("http://server/", session=session)
    client.access_token, client.refresh_token, client.session_id = "old-access", "old-refresh", "s-1"
    return client, adapter


def test_request_refreshes_once_on_token_expired_and_retries():
    client, adapter = scripted_client(
        fake_response(401, {"status": 401, "code": "token_expired"}),
        fake_response(200, {"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 900}),
        fake_response(200, {"session_id": "s-1"}, "application/json"))
    assert client.get_json("/session/me") == {"session_id": "s-1"}
    assert [r.url for r in adapter.sent] == ["http://server/session/me", "http://server/session/refresh",
                                             "http://server/session/me"]
    assert json.loads(adapter.sent[1].body) == {"refresh_token": "old-refresh"}
    assert adapter.sent[2].headers["Authorization"] == "Bearer new-access"
    assert (client.access_token, client.refresh_token, client.session_id) == ("new-access", "new-refresh", "s-1")


def test_request_returns_the_failed_refresh_answer():
    client, adapter = scripted_client(
        fake_response(401, {"status": 401, "code": "token_expired"}),
        fake_response(401, {"status": 401, "code": "session_revoked", "reason": "displaced"}))
    response = client.request("GET", "/device/list")
    assert (response.status_code, response.json()["code"], response.json()["reason"]) == \
        (401, "session_revoked", "displaced")
    assert len(adapter.sent) == 2


def test_request_does_not_refresh_on_other_401s():
    client, adapter = scripted_client(fake_response(401, {"status": 401, "code": "session_revoked"}))
    assert client.request("GET", "/session/me").json()["code"] == "session_revoked"
    with pytest.raises(CityloginError) as raised:
        scripted_client(fake_response(401, {"status": 401, "code": "invalid_token"}))[0].get_json("/x")
    assert raised.value.code == "invalid_token"


def test_every_new_pair_goes_to_on_tokens_and_round_trips():
    client, adapter = scripted_client(
        fake_response(401, {"status": 401, "code": "token_expired"}),
        fake_response(200, {"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 900}),
        fake_response(200, {"session_id": "s-1"}, "application/json"))
    seen = []
    client.on_tokens = lambda c: seen.append(c.tokens())
    client.get_json("/session/me")
    assert [t["refresh_token"] for t in seen] == ["new-refresh"] and seen[0]["session_id"] == "s-1"
    expires = datetime.fromisoformat(seen[0]["access_expires_at"])
    assert timedelta(seconds=890) < expires - datetime.now(timezone.utc) <= timedelta(seconds=900)
    again = Client("http://server/")
    again.use_tokens(seen[0])
    assert again.tokens() == seen[0]


def test_refresh_if_due_refreshes_only_near_the_end():
    client, adapter = scripted_client(
        fake_response(200, {"access_token": "a2", "refresh_token": "r2", "expires_in": 900}, "application/json"))
    client.access_expires_at = datetime.now(timezone.utc) + timedelta(seconds=300)
    client.refresh_if_due()
    assert adapter.sent == []
    client.access_expires_at = datetime.now(timezone.utc) + timedelta(seconds=30)
    client.refresh_if_due()
    assert [r.url for r in adapter.sent] == ["http://server/session/refresh"] and client.refresh_token == "r2"


def test_logout_forgets_the_tokens_and_tells_on_tokens():
    client, _ = scripted_client(fake_response(204, None))
    seen = []
    client.on_tokens = lambda c: seen.append(c.tokens())
    client.logout()
    assert seen == [None] and client.refresh_token is None and client.session_id is None


def test_a_key_file_from_before_sessions_loads(tmp_path):
    path = tmp_path / "old.json"
    fields = {k: v for k, v in dataclasses.asdict(make_key_file()).items() if k != "session"}
    path.write_text(json.dumps(fields))
    assert KeyFile.load(path).session is None


def login_answer(*, renew_certificate: bool) -> requests.Response:
    return fake_response(200, {"access_token": "a", "refresh_token": "r", "session_id": "s-2", "device_id": "d-1",
                               "renew_certificate": renew_certificate, "cert_expires_at": "2030-01-01T00:00:00Z"},
                         "application/json")


def renewed_answer() -> requests.Response:
    return fake_response(201, {"device_id": "d-1", "client_cert": base64.b64encode(b"NEW CERT").decode(),
                               "fingerprint": "cd" * 32, "ca_cert": "ca", "cert_expires_at": "2031-01-01T00:00:00Z"},
                         "application/json")


def test_login_renews_by_itself_when_the_answer_says_so():
    client, adapter = scripted_client(
        fake_response(201, {"challenge": "c-login", "expires_in": 60}, "application/json"),
        login_answer(renew_certificate=True),
        fake_response(201, {"challenge": "c-renew", "expires_in": 60}, "application/json"),
        renewed_answer())
    client.key_file = old = make_key_file("ed25519")
    old_key, saved = old.private_key(), []
    client.on_renew = saved.append

    answer = client.login(PASSWORD)
    assert answer["renewed"] is True
    assert [r.url for r in adapter.sent][2:] == ["http://server/login/challenge", "http://server/device/renew"]
    renew = adapter.sent[3]
    assert renew.headers["Authorization"] == "Bearer a"
    body = json.loads(renew.body)
    old_key.public_key().verify(base64.b64decode(body["signature"]), b"citylogin-renew:c-renew")  # the current key
    assert saved == [client.key_file]
    assert (client.key_file.client_cert_pem, client.key_file.fingerprint) == ("NEW CERT", "cd" * 32)
    new_public = serialization.load_pem_public_key(body["public_key"].encode())
    assert public_der(client.key_file.private_key().public_key()) == public_der(new_public)


def test_login_does_not_renew_when_not_due_or_told_not_to():
    client, adapter = scripted_client(
        fake_response(201, {"challenge": "c1"}, "application/json"), login_answer(renew_certificate=False),
        fake_response(201, {"challenge": "c2"}, "application/json"), login_answer(renew_certificate=True))
    client.key_file = make_key_file()
    assert "renewed" not in client.login(PASSWORD)
    client.auto_renew = False
    told_not_to = client.login(PASSWORD)
    assert told_not_to["renew_certificate"] is True and "renewed" not in told_not_to
    assert len(adapter.sent) == 4  # no renewal call either time


def test_renew_without_a_new_key_certifies_the_same_key():
    client, adapter = scripted_client(fake_response(201, {"challenge": "c"}, "application/json"), renewed_answer())
    client.key_file = make_key_file()
    key_pem = client.key_file.private_key_pem
    client.renew(new_key=False)
    assert "public_key" not in json.loads(adapter.sent[1].body)
    assert client.key_file.private_key_pem == key_pem and client.key_file.fingerprint == "cd" * 32


# --- registration against the real service ----------------------------------------------------

def public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_register_issues_a_certificate_for_the_local_key(registration_url, kind, tmp_path):
    name = unique_name()
    client = Client(registration_url)
    key_file = client.register(username=name, email=f"{name}@example.com", password=PASSWORD,
                               device_name="laptop", key_kind=kind)
    assert client.key_file is key_file
    cert = x509.load_pem_x509_certificate(key_file.client_cert_pem.encode())
    assert public_der(cert.public_key()) == public_der(key_file.private_key().public_key())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == key_file.user_uuid
    assert key_file.fingerprint == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert (key_file.username, key_file.device_name, key_file.base_url) == (name, "laptop", registration_url)
    key_file.save(tmp_path / "device.json")
    assert KeyFile.load(tmp_path / "device.json") == key_file


def test_register_taken_username_raises_its_code(registration_url):
    name = unique_name()
    Client(registration_url).register(username=name, email=f"{name}@example.com", password=PASSWORD)
    with pytest.raises(CityloginError) as raised:
        Client(registration_url).register(username=name, email=f"{name}2@example.com", password=PASSWORD)
    assert (raised.value.status, raised.value.code) == (409, "username_taken")


def test_cli_register_writes_a_private_key_file(registration_url, tmp_path):
    name, path = unique_name(), tmp_path / "device.json"
    args = ["register", "--url", registration_url, "--username", name, "--email", f"{name}@example.com",
            "--key-file", str(path), "--key-kind", "ed25519"]
    result = CliRunner().invoke(client_cli, args, env={"CITYLOGIN_CLIENT_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeyFile.load(path).fingerprint in result.output
    again = CliRunner().invoke(client_cli, args, env={"CITYLOGIN_CLIENT_PASSWORD": PASSWORD})
    assert again.exit_code != 0 and "exists" in again.output
