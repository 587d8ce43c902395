"""A real SMTP server for the mail tests, in its own process (aiosmtpd): `smtp_server(...)` starts
`python -m tests.support.smtp_server` on a free port and reads what it kept.

Each message it accepts is written whole, as it arrived, to <folder>/<n>.eml, with its envelope and
session (TLS or not, who logged in) in <n>.json. It can offer STARTTLS (and then require it), speak
TLS from the first byte, require AUTH (LOGIN, PLAIN) with one user and password (passed in the
environment, never on the command line), or answer every recipient with a refusal code."""
from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterator

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

LOGIN_VARIABLE = "TEST_SMTP_LOGIN"  # "user:password"


class Keeper:
    """aiosmtpd's handler: keeps each message whole, or refuses every recipient."""

    def __init__(self, folder: Path, refuse: str | None) -> None:
        # A server started again on the folder numbers on from what it kept before.
        self.folder, self.refuse = folder, refuse
        self.kept = max((int(p.stem) for p in folder.glob("*.eml")), default=0)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.refuse:
            with (self.folder / "refused.log").open("a") as log:
                log.write(f"{self.refuse}\n")
            return f"{self.refuse} {'5.7.1' if self.refuse.startswith('5') else '4.3.0'} refused by the test server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.kept += 1
        stem = self.folder / str(self.kept)
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None  # STARTTLS, TLS
        facts = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "tls": tls,
                 "login": session.auth_data if session.authenticated else None}
        _write(stem.with_suffix(".json"), json.dumps(facts).encode())
        _write(stem.with_suffix(".eml"), envelope.original_content)  # last: a reader waits for the .eml
        return "250 Message accepted for delivery"


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}")
    partial.write_bytes(data)
    partial.replace(path)


def _authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        good = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=good, handled=False, auth_data=user if good else None)
    return check


async def serve(args: argparse.Namespace) -> None:
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    login = os.environ.get(LOGIN_VARIABLE)
    options: dict[str, Any] = {"hostname": "smtp.test", "enable_SMTPUTF8": True}
    if tls and not args.implicit_tls:
        options.update(tls_context=tls, require_starttls=True)
    if login:
        user, _, password = login.partition(":")
        options.update(authenticator=_authenticator(user, password), auth_required=True,
                       auth_require_tls=tls is not None)
    keeper = Keeper(Path(args.folder), args.refuse)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(keeper, **options), "127.0.0.1", args.port, ssl=tls if args.implicit_tls else None)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (else STARTTLS)")
    parser.add_argument("--refuse", help="answer every RCPT with this code, e.g. 550 or 451")
    asyncio.run(serve(parser.parse_args()))


# The test side.

def text_of(mail: EmailMessage) -> str:
    """A received mail's text as a mail reader shows it: SMTP's CRLF line ends as lines."""
    return mail.get_content().replace("\r\n", "\n").rstrip("\n")


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """(the file of a new CA for the client to trust, a server certificate it signed for 127.0.0.1 and
    localhost, the certificate's key), written to `folder`."""
    from tests.support.tls import new_authority, server_certificate, write_cert, write_key
    authority = new_authority("the test mail CA")
    cert, key = server_certificate(authority)
    return (write_cert(folder / "ca.pem", authority.cert), write_cert(folder / "server.pem", cert),
            write_key(folder / "server.key", key))


@contextmanager
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """127.0.0.1:<port> that accepts every connection and never says a word (no SMTP greeting): a
    hanging mail server. Yields the port and the connections it holds."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed at the end
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], held
    finally:
        listener.close()
        for connection in held:
            connection.close()


@dataclass
class SmtpTestServer:
    port: int
    folder: Path

    def messages(self) -> list[tuple[EmailMessage, dict]]:
        """Every message kept so far, parsed, with its envelope and session, in the order received.
        (Its text keeps the CRLF line ends SMTP carries, which a mail reader shows as lines.)"""
        stems = sorted((int(p.stem) for p in self.folder.glob("*.eml")))
        return [(email.message_from_bytes((self.folder / f"{n}.eml").read_bytes(), policy=email.policy.default),
                 json.loads((self.folder / f"{n}.json").read_text())) for n in stems]  # type: ignore[misc]

    def refusals(self) -> list[str]:
        log = self.folder / "refused.log"
        return log.read_text().split() if log.exists() else []


@contextmanager
def smtp_server(folder: Path, *, cert: Path | None = None, key: Path | None = None, implicit_tls: bool = False,
                login: str | None = None, refuse: str | None = None,
                port: int | None = None) -> Iterator[SmtpTestServer]:
    """The server in its own process on 127.0.0.1:<port> (a free one if None), stopped on exit; started
    again on the same folder and port, it goes on where it stopped (a mail server restarted)."""
    from tests.support.ports import free_port
    from tests.support.waiting import stop, until_listening

    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [sys.executable, "-m", "tests.support.smtp_server", "--port", str(port), "--folder", str(folder)]
    if cert and key:
        argv += ["--cert", str(cert), "--key", str(key)]
    argv += ["--implicit-tls"] if implicit_tls else []
    argv += ["--refuse", refuse] if refuse else []
    env = {**os.environ, **({LOGIN_VARIABLE: login} if login else {})}
    log = folder / "server.log"
    with log.open("ab") as output:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   cwd=Path(__file__).resolve().parents[2])
    try:
        until_listening(process, port, timeout=30, name="the test SMTP server",
                        output=lambda: log.read_text(errors="replace"))
        yield SmtpTestServer(port=port, folder=folder)
    finally:
        stop(process)


if __name__ == "__main__":
    main()
