"""The `citylogin client` commands: a device's side of registration, login and QR pairing."""
from __future__ import annotations

import functools
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import click
import requests

from citylogin.client import KEY_KINDS, Client, CityloginError, ConcurrentLoginRequired, KeyFile

PASSWORD_ENV = "CITYLOGIN_CLIENT_PASSWORD"
KEY_FILE_OUT = click.option("--key-file", required=True, type=click.Path(dir_okay=False, path_type=Path),
                            help="Where to write this device's key file (mode 0600).")
KEY_FILE_IN = click.option("--key-file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                           help="This device's key file.")
DEVICE_NAME = click.option("--device-name", default=None, help="A name for this device.")
KEY_KIND = click.option("--key-kind", type=click.Choice(KEY_KINDS), default="ecdsa-p256", show_default=True)


def _password(*, confirm: bool = False) -> str:
    """From CITYLOGIN_CLIENT_PASSWORD, else prompted without echo (never a command-line flag)."""
    return os.environ.get(PASSWORD_ENV) or click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _reports_errors(command: Callable) -> Callable:
    """Server and network errors become one-line click errors instead of tracebacks."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CityloginError as exc:
            raise click.ClickException(str(exc)) from None
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach the server: {exc}") from None
    return wrapper


def _refuse_overwrite(path: Path) -> None:
    # A key file holds the only copy of a device key; overwriting it loses that device.
    if path.exists():
        raise click.ClickException(f"{path} exists; choose another --key-file")


def _login(client: Client, *, force: bool) -> dict:
    """Log in; on 409 concurrent_login show the other devices and confirm only if the person agrees."""
    try:
        return client.login(_password(), force=force)
    except ConcurrentLoginRequired as conflict:
        click.echo("Active devices:")
        for device in conflict.active_devices:
            click.echo(f"  {device.get('device_name')} ({device.get('device_id')}), "
                       f"logged in {device.get('login_at')}, last seen {device.get('last_seen_at')}")
        click.echo("This account is in use on another device. If you continue, that device will be logged out.")
        if not click.confirm("Continue?"):
            raise click.ClickException("cancelled; the other device stays logged in") from None
        return client.confirm(conflict.confirm_token)


def _device_client(key_file_path: Path) -> Client:
    """A client of the device in this key file, which it rewrites when a login renews the certificate."""
    def save_renewed(renewed: KeyFile) -> None:
        renewed.save(key_file_path)
        click.echo(f"certificate renewed: fingerprint {renewed.fingerprint}; {key_file_path} updated", err=True)
    return Client(key_file=KeyFile.load(key_file_path), on_renew=save_renewed)


@contextmanager
def _session(key_file_path: Path, *, force: bool = False) -> Iterator[Client]:
    """A logged-in client for one command; the tokens live in memory only, so log out at the end."""
    client = _device_client(key_file_path)
    _login(client, force=force)
    try:
        yield client
    finally:
        try:
            client.logout()
        except CityloginError as exc:  # the work is done; a session that already ended is no failure
            click.echo(f"warning: logout: {exc}", err=True)


def _describe(key_file: KeyFile, path: Path) -> None:
    click.echo(f"user {key_file.user_uuid}, device {key_file.device_id} ({key_file.device_name})")
    click.echo(f"fingerprint {key_file.fingerprint}; key file {path}")


@click.group()
def client() -> None:
    """A device's side: register, log in, pair a new device by QR code."""


@client.command()
@click.option("--url", required=True, help="Base URL of the citylogin server.")
@click.option("--username", required=True)
@click.option("--email", required=True)
@KEY_FILE_OUT
@DEVICE_NAME
@KEY_KIND
@_reports_errors
def register(url: str, username: str, email: str, key_file: Path, device_name: str | None, key_kind: str) -> None:
    """Create an account with this device as its first; the password comes from a prompt or the env."""
    _refuse_overwrite(key_file)
    issued = Client(url).register(username=username, email=email, password=_password(confirm=True),
                                  device_name=device_name, key_kind=key_kind)
    issued.save(key_file)
    _describe(issued, key_file)


@client.command()
@KEY_FILE_IN
@click.option("--force", is_flag=True, help="Log other devices out without asking, if the policy allows.")
@_reports_errors
def login(key_file: Path, force: bool) -> None:
    """Log this device in (challenge signed with its key) and show the session."""
    session = _login(_device_client(key_file), force=force)
    click.echo(f"logged in: session {session['session_id']}, device {session['device_id']}")
    for device in session.get("evicted", []):
        click.echo(f"logged out: {device.get('device_name')} ({device.get('device_id')})")


@client.command()
@KEY_FILE_IN
@_reports_errors
def whoami(key_file: Path) -> None:
    """Log in, print GET /session/me as JSON, log out."""
    with _session(key_file) as session:
        click.echo(json.dumps(session.get_json("/session/me"), indent=2))


@client.command("pair-request")
@KEY_FILE_IN
@_reports_errors
def pair_request(key_file: Path) -> None:
    """Log in and show a pairing QR code for a new device to scan (or its payload to paste)."""
    import qrcode

    with _session(key_file) as session:
        pairing = session.request_pairing()
    click.echo(f"pairing payload (valid until {pairing['expires_at']}):\n{pairing['qr_code']}")
    qr = qrcode.QRCode()
    qr.add_data(pairing["qr_code"])
    qr.print_ascii(invert=True)


@client.command()
@click.option("--url", required=True, help="Base URL of the citylogin server.")
@click.option("--username", required=True)
@KEY_FILE_OUT
@DEVICE_NAME
@KEY_KIND
@click.argument("qr_payload")
@_reports_errors
def pair(url: str, username: str, key_file: Path, device_name: str | None, key_kind: str, qr_payload: str) -> None:
    """Register this new device with the payload of a pairing QR code."""
    _refuse_overwrite(key_file)
    issued = Client(url).pair(qr_payload, username=username, password=_password(),
                              device_name=device_name, key_kind=key_kind)
    issued.save(key_file)
    _describe(issued, key_file)
