"""`citylogin client account ...`, `renew`, `recover`, `enrol` and the password reset: the commands about the
account and this device's certificate. Those that need a session use the one `login` stored."""
from __future__ import annotations

from pathlib import Path

import click

from citylogin.cli.output import json_option, key_values, local_time, print_json
from citylogin.client.session import (DEVICE_NAME, KEY_KIND, URL, ask_new_password, ask_password, ask_secret,
                                      cli_client, describe, key_file_option, new_key_file, reports_errors,
                                      show_recovery_codes, stored_session)


@click.command()
@key_file_option()
@click.option("--new-key", is_flag=True, help="Move to a new key pair of the same kind (else the same key is "
                                              "certified again).")
@json_option
@reports_errors
def renew(key_file: Path, new_key: bool, as_json: bool) -> None:
    """Renew this device's certificate now. The key file is rewritten; the old certificate stops working."""
    renewed = stored_session(key_file, auto_renew=False).renew(new_key=new_key)
    if as_json:
        print_json({"device_id": renewed.device_id, "fingerprint": renewed.fingerprint, "new_key": new_key})
    else:
        describe(renewed, key_file)


@click.command()
@URL
@click.option("--username", required=True)
@key_file_option(new=True)
@DEVICE_NAME
@KEY_KIND
@click.option("--unbind-others", is_flag=True, help="Unbind every other device of the account (lost or stolen).")
@reports_errors
def recover(url: str, username: str, key_file: Path, device_name: str | None, key_kind: str,
            unbind_others: bool) -> None:
    """Get back in with a recovery code. For when every device is lost; asks the password and the code."""
    new_key_file(key_file)
    password, code = ask_password(), ask_secret("Recovery code")
    issued = cli_client(url).recover(code, username=username, password=password, device_name=device_name,
                                 unbind_other_devices=unbind_others, key_kind=key_kind)
    issued.save(key_file)
    describe(issued, key_file)


@click.command()
@URL
@click.option("--username", required=True)
@key_file_option(new=True)
@DEVICE_NAME
@KEY_KIND
@reports_errors
def enrol(url: str, username: str, key_file: Path, device_name: str | None, key_kind: str) -> None:
    """Make this the first device of an account that has none (one brought from another service): a code is
    mailed to the account's address; asks the code and the password. --username may be the account's
    address (a service whose usernames were addresses): the mail says the username, asked then."""
    new_key_file(key_file)
    enrolling = cli_client(url)
    click.echo(enrolling.enrol_code(username)["message"], err=True)
    if "@" in username:
        username = click.prompt("Your username (the e-mail says it)", err=True).strip()
    code, password = ask_secret("Code from the e-mail"), ask_password()
    issued = enrolling.enrol(code, username=username, password=password, device_name=device_name,
                             key_kind=key_kind)
    issued.save(key_file)
    describe(issued, key_file)


# A token is base64url and may begin with "-": taken as TOKEN rather than refused as an unknown option.
TAKES_A_TOKEN = {"ignore_unknown_options": True}


def _link_token(url: str | None, token: str, fragment: str) -> tuple[str, str]:
    """(server URL, token) from a bare token and --url, or from the whole link of the message
    (`<public URL>/#verify=<token>`, SPEC §4 account), whose base serves when --url is absent."""
    base, marker, linked = token.partition(f"/#{fragment}=")
    if marker:
        return url or base, linked
    if not url:
        raise click.UsageError("--url is required unless TOKEN is the whole link from the message")
    return url, token


@click.command("password-reset")
@click.option("--url", required=True, help="Base URL of the citylogin server.")
@click.argument("email")
@reports_errors
def password_reset(url: str, email: str) -> None:
    """E-mail a password reset link. The answer is the same whether or not the address is known."""
    click.echo(cli_client(url).request_password_reset(email)["message"])


@click.command("password-reset-confirm", context_settings=TAKES_A_TOKEN)
@click.option("--url", default=None, help="Base URL of the citylogin server (else taken from the link).")
@click.argument("token", required=False)
@reports_errors
def password_reset_confirm(url: str | None, token: str | None) -> None:
    """Set a new password from a reset link. TOKEN is its token or the whole link; every session ends."""
    url, token = _link_token(url, ask_secret("Reset token or link", token), "reset")
    cli_client(url).confirm_password_reset(token=token, new_password=ask_new_password())
    click.echo("password changed; every session of the account was ended")


# --- the account ------------------------------------------------------------------------------

@click.group()
def account() -> None:
    """Show and change the account: profile, e-mail, password, recovery codes, deletion."""


@account.command()
@key_file_option()
@json_option
@reports_errors
def show(key_file: Path, as_json: bool) -> None:
    """The account (GET /account)."""
    profile = stored_session(key_file).account()
    if as_json:
        print_json(profile)
        return
    verified = "verified" if profile.get("email_verified") else "not verified"
    click.echo(key_values([
        ("username", profile.get("username")), ("user", profile.get("user_uuid")),
        ("e-mail", f"{profile.get('email')} ({verified})"), ("created", local_time(profile.get("created_at"))),
        ("locale", profile.get("locale")), ("recovery codes left", profile.get("recovery_codes_left")),
        ("devices logged in at once", profile.get("max_concurrent_devices") or "unlimited")]))


@account.command()
@key_file_option()
@click.option("--keep-other-sessions", is_flag=True, help="Leave the account's other sessions logged in.")
@reports_errors
def password(key_file: Path, keep_other_sessions: bool) -> None:
    """Change the password. Asks the current one (or the env), then the new one twice."""
    session = stored_session(key_file)
    current = ask_password()
    new = ask_new_password()
    session.change_password(current_password=current, new_password=new,
                            logout_other_sessions=not keep_other_sessions)
    click.echo("password changed" + ("" if keep_other_sessions else "; the other sessions were ended"))


@account.command()
@key_file_option()
@click.argument("new_email")
@reports_errors
def email(key_file: Path, new_email: str) -> None:
    """Change the e-mail address. It changes when the link sent to the new address is used."""
    session = stored_session(key_file)
    click.echo(session.change_email(password=ask_password(), new_email=new_email)["message"])


@account.command(context_settings=TAKES_A_TOKEN)
@click.option("--url", default=None, help="Base URL of the citylogin server (else taken from the link).")
@click.argument("token", required=False)
@reports_errors
def verify(url: str | None, token: str | None) -> None:
    """Verify the e-mail address. TOKEN is the token of the message's link or the whole link."""
    url, token = _link_token(url, ask_secret("Verification token or link", token), "verify")
    cli_client(url).verify_email(token)
    click.echo("e-mail address verified")


@account.command("resend-verification")
@key_file_option()
@reports_errors
def resend_verification(key_file: Path) -> None:
    """Send the e-mail verification link again."""
    click.echo(stored_session(key_file).resend_verification()["message"])


@account.command("recovery-codes")
@key_file_option()
@reports_errors
def recovery_codes(key_file: Path) -> None:
    """Replace the recovery codes with ten new ones. The old ones stop working."""
    session = stored_session(key_file)
    show_recovery_codes(session.replace_recovery_codes(ask_password()))
    click.echo("The old recovery codes no longer work.")


@account.command()
@key_file_option()
@click.argument("locale", type=click.Choice(["en", "ja"]))
@reports_errors
def locale(key_file: Path, locale: str) -> None:
    """The language of the messages sent to this account."""
    stored_session(key_file).set_locale(locale)
    click.echo(f"locale set to {locale}")


@account.command()
@key_file_option()
@reports_errors
def delete(key_file: Path) -> None:
    """Delete the account, its data and this key file. Asks the password and the username."""
    session = stored_session(key_file)
    username = session.require_key_file().username
    current = ask_password()
    click.echo(f"This deletes the account {username}, every device and session of it, for good.")
    if click.prompt("Type the username to confirm", default="", show_default=False, err=True) != username:
        raise click.ClickException("cancelled; the account is unchanged")
    session.delete_account(current)
    key_file.unlink()
    click.echo(f"account {username} deleted; {key_file} removed")
