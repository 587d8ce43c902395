"""The `citylogin client` commands: a device's side of registration, login and logout, QR pairing,
and (from the modules added at the end) the account, devices, sessions and history (SPEC §4, §5).
`login` keeps the session in the key file; the other commands use it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from citylogin.cli.output import json_option, key_values, local_time, print_json
from citylogin.client.api import Client, CityloginError, ConcurrentLoginRequired
from citylogin.client.account import account, enrol, password_reset, password_reset_confirm, recover, renew
from citylogin.client.devices import devices, history, sessions
from citylogin.client.in_use import ask_which, no_one_to_ask, on_a_terminal
from citylogin.client.session import (DEVICE_NAME, KEY_KIND, PASSWORD_ENV, URL, CommandFailure, ask_password,
                                      cli_client, describe, device_client, key_file_option, new_key_file,
                                      reports_errors, show_recovery_codes, stored_session)

__all__ = ["PASSWORD_ENV", "client"]



@click.group()
def client() -> None:
    """A device's side: register, log in, pair a new device by QR code, the devices, sessions and
    history, the account. Every command takes --key-file (default $CITYLOGIN_KEY_FILE, else
    ~/.config/citylogin/device.json); `login` keeps the session there (mode 0600)."""


@client.command()
@URL
@click.option("--username", required=True)
@click.option("--email", required=True)
@key_file_option(new=True)
@DEVICE_NAME
@KEY_KIND
@reports_errors
def register(url: str, username: str, email: str, key_file: Path, device_name: str | None, key_kind: str) -> None:
    """Create an account with this device as its first; the password comes from a prompt or the env."""
    new_key_file(key_file)
    enrolling = cli_client(url)
    issued = enrolling.register(username=username, email=email, password=ask_password(confirm=True),
                                device_name=device_name, key_kind=key_kind)
    issued.save(key_file)
    describe(issued, key_file)
    if enrolling.recovery_codes is None:  # a registration's answer carries them (SPEC); this one did not
        raise CommandFailure("the server's registration answer carried no recovery codes", code="no_recovery_codes")
    show_recovery_codes(enrolling.recovery_codes)


def _login(client: Client, *, force: bool, displace: tuple[str, ...]) -> dict[str, Any]:
    """Log in. At the device limit a person chooses which devices go from a numbered list (Enter: the
    default ones); a script must have chosen beforehand (`--displace`, or `--force` for the default).
    A chosen device that signed out meanwhile brings a fresh list, asked again."""
    try:
        return client.login(ask_password(), force=force, displace=displace)
    except ConcurrentLoginRequired as conflict:
        asked = conflict
    except CityloginError as exc:
        raise _bad_choice(exc) from None
    while True:
        if asked.confirm_token is None:  # nothing to confirm with: the refusal stands as the answer
            raise asked
        if not on_a_terminal():
            raise no_one_to_ask(asked)
        chosen = ask_which(asked)
        try:
            return client.confirm(asked.confirm_token, displace=chosen)
        except ConcurrentLoginRequired as again:
            click.echo("The devices in use changed meanwhile; here they are now.", err=True)
            asked = again
        except CityloginError as exc:
            raise _bad_choice(exc) from None


def _bad_choice(exc: CityloginError) -> Exception:
    """A 400 invalid_field naming `displace`, told as what the person or script chose; other errors as they are."""
    if exc.code != "invalid_field" or exc.body.get("field") != "displace":
        return exc
    return CommandFailure(f"those devices cannot be signed out for this login: {exc.detail} "
                          "(choose among the ones the server lists, enough of them)", code="invalid_field",
                          status=exc.status)


@client.command()
@key_file_option()
@click.option("--force", is_flag=True, help="At the device limit, sign the default devices out without asking, "
              "if the policy allows.")
@click.option("--displace", "displace", multiple=True, metavar="SESSION_ID",
              help="At the device limit, sign out this session's device (repeatable): the choice a script makes "
              "without a terminal. The session ids are those the refused login names.")
@json_option
@reports_errors
def login(key_file: Path, force: bool, displace: tuple[str, ...], as_json: bool) -> None:
    """Log this device in (challenge signed with its key) and keep the session in the key file. At the
    device limit, on a terminal, it lists the devices that could be signed out and asks which one goes."""
    session = _login(device_client(key_file, quiet=as_json), force=force, displace=displace)
    evicted = session.get("evicted", [])
    if as_json:
        print_json({"session_id": session["session_id"], "device_id": session["device_id"],
                    "user_uuid": session["user_uuid"], "evicted": evicted,
                    "certificate_renewed": bool(session.get("renewed"))})
        return
    click.echo(f"logged in: session {session['session_id']}, device {session['device_id']}; "
               f"session kept in {key_file}")
    for device in evicted:
        click.echo(f"logged out: {device.get('device_name')} ({device.get('device_id')})")


@client.command()
@key_file_option()
@json_option
@reports_errors
def logout(key_file: Path, as_json: bool) -> None:
    """End this device's session and remove its tokens from the key file."""
    device = device_client(key_file)
    session_id = device.session_id
    if device.refresh_token is None:
        message, ended = "This device is not logged in; nothing to do.", False
    else:
        try:
            device.logout()
            message, ended = f"logged out: session {session_id} ended", True
        except CityloginError as exc:
            if exc.status != 401:  # the server did not answer: keep the tokens, to log out later
                raise
            device.forget_tokens()  # the session had ended already (displaced, expired, ...)
            message, ended = f"This device's session had already ended ({exc.body.get('reason') or exc.code})", False
        message += f"; tokens removed from {key_file}"
    if as_json:
        print_json({"logged_out": ended, "session_id": session_id})
    else:
        click.echo(message)


@client.command()
@key_file_option()
@json_option
@reports_errors
def whoami(key_file: Path, as_json: bool) -> None:
    """The stored session as the server sees it (GET /session/me)."""
    session = stored_session(key_file)
    me = session.me()
    if as_json:
        print_json(me)
        return
    click.echo(key_values([
        ("user", f"{session.require_key_file().username} ({me.get('user_uuid')})"),
        ("device", f"{me.get('device_name')} ({me.get('device_id')})"), ("session", me.get("session_id")),
        ("logged in", local_time(me.get("created_at"))), ("last seen", local_time(me.get("last_seen_at"))),
        ("ends at the latest", local_time(me.get("expires_at"))), ("ip", me.get("ip"))]))


@client.command("pair-request")
@key_file_option()
@json_option
@reports_errors
def pair_request(key_file: Path, as_json: bool) -> None:
    """Show a pairing QR code for a new device to scan, and the link it holds: the whole link is the LINK
    of `citylogin client pair` on the new device."""
    import qrcode

    pairing = stored_session(key_file).request_pairing()
    if as_json:
        print_json({k: pairing[k] for k in ("qr_code", "expires_at", "expires_in") if k in pairing})
        return
    click.echo(f"pairing link, the LINK of `citylogin client pair` on the new device (valid until "
               f"{local_time(pairing['expires_at'])}):\n{pairing['qr_code']}")
    qr = qrcode.QRCode()
    qr.add_data(pairing["qr_code"])
    qr.print_ascii(invert=True)


@client.command()
@URL
@click.option("--username", required=True)
@key_file_option(new=True)
@DEVICE_NAME
@KEY_KIND
@click.argument("qr_payload", metavar="LINK")
@reports_errors
def pair(url: str, username: str, key_file: Path, device_name: str | None, key_kind: str, qr_payload: str) -> None:
    """Register this new device with LINK, the whole link a pairing QR code holds
    (`<public URL>/#pair=...`, as `pair-request` prints it; in quotes, for its `#`)."""
    new_key_file(key_file)
    issued = cli_client(url).pair(qr_payload, username=username, password=ask_password(),
                              device_name=device_name, key_kind=key_kind)
    issued.save(key_file)
    describe(issued, key_file)


for command in (renew, recover, enrol, password_reset, password_reset_confirm, account, devices, sessions, history):
    client.add_command(command)
