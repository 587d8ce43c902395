"""DynamoDB Local behind Debian's nginx terminating TLS with a private CA: what the lean client meets
in front of Amazon DynamoDB (TLS, keep-alive, an endpoint that restarts or changes its certificate),
on this machine and without root. nginx's access log names each request's connection and whether
its TLS session was resumed, so a test counts the connections (hence the handshakes) a client
made, and sees whether any request got through at all; its info-level error log keeps the
handshakes a client gave up on."""
from __future__ import annotations

import ipaddress
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.nginx import running_http_conf
from tests.support.ports import free_port
from tests.support.tls import Authority, new_authority, write_cert, write_key

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
MISMATCHED_NAMES = ("dynamodb.test",)  # a certificate that is not for the address the client uses

# One line per request: nginx's worker pid and connection serial name the TCP (and TLS) connection.
_LOG_FORMAT = "$pid $connection $ssl_protocol $ssl_session_reused $status $upstream_addr $http_x_amz_target"

_HTTP_CONF = """\
log_format dynamodb_tls '{log_format}';
upstream dynamodb_local {{
    server {upstream};
    keepalive 16;  # nginx -> DynamoDB Local: kept-alive connections, as in front of any backend
}}
server {{
    listen 127.0.0.1:{port} ssl;
    server_name {server_name};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_timeout {keepalive_timeout};
    keepalive_requests 100000;
    client_max_body_size 16m;
    access_log {prefix}/dynamodb.access.log dynamodb_tls;
    error_log {prefix}/dynamodb.error.log info;  # info: handshakes the client refused
    location / {{
        proxy_pass http://dynamodb_local;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_read_timeout 300s;
    }}
}}
"""


@dataclass(frozen=True)
class LoggedRequest:
    """One line of the access log."""
    connection: tuple[str, str]  # (nginx worker pid, connection serial): one TCP + TLS connection
    protocol: str                # TLSv1.3, TLSv1.2
    session_reused: bool         # an abbreviated handshake
    status: int
    upstream: str                # "-" when nginx answered itself
    operation: str               # GetItem, CreateTable ... (X-Amz-Target without its prefix)


@dataclass
class TlsDynamoDB:
    """DynamoDB Local at `url` (https://127.0.0.1:<port>) through nginx, trusted through `ca_file`."""
    url: str
    ca_file: Path
    authority: Authority
    prefix: Path
    port: int
    upstream_url: str
    keepalive: bool
    _stack: ExitStack = field(default_factory=ExitStack)
    _restarted_at_line: int = 0

    def requests(self) -> list[LoggedRequest]:
        """Every request nginx has answered. Its access log line is written just after the answer
        is sent: stop() first for a complete count."""
        path = self.prefix / "dynamodb.access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [_parsed(line) for line in lines]

    def requests_since_restart(self) -> list[LoggedRequest]:
        """The requests the nginx started by the last restart() answered."""
        return self.requests()[self._restarted_at_line:]

    def connections(self) -> set[tuple[str, str]]:
        """The connections that carried a request."""
        return {request.connection for request in self.requests()}

    def refused_handshakes(self) -> list[str]:
        """nginx's lines for TLS handshakes the client ended with an alert (it did not trust the
        certificate or its name)."""
        path = self.prefix / "dynamodb.error.log"
        text = path.read_text() if path.exists() else ""
        return [line for line in text.splitlines() if "SSL_do_handshake() failed" in line and "alert" in line]

    def restart(self, *, authority: Authority | None = None, names: Sequence[str] = LOOPBACK_NAMES) -> None:
        """Stop nginx (its connections close) and start it again on the same port, serving a new
        certificate for `names` issued by `authority` (by default this endpoint's own CA)."""
        self.stop()  # the old nginx has exited: its log is complete
        self._restarted_at_line = len(self.requests())
        self._stack = ExitStack()
        self._start(authority or self.authority, names)

    def stop(self) -> None:
        self._stack.close()

    def _start(self, authority: Authority, names: Sequence[str]) -> None:
        cert, key = certificate_for(authority, names)
        conf = _HTTP_CONF.format(
            log_format=_LOG_FORMAT, upstream=self.upstream_url.removeprefix("http://"), port=self.port,
            server_name=names[0], cert=write_cert(self.prefix / "server.pem", cert),
            key=write_key(self.prefix / "server.key", key), keepalive_timeout="75s" if self.keepalive else "0",
            prefix=self.prefix)
        self._stack.enter_context(running_http_conf(self.prefix, conf, port=self.port))


@contextmanager
def dynamodb_behind_tls(upstream_url: str, directory: Path, *, names: Sequence[str] = LOOPBACK_NAMES,
                        keepalive: bool = True, authority: Authority | None = None) -> Iterator[TlsDynamoDB]:
    """nginx on https://127.0.0.1:<free port> in front of DynamoDB Local at `upstream_url`, with a
    private CA (`authority`, else a new one; its certificate in `directory`/ca.pem) and a server
    certificate for `names`; `keepalive=False` makes nginx close every connection after its answer
    (Connection: close)."""
    (directory / "nginx").mkdir(parents=True, exist_ok=True)
    authority, port = authority or new_authority("citylogin test DynamoDB CA"), free_port()
    endpoint = TlsDynamoDB(url=f"https://127.0.0.1:{port}", ca_file=write_cert(directory / "ca.pem", authority.cert),
                           authority=authority, prefix=directory / "nginx", port=port, upstream_url=upstream_url,
                           keepalive=keepalive)
    endpoint._start(authority, names)
    try:
        yield endpoint
    finally:
        endpoint.stop()


def other_ca_file(path: Path) -> Path:
    """The certificate of a CA that no endpoint here uses, written to `path`."""
    return write_cert(path, new_authority("another CA").cert)


def certificate_for(authority: Authority, names: Sequence[str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for `names` (IP addresses or DNS names) alone, signed by `authority`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(authority.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(authority.key, hashes.SHA256()))
    return cert, key


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _parsed(line: str) -> LoggedRequest:
    pid, serial, protocol, reused, status, upstream, target = line.split(" ", 6)
    return LoggedRequest(connection=(pid, serial), protocol=protocol, session_reused=reused == "r",
                         status=int(status), upstream=upstream, operation=target.rpartition(".")[2])
