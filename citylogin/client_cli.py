"""The `citylogin client` commands: a device's side of registration, login, QR pairing, certificate
renewal, recovery and the account (SPEC §4)."""
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
KEY_FILE_ARG = click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
URL = click.option("--url", required=True, help="Base URL of the citylogin server.")
DEVICE_NAME = click.option("--device-name", default=None, help="A name for this device.")
KEY_KIND = click.option("--key-kind", type=click.Choice(KEY_KINDS), default="ecdsa-p256", show_default=True)


def _password(*, confirm: bool = False) -> str:
    """From CITYLOGIN_CLIENT_PASSWORD, else prompted without echo (never a command-line flag)."""
    return os.environ.get(PASSWORD_ENV) or click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _new_password() -> str:
    """Always prompted, twice, without echo: the environment holds the current password, if any."""
    return click.prompt("New password", hide_input=True, confirmation_prompt=True)


def _secret(prompt: str, given: str | None = None) -> str:
    # A code or token typed at a hidden prompt stays out of the shell history and `ps`.
    return given or click.prompt(prompt, hide_input=True)


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


def _login(client: Client, *, force: bool, password: str | None = None) -> dict:
    """Log in; on 409 concurrent_login show the other devices and confirm only if the person agrees."""
    try:
        return client.login(password or _password(), force=force)
    except ConcurrentLoginRequired as conflict:
        click.echo("Active devices:")
        for device in conflict.active_devices:
            click.echo(f"  {device.get('device_name')} ({device.get('device_id')}), "
                       f"logged in {device.get('login_at')}, last seen {device.get('last_seen_at')}")
        click.echo("This account is in use on another device. If you continue, that device will be logged out.")
        if not click.confirm("Continue?"):
            raise click.ClickException("cancelled; the other device stays logged in") from None
        return client.confirm(conflict.confirm_token)


def _device_client(key_file_path: Path, *, auto_renew: bool = True) -> Client:
    """A client of the device in this key file, which it rewrites when a login renews the certificate."""
    def save_renewed(renewed: KeyFile) -> None:
        renewed.save(key_file_path)
        click.echo(f"certificate renewed: fingerprint {renewed.fingerprint}; {key_file_path} updated", err=True)
    return Client(key_file=KeyFile.load(key_file_path), on_renew=save_renewed, auto_renew=auto_renew)


@contextmanager
def _session(key_file_path: Path, *, force: bool = False, password: str | None = None,
             auto_renew: bool = True) -> Iterator[Client]:
    """A logged-in client for one command; the tokens live in memory only, so log out at the end."""
    client = _device_client(key_file_path, auto_renew=auto_renew)
    _login(client, force=force, password=password)
    try:
        yield client
    finally:
        _logout(client)


def _logout(client: Client) -> None:
    if client.access_token is None:  # the command ended the session itself
        return
    try:
        client.logout()
    except CityloginError as exc:  # the work is done; a session that already ended is no failure
        click.echo(f"warning: logout: {exc}", err=True)


def _describe(key_file: KeyFile, path: Path) -> None:
    click.echo(f"user {key_file.user_uuid}, device {key_file.device_id} ({key_file.device_name})")
    click.echo(f"fingerprint {key_file.fingerprint}; key file {path}")


def _show_recovery_codes(codes: list[str]) -> None:
    click.echo("Recovery codes, each good for one recovery (citylogin client recover) if every device is lost.")
    click.echo("Store them safely, away from this device: they are shown this once.")
    for code in codes:
        click.echo(f"  {code}")


@click.group()
def client() -> None:
    """A device's side: register, log in, pair a new device by QR code, renew, recover, the account."""


@client.command()
@URL
@click.option("--username", required=True)
@click.option("--email", required=True)
@KEY_FILE_OUT
@DEVICE_NAME
@KEY_KIND
@_reports_errors
def register(url: str, username: str, email: str, key_file: Path, device_name: str | None, key_kind: str) -> None:
    """Create an account with this device as its first; the password comes from a prompt or the env."""
    _refuse_overwrite(key_file)
    enrolling = Client(url)
    issued = enrolling.register(username=username, email=email, password=_password(confirm=True),
                                device_name=device_name, key_kind=key_kind)
    issued.save(key_file)
    _describe(issued, key_file)
    _show_recovery_codes(enrolling.recovery_codes)


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
@URL
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


@client.command()
@KEY_FILE_ARG
@click.option("--new-key", is_flag=True, help="Move to a new key pair of the same kind (else the same key is "
                                              "certified again).")
@_reports_errors
def renew(key_file: Path, new_key: bool) -> None:
    """Renew this device's certificate now. The key file is rewritten; the old certificate stops working."""
    with _session(key_file, auto_renew=False) as session:
        renewed = session.renew(new_key=new_key)
    _describe(renewed, key_file)


@client.command()
@URL
@click.option("--username", required=True)
@KEY_FILE_OUT
@DEVICE_NAME
@KEY_KIND
@click.option("--unbind-others", is_flag=True, help="Unbind every other device of the account (lost or stolen).")
@_reports_errors
def recover(url: str, username: str, key_file: Path, device_name: str | None, key_kind: str,
            unbind_others: bool) -> None:
    """Get back in with a recovery code. For when every device is lost; asks the password and the code."""
    _refuse_overwrite(key_file)
    password, code = _password(), _secret("Recovery code")
    issued = Client(url).recover(code, username=username, password=password, device_name=device_name,
                                 unbind_other_devices=unbind_others, key_kind=key_kind)
    issued.save(key_file)
    _describe(issued, key_file)


def _link_token(url: str | None, token: str, fragment: str) -> tuple[str, str]:
    """(server URL, token) from a bare token and --url, or from the whole link of the message
    (`<public URL>/#verify=<token>`, SPEC §4 account), whose base serves when --url is absent."""
    base, marker, linked = token.partition(f"/#{fragment}=")
    if marker:
        return url or base, linked
    if not url:
        raise click.UsageError("--url is required unless TOKEN is the whole link from the message")
    return url, token


@client.command("password-reset")
@URL
@click.argument("email")
@_reports_errors
def password_reset(url: str, email: str) -> None:
    """E-mail a password reset link. The answer is the same whether or not the address is known."""
    click.echo(Client(url).request_password_reset(email)["message"])


@client.command("password-reset-confirm")
@click.option("--url", default=None, help="Base URL of the citylogin server (else taken from the link).")
@click.argument("token", required=False)
@_reports_errors
def password_reset_confirm(url: str | None, token: str | None) -> None:
    """Set a new password from a reset link. TOKEN is its token or the whole link; every session ends."""
    url, token = _link_token(url, _secret("Reset token or link", token), "reset")
    Client(url).confirm_password_reset(token=token, new_password=_new_password())
    click.echo("password changed; every session of the account was ended")


# --- the account ------------------------------------------------------------------------------

@client.group()
def account() -> None:
    """Show and change the account: profile, e-mail, password, recovery codes, deletion."""


@account.command()
@KEY_FILE_ARG
@_reports_errors
def show(key_file: Path) -> None:
    """Log in, print GET /account as JSON, log out."""
    with _session(key_file) as session:
        click.echo(json.dumps(session.account(), indent=2))


@account.command()
@KEY_FILE_ARG
@click.option("--keep-other-sessions", is_flag=True, help="Leave the account's other sessions logged in.")
@_reports_errors
def password(key_file: Path, keep_other_sessions: bool) -> None:
    """Change the password. Asks the current one (or the env), then the new one twice."""
    current = _password()
    new = _new_password()
    with _session(key_file, password=current) as session:
        session.change_password(current_password=current, new_password=new,
                                logout_other_sessions=not keep_other_sessions)
    click.echo("password changed" + ("" if keep_other_sessions else "; the other sessions were ended"))


@account.command()
@KEY_FILE_ARG
@click.argument("new_email")
@_reports_errors
def email(key_file: Path, new_email: str) -> None:
    """Change the e-mail address. It changes when the link sent to the new address is used."""
    current = _password()
    with _session(key_file, password=current) as session:
        click.echo(session.change_email(password=current, new_email=new_email)["message"])


@account.command()
@click.option("--url", default=None, help="Base URL of the citylogin server (else taken from the link).")
@click.argument("token", required=False)
@_reports_errors
def verify(url: str | None, token: str | None) -> None:
    """Verify the e-mail address. TOKEN is the token of the message's link or the whole link."""
    url, token = _link_token(url, _secret("Verification token or link", token), "verify")
    Client(url).verify_email(token)
    click.echo("e-mail address verified")


@account.command("resend-verification")
@KEY_FILE_ARG
@_reports_errors
def resend_verification(key_file: Path) -> None:
    """Send the e-mail verification link again."""
    with _session(key_file) as session:
        click.echo(session.resend_verification()["message"])


@account.command("recovery-codes")
@KEY_FILE_ARG
@_reports_errors
def recovery_codes(key_file: Path) -> None:
    """Replace the recovery codes with ten new ones. The old ones stop working."""
    current = _password()
    with _session(key_file, password=current) as session:
        codes = session.replace_recovery_codes(current)
    _show_recovery_codes(codes)
    click.echo("The old recovery codes no longer work.")


@account.command()
@KEY_FILE_ARG
@click.argument("locale", type=click.Choice(["en", "ja"]))
@_reports_errors
def locale(key_file: Path, locale: str) -> None:
    """The language of the messages sent to this account."""
    with _session(key_file) as session:
        session.set_locale(locale)
    click.echo(f"locale set to {locale}")


@account.command()
@KEY_FILE_ARG
@_reports_errors
def delete(key_file: Path) -> None:
    """Delete the account, its data and this key file. Asks the password and the username."""
    username = KeyFile.load(key_file).username
    current = _password()
    click.echo(f"This deletes the account {username}, every device and session of it, for good.")
    if click.prompt("Type the username to confirm", default="", show_default=False) != username:
        raise click.ClickException("cancelled; the account is unchanged")
    with _session(key_file, password=current) as session:
        session.delete_account(current)
    key_file.unlink()
    click.echo(f"account {username} deleted; {key_file} removed")
