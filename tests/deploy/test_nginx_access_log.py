"""deploy/nginx (issue 16 item 20): the event stream's `?access_token=` never reaches nginx's access
log. Debian's nginx runs the shipped template under an nginx.conf that logs in the usual "combined"
format (query strings included), in front of a stand-in upstream."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.deploy.test_nginx_mtls import nginx_present  # noqa: F401 (skips or fails without nginx)
from tests.support.nginx import running_nginx
from tests.support.tls import new_authority, server_certificate, write_cert, write_key

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdG9rZW4ifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


class _Stream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"retry: 3000\n\nevent: token_expired\ndata: {}\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def upstream():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stream)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_the_access_token_in_the_query_string_is_not_logged(upstream, tmp_path):
    server_ca, client_ca = new_authority("nginx test server CA"), new_authority("service CA")
    cert, key = server_certificate(server_ca)
    now = datetime.now(timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(client_ca.cert.subject)
           .last_update(now - timedelta(minutes=5)).next_update(now + timedelta(days=1))
           .sign(client_ca.key, hashes.SHA256()))
    (tmp_path / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    prefix = tmp_path / "nginx"
    with running_nginx(prefix, upstream_urls=[upstream], tls_cert=write_cert(tmp_path / "server.pem", cert),
                       tls_key=write_key(tmp_path / "server.key", key),
                       client_ca=write_cert(tmp_path / "client-ca.pem", client_ca.cert),
                       client_crl=tmp_path / "crl.pem") as url:
        with requests.Session() as https:
            https.trust_env = False
            https.verify = str(write_cert(tmp_path / "server-ca.pem", server_ca.cert))
            response = https.get(url + "/session/events", params={"access_token": TOKEN}, timeout=10)
            assert response.status_code == 200 and "token_expired" in response.text
    # nginx has stopped: its logs are complete
    logged = {path.name: path.read_text() for path in prefix.glob("*.log")}
    assert "GET /session/events HTTP/1.1\" 200" in logged["citylogin.access.log"]
    assert not [name for name, text in logged.items() if TOKEN in text or "access_token" in text], logged
