"""`citylogin crl-sync` (citylogin/cli/crl_sync.py) against a stand-in for GET /device/crl.pem: it
installs a CRL only when it is one, signed by the CA and current, writes it atomically with mode
0644, and reloads nginx only when the list changed or the installed CRL is past half its life.
tests/deploy/test_nginx_mtls.py runs it against the real app and nginx."""
from __future__ import annotations

import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509

from citylogin.cli.crl_sync import SyncConfig, SyncState, needs_install, sync_once
from common.crypto.certificates import CertificateAuthority
from devices.crl import RevokedCertificate, build_crl, crl_pem
from tests.support.tls import Authority, new_authority, write_cert

NOW = datetime.now(timezone.utc)


class CRLServer(ThreadingHTTPServer):
    crl = b""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.server.crl if self.path == "/device/crl.pem" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = CRLServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def ca() -> Authority:
    return new_authority("citylogin device CA")


@pytest.fixture
def sync(server, ca, tmp_path) -> SyncConfig:
    """A refresher whose reload command appends a line to reloads.log."""
    reload_cmd = f"{sys.executable} -c \"open('{tmp_path / 'reloads.log'}', 'a').write('reload\\n')\""
    return SyncConfig(service_url=f"http://127.0.0.1:{server.server_port}", crl_file=tmp_path / "crl.pem",
                      ca_file=write_cert(tmp_path / "ca.pem", ca.cert), reload_cmd=reload_cmd, timeout=5)


def signed_crl(ca: Authority, serials: list[int] = (), *, now: datetime = NOW,
               valid_for: timedelta = timedelta(hours=24)) -> bytes:
    revoked = [RevokedCertificate(serial=s, revoked_at=now, reason=x509.ReasonFlags.cessation_of_operation)
               for s in serials]
    return crl_pem(build_crl(CertificateAuthority(ca.cert, ca.key), revoked, now=now, valid_for=valid_for)).encode()


def reloads(config: SyncConfig) -> int:
    log = config.crl_file.with_name("reloads.log")
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_valid_crl_is_installed_with_mode_0644_and_nginx_reloaded_once(server, ca, sync):
    server.crl = signed_crl(ca, [0x1234])
    assert sync_once(sync)
    installed = x509.load_pem_x509_crl(sync.crl_file.read_bytes())
    assert [entry.serial_number for entry in installed] == [0x1234]
    assert sync.crl_file.stat().st_mode & 0o777 == 0o644
    assert reloads(sync) == 1
    assert [p.name for p in sync.crl_file.parent.iterdir() if p.name.startswith(".")] == []  # no temp left

    # Rebuilt later with the same entries: new bytes, same list, no reload.
    server.crl = signed_crl(ca, [0x1234], now=NOW + timedelta(seconds=1))
    before = sync.crl_file.read_bytes()
    assert sync_once(sync)
    assert (sync.crl_file.read_bytes(), reloads(sync)) == (before, 1)

    server.crl = signed_crl(ca, [0x1234, 0x5678], now=NOW + timedelta(seconds=2))
    assert sync_once(sync)
    assert {e.serial_number for e in x509.load_pem_x509_crl(sync.crl_file.read_bytes())} == {0x1234, 0x5678}
    assert reloads(sync) == 2


@pytest.mark.parametrize("kind", ["forged_signature", "expired", "not_a_crl"])
def test_a_crl_that_fails_validation_is_not_installed(server, ca, sync, kind, caplog):
    server.crl = signed_crl(ca, [1])
    assert sync_once(sync)
    good = sync.crl_file.read_bytes()

    # The impostor bears the CA's name, so only the signature tells them apart.
    server.crl = {"forged_signature": lambda: signed_crl(new_authority(ca.cert.subject.rfc4514_string()[3:]), [1, 2],
                                                         now=NOW + timedelta(seconds=1)),
                  "expired": lambda: signed_crl(ca, [1, 2], now=NOW - timedelta(hours=2), valid_for=timedelta(hours=1)),
                  "not_a_crl": lambda: b"<html>502 Bad Gateway</html>"}[kind]()
    assert not sync_once(sync)
    assert (sync.crl_file.read_bytes(), reloads(sync)) == (good, 1)
    assert "not installed" in caplog.text
    assert "BEGIN" not in caplog.text  # the log names the reason, not the CRL


def test_an_older_build_does_not_replace_a_newer_one(server, ca, sync):
    server.crl = signed_crl(ca, [1, 2], now=NOW)
    assert sync_once(sync)
    server.crl = signed_crl(ca, [1], now=NOW - timedelta(seconds=30))  # another process's cached CRL
    assert sync_once(sync)
    assert len(x509.load_pem_x509_crl(sync.crl_file.read_bytes())) == 2


def test_a_crl_past_half_its_life_is_replaced_by_a_fresh_one(ca):
    load = x509.load_pem_x509_crl
    installed = load(signed_crl(ca, [1], now=NOW - timedelta(hours=13)))
    assert needs_install(load(signed_crl(ca, [1])), installed, now=NOW)
    assert not needs_install(load(signed_crl(ca, [1])), load(signed_crl(ca, [1], now=NOW - timedelta(hours=1))),
                             now=NOW)


def test_a_failed_reload_is_retried_on_the_next_round(server, ca, sync):
    server.crl = signed_crl(ca, [1])
    failing = SyncConfig(**{**sync.__dict__, "reload_cmd": f"{sys.executable} -c 'raise SystemExit(3)'"})
    state = SyncState()
    assert not sync_once(failing, state)
    assert sync.crl_file.exists() and state.reload_pending
    assert sync_once(sync, state)
    assert reloads(sync) == 1 and not state.reload_pending
