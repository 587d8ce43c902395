"""Certificate renewal and the CRL (SPEC §4): POST /device/renew, GET /device/crl.pem, and the
renew_certificate / cert_expires_at fields of a login."""
from __future__ import annotations

import base64
import copy
import threading
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from citylogin.client.api import (RENEW_PURPOSE, Client, CityloginError, KeyFile, generate_key, public_key_pem,
                                  sign_challenge)
from common.timefmt import parse_iso
from devices import service as devices
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device

DAY = 86400


def serial_of(key_file: KeyFile) -> int:
    return x509.load_pem_x509_certificate(key_file.client_cert_pem.encode()).serial_number


def fetch_crl(url: str) -> x509.CertificateRevocationList:
    response = requests.get(url + "/device/crl.pem", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-pem-file")
    return x509.load_pem_x509_crl(response.content)


def revoked_reason(crl: x509.CertificateRevocationList, serial: int) -> x509.ReasonFlags | None:
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    if entry is None:
        return None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def renew_body(client: Client, *, key=None, purpose: str = RENEW_PURPOSE, new_key=None) -> dict:
    challenge = client.http.post(client.base_url + "/login/challenge", timeout=10).json()["challenge"]
    body = {"challenge": challenge,
            "signature": sign_challenge(key or client.key_file.private_key(), challenge, purpose=purpose)}
    if new_key is not None:
        body["public_key"] = public_key_pem(new_key)
    return body


def login_with(url: str, key_file: KeyFile) -> requests.Response:
    challenge = requests.post(url + "/login/challenge", timeout=10).json()["challenge"]
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
    return requests.post(url + "/login/", json=body, timeout=30)


def test_renewal_supersedes_the_old_certificate_which_goes_into_the_crl(make_server):
    url, ctx = make_server()
    client = register_device(url)
    first = client.login(PASSWORD)
    assert first["renew_certificate"] is False and "renewed" not in first
    assert parse_iso(first["cert_expires_at"]) > ctx.now() + timedelta(days=360)
    old = copy.deepcopy(client.key_file)

    renewed = client.renew()
    assert renewed.device_id == old.device_id and renewed.fingerprint != old.fingerprint
    assert renewed.private_key_pem != old.private_key_pem  # moved to a new key
    assert problem(login_with(url, old))[:2] == (401, "certificate_mismatch")
    again = client.login(PASSWORD)
    assert again["device_id"] == old.device_id and again["renew_certificate"] is False
    listed = client.get_json("/device/list")["devices"]
    assert [(d["device_id"], d["fingerprint"]) for d in listed] == [(old.device_id, renewed.fingerprint)]

    crl = fetch_crl(url)
    assert crl.is_signature_valid(ctx.ca.certificate.public_key())
    assert crl.issuer == ctx.ca.certificate.subject
    assert revoked_reason(crl, serial_of(old)) == x509.ReasonFlags.superseded
    assert revoked_reason(crl, serial_of(renewed)) is None
    assert crl.next_update_utc - ctx.now() <= timedelta(hours=24)


def test_renewal_without_a_new_key_certifies_the_same_key_again(make_server):
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    old_cert = x509.load_pem_x509_certificate(client.key_file.client_cert_pem.encode())
    response = client.request("POST", "/device/renew", json=renew_body(client))
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"device_id", "client_cert", "fingerprint", "ca_cert", "cert_expires_at"}
    new_cert = x509.load_pem_x509_certificate(base64.b64decode(body["client_cert"]))
    assert new_cert.public_key() == old_cert.public_key()
    assert new_cert.serial_number != old_cert.serial_number
    assert body["fingerprint"] == new_cert.fingerprint(hashes.SHA256()).hex() != client.key_file.fingerprint
    assert response.headers["Cache-Control"] == "no-store"


def test_unbound_device_shows_in_the_crl_of_every_process_within_a_minute(make_server):
    url, ctx = make_server(max_concurrent_devices=2)
    other_url, other_ctx = make_server(max_concurrent_devices=2)  # another process on the same tables
    other_ctx.clock = clock = FakeClock()
    first = register_device(url)
    first.login(PASSWORD)
    second = Client(url)
    second.pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)
    assert revoked_reason(fetch_crl(other_url), serial_of(second.key_file)) is None  # now cached there

    assert first.request("POST", "/device/unbind", json={"device_id": second.key_file.device_id}).status_code == 200
    assert revoked_reason(fetch_crl(url), serial_of(second.key_file)) == x509.ReasonFlags.cessation_of_operation
    assert revoked_reason(fetch_crl(other_url), serial_of(second.key_file)) is None  # within its 60 s cache
    clock.advance(61)
    crl = fetch_crl(other_url)
    assert revoked_reason(crl, serial_of(second.key_file)) == x509.ReasonFlags.cessation_of_operation
    assert crl.is_signature_valid(ctx.ca.certificate.public_key())
    assert revoked_reason(crl, serial_of(first.key_file)) is None


def test_a_certificate_near_its_end_is_renewed_by_the_client_at_login(make_server):
    url, ctx = make_server(cert_validity_days=10)
    client = register_device(url)
    ctx.settings = ctx.settings.model_copy(update={"cert_validity_days": 365})  # renewals get the usual
    saved: list[str] = []
    client.on_renew = lambda key_file: saved.append(key_file.fingerprint)
    old = copy.deepcopy(client.key_file)

    logged_in = client.login(PASSWORD)
    assert logged_in["renew_certificate"] is True and logged_in["renewed"] is True
    assert parse_iso(logged_in["cert_expires_at"]) < ctx.now() + timedelta(days=11)
    assert saved == [client.key_file.fingerprint] and client.key_file.fingerprint != old.fingerprint
    again = client.login(PASSWORD)
    assert again["renew_certificate"] is False and "renewed" not in again
    assert parse_iso(again["cert_expires_at"]) > ctx.now() + timedelta(days=360)
    assert problem(login_with(url, old))[:2] == (401, "certificate_mismatch")


def test_an_expired_certificate_logs_in_with_proof_within_the_grace_only(make_server):
    url, ctx = make_server(max_concurrent_devices=0, trusted_client_cert_header="X-SSL-Client-Cert")
    ctx.clock = clock = FakeClock()
    soon, late = register_device(url), register_device(url)
    on_clock(clock, soon, late)
    soon.auto_renew = False
    clock.advance(366 * DAY)  # a day past the end of a 365-day certificate

    logged_in = soon.login(PASSWORD)
    assert logged_in["renew_certificate"] is True
    assert parse_iso(logged_in["cert_expires_at"]) < clock()
    # Never by fingerprint alone, never on a proxy's header alone.
    ctx.settings = ctx.settings.model_copy(update={"require_proof_of_possession": False})
    by_fingerprint = {"username": soon.key_file.username, "password": PASSWORD,
                      "client_cert_fp": soon.key_file.fingerprint}
    assert problem(requests.post(url + "/login/", json=by_fingerprint, timeout=30))[:2] == (400, "missing_fields")
    by_proxy = requests.post(url + "/login/", json={"username": soon.key_file.username, "password": PASSWORD},
                             headers={"X-SSL-Client-Cert": quote(soon.key_file.client_cert_pem)}, timeout=30)
    assert problem(by_proxy)[:2] == (400, "missing_fields")
    ctx.settings = ctx.settings.model_copy(update={"require_proof_of_possession": True})

    soon.renew()
    assert soon.login(PASSWORD)["renew_certificate"] is False
    clock.advance(30 * DAY)  # 31 days past the end: beyond the 30-day grace
    assert problem(login_with(url, late.key_file))[:2] == (401, "certificate_expired")
    assert soon.login(PASSWORD)["renew_certificate"] is False


def test_a_bad_renewal_signature_is_invalid_proof(make_server):
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    before = client.key_file.fingerprint
    new_key = generate_key()
    for body in (renew_body(client, purpose="citylogin-login:", new_key=new_key),  # a login signature
                 renew_body(client, key=new_key, new_key=new_key),  # the new key, not the current one
                 {**renew_body(client, new_key=new_key), "signature": "not base64!"}):
        assert problem(client.request("POST", "/device/renew", json=body))[:2] == (401, "invalid_proof")
    used = renew_body(client)
    assert client.request("POST", "/device/renew", json=used).status_code == 201
    assert problem(client.request("POST", "/device/renew", json=used))[:2] == (401, "invalid_proof")  # single-use
    assert before != client.get_json("/device/list")["devices"][0]["fingerprint"]
    assert problem(requests.post(url + "/device/renew", json=renew_body(client), timeout=10))[0] == 401


def test_parallel_renewals_exactly_one_wins(make_server):
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    keys = [generate_key() for _ in range(6)]
    bodies = [renew_body(client, new_key=key) for key in keys]
    start, statuses, lock = threading.Barrier(len(bodies)), [], threading.Lock()

    def renew(body):
        headers = client.auth_headers("POST", url + "/device/renew")  # a proof of its own for each
        start.wait()
        response = client.http.post(url + "/device/renew", json=body, timeout=30, headers=headers)
        with lock:
            statuses.append((response.status_code, response.json().get("code"), response.json().get("fingerprint")))

    threads = [threading.Thread(target=renew, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [s for s in statuses if s[0] == 201]
    assert len(winners) == 1, statuses
    # A loser that read the device before the winner's write is refused by the conditional write; one
    # that read it after finds the old key no longer the device's, or its session moved to the new key.
    losers = {s[:2] for s in statuses if s[0] != 201}
    assert len(statuses) == 6 and losers <= {(409, "certificate_superseded"), (401, "invalid_proof"),
                                             (401, "invalid_dpop_proof")}, statuses
    # The session moved to the winner's key (SPEC §12), which this client does not hold: read the record.
    stored = devices.device_store(ctx).get(user_uuid=client.key_file.user_uuid, device_id=client.key_file.device_id)
    assert stored is not None and stored.fingerprint == winners[0][2]
    crl = fetch_crl(url)
    assert revoked_reason(crl, serial_of(client.key_file)) == x509.ReasonFlags.superseded


def test_renewal_and_crl_dynamodb_calls_stay_small(make_server):
    url, ctx = make_server()
    counter = CallCounter(ctx.dynamodb)
    client = register_device(url)
    client.login(PASSWORD)
    body = renew_body(client, new_key=generate_key())
    counter.take()
    assert client.request("POST", "/device/renew", json=body).status_code == 201
    calls = counter.take()
    # ... and one UpdateItem: the device's renewals today (CITYLOGIN_RENEWALS_PER_DAY_PER_DEVICE), and
    # one PutItem: the DPoP proof's jti, spent (SPEC §12)
    assert "Scan" not in calls and calls["TransactWriteItems"] == 1 and calls["PutItem"] == 1, calls
    assert sum(calls.values()) <= 6, calls
    fetch_crl(url)
    fetch_crl(url)
    assert counter.take() == {"Query": 1}  # built from one Query, then served from the cache


def test_renew_refused_for_an_unbound_device(make_server):
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    body = renew_body(client)
    # The device's own session ends with the unbind, so the renewal is refused at the door.
    assert client.request("POST", "/device/unbind", json={"device_id": client.key_file.device_id,
                                                          "confirm_last": True}).status_code == 200
    assert problem(client.request("POST", "/device/renew", json=body))[:2] == (401, "session_revoked")
    with pytest.raises(CityloginError) as refused:
        client.login(PASSWORD)
    assert refused.value.code == "device_revoked"


def test_cli_login_saves_the_renewed_key_file(make_server, tmp_path):
    from click.testing import CliRunner

    from citylogin.client.cli import client as client_cli

    url, ctx = make_server(cert_validity_days=10)
    device = register_device(url)
    ctx.settings = ctx.settings.model_copy(update={"cert_validity_days": 365})
    path = tmp_path / "device.key"
    device.key_file.save(path)
    result = CliRunner().invoke(client_cli, ["login", "--key-file", str(path)],
                                env={"CITYLOGIN_CLIENT_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    saved = KeyFile.load(path)
    assert saved.fingerprint != device.key_file.fingerprint and saved.device_id == device.key_file.device_id
    assert oct(path.stat().st_mode & 0o777) == "0o600" and not (tmp_path / "device.key.tmp").exists()
    assert login_with(url, saved).json()["renew_certificate"] is False


def test_a_device_renews_at_most_the_limit_a_day(make_server):
    # Each renewal puts a certificate into the CRL: unbounded renewals grew it without end (issue 16 item 11).
    url, ctx = make_server(renewals_per_day_per_device=2)
    ctx.clock = clock = FakeClock()
    client, other = register_device(url), register_device(url)
    on_clock(clock, client, other)
    client.login(PASSWORD)
    client.renew()
    client.renew()
    crl_size = len(list(fetch_crl(url)))
    refused = client.request("POST", "/device/renew", json=renew_body(client))
    assert problem(refused)[:2] == (429, "too_many_attempts")
    assert 0 < int(refused.headers["Retry-After"]) <= DAY
    assert len(list(fetch_crl(url))) == crl_size  # nothing more superseded
    other.login(PASSWORD)
    other.renew()  # per device
    clock.advance(DAY)
    client.login(PASSWORD)
    client.renew()  # a new day
