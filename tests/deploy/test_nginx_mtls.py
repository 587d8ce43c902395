"""deploy/nginx (issue 9, item 4): Debian's nginx, configured from the shipped template, terminates
TLS in front of two all-in-one processes (each with its own empty data directory, sharing DynamoDB
and the key-encryption key). A device certificate that nginx verified against the service CA is the
login's proof of possession (SPEC §4); a certificate from another CA, or a client-written
X-Client-Cert header, is not. Tokens work on every upstream and Server-Sent Events pass through.
nginx loads the service's CRL (`ssl_crl`), and `citylogin crl-sync` gets an unbound device's
certificate refused there within a minute (issue 10, item 1).

Skipped only when nginx is missing and CI is unset; under CI a missing nginx fails."""
from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import threading
import shlex
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID

from citylogin.client.api import Client, sign_challenge
from citylogin.cli.crl_sync import SyncConfig, sync_once
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.nginx import reload_command, require_nginx, running_nginx
from tests.support.ports import free_port
from tests.support.services import running_service
from tests.support.tls import new_authority, reissued, server_certificate, write_cert, write_key

CERT_HEADER = "X-Client-Cert"


@dataclass(frozen=True)
class Deployment:
    url: str  # nginx, https
    app_urls: list[str]  # each app process, plain http
    server_ca: Path  # what clients trust for nginx's server certificate
    service_ca_name: str
    service_ca: Path  # nginx's ssl_client_certificate
    crl: Path  # nginx's ssl_crl
    nginx_prefix: Path

    def https(self, cert: tuple[Path, Path] | None = None) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE, if set, wins over session.verify
        session.verify = str(self.server_ca)
        session.cert = tuple(map(str, cert)) if cert else None
        return session


@dataclass(frozen=True)
class Device:
    client: Client
    cert_file: Path
    key_file: Path

    @property
    def tls_identity(self) -> tuple[Path, Path]:
        return self.cert_file, self.key_file

    @property
    def username(self) -> str:
        return self.client.key_file.username


@pytest.fixture(scope="module", autouse=True)
def nginx_present() -> None:
    require_nginx()


@pytest.fixture(scope="module")
def deployment(nginx_present, dynamodb_endpoint, tmp_path_factory) -> Deployment:
    # As in production, the public URL is nginx's: the URL a device's DPoP proofs name (SPEC §12).
    port = free_port()
    shared = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("nginx") + "_",
                            "public_url": f"https://127.0.0.1:{port}",
                            "trusted_client_cert_header": CERT_HEADER, "trusted_proxies": 1,
                            "events_heartbeat": 1, "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS}),
              "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    tls = tmp_path_factory.mktemp("tls")
    server_ca = new_authority("nginx test server CA")
    server_cert, server_key = server_certificate(server_ca)
    with ExitStack() as stack:
        app_urls = [stack.enter_context(running_service(
            "citylogin", {**shared, "CITYLOGIN_DATA_DIR": str(tmp_path_factory.mktemp(f"app-{n}"))}, args=("serve",)))
            for n in ("a", "b")]
        service_ca_pem = requests.get(app_urls[0] + "/device/ca.pem", timeout=10).text
        (tls / "service-ca.pem").write_text(service_ca_pem)
        # As at a container's start: `citylogin crl-sync --once` before nginx, which needs the file.
        assert sync_once(SyncConfig(service_url=app_urls[0], crl_file=tls / "crl.pem",
                                    ca_file=tls / "service-ca.pem", reload_cmd=""))
        prefix = tmp_path_factory.mktemp("nginx")
        url = stack.enter_context(running_nginx(
            prefix, upstream_urls=app_urls, client_ca=tls / "service-ca.pem", client_crl=tls / "crl.pem", port=port,
            tls_cert=write_cert(tls / "server.pem", server_cert), tls_key=write_key(tls / "server.key", server_key)))
        service_ca = x509.load_pem_x509_certificate(service_ca_pem.encode())
        yield Deployment(url, app_urls, write_cert(tls / "server-ca.pem", server_ca.cert),
                         service_ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         tls / "service-ca.pem", tls / "crl.pem", prefix)


@pytest.fixture
def device(deployment, tmp_path) -> Device:
    """A new user's first device, registered over HTTPS through nginx; its certificate and key in files."""
    name = unique_name()
    client = Client(deployment.url, session=deployment.https())
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    return device_files(client, tmp_path / "device")


def device_files(client: Client, stem: Path) -> Device:
    key_file = client.key_file
    cert_file, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
    cert_file.write_text(key_file.client_cert_pem)
    key_path.write_text(key_file.private_key_pem)
    key_path.chmod(0o600)
    return Device(client, cert_file, key_path)


def login_without_proof(session: requests.Session, url: str, device: Device, **kwargs) -> requests.Response:
    """POST /login/ with only the username and password: the TLS client certificate must be the proof."""
    return session.post(url + "/login/", json={"username": device.username, "password": PASSWORD},
                        timeout=10, **kwargs)


def me(session: requests.Session, url: str, token: str) -> requests.Response:
    return session.get(url + "/session/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_a_certificate_nginx_verified_is_the_proof_and_the_token_works_on_every_upstream(deployment, device):
    mtls = deployment.https(cert=device.tls_identity)
    response = login_without_proof(mtls, deployment.url, device, headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device_id"] == device.client.key_file.device_id
    token = body["access_token"]

    for app_url in deployment.app_urls:
        assert me(requests.Session(), app_url, token).status_code == 200
    for _ in range(4):  # round robin: every upstream answers through nginx
        answer = me(deployment.https(), deployment.url, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["session_id"] == body["session_id"]
    assert answer.json()["ip"] == "127.0.0.1"  # nginx's peer address, not the client-written one


def test_session_events_stream_through_nginx(deployment, device):
    mtls = deployment.https(cert=device.tls_identity)
    token = login_without_proof(mtls, deployment.url, device).json()["access_token"]
    events: queue.Queue = queue.Queue()
    threading.Thread(target=_read_events, args=(deployment.https(), deployment.url, token, events), daemon=True).start()
    # The stream's first line got through unbuffered; the server sends it once the stream is subscribed.
    assert events.get(timeout=30)[0] == "retry"

    logged_out = time.monotonic()
    assert mtls.post(deployment.url + "/session/logout", headers={"Authorization": f"Bearer {token}"},
                     timeout=10).status_code == 204
    while (item := events.get(timeout=30))[0] == "keep-alive":
        pass
    assert item[:2] == ("event", "session_revoked")
    assert item[2] - logged_out < 2.5


def test_a_certificate_from_another_ca_is_no_proof(deployment, device):
    # The device's own subject, SAN and key, signed by an impostor CA bearing the service CA's name.
    impostor = new_authority(deployment.service_ca_name)
    forged = write_cert(device.cert_file.with_name("forged.pem"),
                        reissued(x509.load_pem_x509_certificate(device.cert_file.read_bytes()), impostor))
    session = deployment.https(cert=(forged, device.key_file))
    refused = login_without_proof(session, deployment.url, device)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "missing_fields"  # the app answered: nginx sent it no certificate

    # Failed verification is no error page: the same connection still logs in with a signature.
    challenge = session.post(deployment.url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    key_file = device.client.key_file
    signed = session.post(deployment.url + "/login/", timeout=10, json={
        "username": device.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
        "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)})
    assert signed.status_code == 200, signed.text


def test_a_client_written_certificate_header_is_overwritten(deployment, device):
    spoofed = {CERT_HEADER: quote(device.cert_file.read_text()), "X-Forwarded-For": "203.0.113.7"}
    refused = login_without_proof(deployment.https(), deployment.url, device, headers=spoofed)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "missing_fields"

    # The very same header straight to an app is believed: why the apps must be reachable from
    # the proxy only (deploy/nginx/README.md).
    direct = login_without_proof(requests.Session(), deployment.app_urls[1], device, headers=spoofed)
    assert direct.status_code == 200, direct.text


def test_an_unbound_devices_certificate_is_refused_at_tls_once_crl_sync_ran(deployment, device, tmp_path):
    kept = device
    kept.client.login(PASSWORD)
    qr_code = kept.client.request_pairing()["qr_code"]
    kept.client.logout()
    paired = Client(deployment.url, session=deployment.https())
    paired.pair(qr_code, username=kept.username, password=PASSWORD)
    unbound = device_files(paired, tmp_path / "paired")
    for each in (unbound, kept):  # both certificates pass nginx's verification: each is the proof
        answer = login_without_proof(deployment.https(cert=each.tls_identity), deployment.url, each)
        assert answer.status_code == 200, answer.text
        each.client.use_tokens(answer.json())  # a bearer session: mTLS logins here send no DPoP proof
        if each is unbound:
            each.client.logout()  # one device logged in at a time (the default limit)

    # Unbound at the process crl-sync reads from, which shows it at once (others within 60 s).
    at_app = Client(deployment.app_urls[0], key_file=kept.client.key_file)
    at_app.use_tokens(kept.client.tokens())
    assert at_app.request("POST", "/device/unbind", json={"device_id": unbound.client.key_file.device_id}
                          ).status_code == 200
    refused_by_app = login_without_proof(deployment.https(cert=unbound.tls_identity), deployment.url, unbound)
    assert refused_by_app.json()["code"] != "missing_fields"  # nginx still passes it on: its CRL is old

    unbound_at, serial = time.monotonic(), x509.load_pem_x509_certificate(unbound.cert_file.read_bytes()).serial_number
    with _crl_sync(deployment, interval=1):
        # Wait for the file first: every login the app refuses counts towards the user's lockout.
        _poll(lambda: x509.load_pem_x509_crl(deployment.crl.read_bytes()).get_revoked_certificate_by_serial_number(
            serial), until=bool, within=55, every=0.2)
        refusal = _poll(lambda: login_without_proof(deployment.https(cert=unbound.tls_identity),
                                                    deployment.url, unbound),
                        until=lambda r: r.status_code == 400 and r.json()["code"] == "missing_fields",
                        within=60 - (time.monotonic() - unbound_at), every=1)
    assert time.monotonic() - unbound_at < 60
    # With `optional` (and `on`) the handshake completes and nginx fails the request with 495; the
    # template's error_page sends it on without X-Client-Cert, so the app asks for other proof.
    assert refusal.status_code == 400 and refusal.json()["code"] == "missing_fields"
    kept_login = login_without_proof(deployment.https(cert=kept.tls_identity), deployment.url, kept)
    assert kept_login.status_code == 200, kept_login.text  # the CRL is current: the other device passes


@contextmanager
def _crl_sync(deployment: Deployment, *, interval: float) -> Iterator[subprocess.Popen]:
    """`python -m citylogin crl-sync` beside this nginx, reloading it."""
    reload_cmd = " ".join(map(shlex.quote, reload_command(deployment.nginx_prefix)))
    process = subprocess.Popen(
        [sys.executable, "-m", "citylogin", "crl-sync", "--url", deployment.app_urls[0],
         "--out", str(deployment.crl), "--ca-file", str(deployment.service_ca), "--interval", str(interval),
         "--reload-cmd", reload_cmd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert b"not installed" not in stderr, stderr.decode(errors="replace")


def _poll(probe, *, until, within: float, every: float):
    deadline = time.monotonic() + within
    while True:
        result = probe()
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(every)


def _read_events(session: requests.Session, url: str, token: str, events: queue.Queue) -> None:
    """Put (kind, name, time received) for each line of the stream: retry, keep-alive or event."""
    with session.get(url + "/session/events", headers={"Authorization": f"Bearer {token}"},
                     stream=True, timeout=30) as response:
        for line in response.iter_lines(decode_unicode=True):
            now = time.monotonic()
            if line.startswith("retry:"):
                events.put(("retry", None, now))
            elif line.startswith(":"):
                events.put(("keep-alive", None, now))
            elif line.startswith("event:"):
                events.put(("event", line.split(":", 1)[1].strip(), now))
                return
