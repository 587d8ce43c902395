"""The plumbing of the `citylogin client` commands: the --key-file option, passwords, the session
stored in the key file (refreshed when due, never silently replaced by a new login), and errors
as one line (or a JSON object on stderr with --json)."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, ParamSpec, TypeVar

import click
import requests

from citylogin.cli.output import print_json
from citylogin.client.api import KEY_KINDS, Client, CityloginError, KeyFile, user_agent

P = ParamSpec("P")
R = TypeVar("R")
Command = TypeVar("Command", bound=Callable[..., Any])

PASSWORD_ENV = "CITYLOGIN_CLIENT_PASSWORD"
KEY_FILE_ENV = "CITYLOGIN_KEY_FILE"
DEFAULT_KEY_FILE = "~/.config/citylogin/device.json"
LOGIN_HINT = "Run `citylogin client login`."


# The options of every command that makes this a new device (register, pair, recover, enrol).
URL = click.option("--url", required=True, help="Base URL of the citylogin server.")
DEVICE_NAME = click.option("--device-name", default=None, help="A name for this device.")
KEY_KIND = click.option("--key-kind", type=click.Choice(KEY_KINDS), default="ecdsa-p256", show_default=True)


def key_file_option(*, new: bool = False) -> Callable[[Command], Command]:
    """--key-file PATH, default $CITYLOGIN_KEY_FILE, else ~/.config/citylogin/device.json."""
    help_text = ("Where to write this device's key file (mode 0600)." if new else "This device's key file.")
    return click.option("--key-file", envvar=KEY_FILE_ENV, default=DEFAULT_KEY_FILE, show_envvar=True,
                        show_default=True, type=click.Path(dir_okay=False, path_type=Path),
                        callback=lambda _ctx, _param, value: value.expanduser(), help=help_text)


class CommandFailure(click.ClickException):
    """A failure told in one line; `code` (and `status`, `reason`) go into the --json error object."""

    def __init__(self, message: str, *, code: str, status: int | None = None, reason: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.status, self.reason = code, status, reason
        self.extra = extra or {}  # more for a script to act on, e.g. the devices a login may displace

    def as_json(self) -> dict[str, Any]:
        body = {"status": self.status, "code": self.code, "reason": self.reason, "message": self.message}
        return {k: v for k, v in body.items() if v is not None} | self.extra


def _api_failure(exc: CityloginError) -> CommandFailure:
    reason = exc.body.get("reason") or ("refresh_reuse" if exc.code == "refresh_token_reused" else None)
    if exc.code in ("session_revoked", "refresh_token_reused"):
        message = f"This device was logged out: {reason or 'session ended'}. {LOGIN_HINT}"
    elif exc.code == "invalid_refresh_token":
        message = f"This device's stored session is no longer valid ({exc.code}). {LOGIN_HINT}"
    else:
        message = str(exc)
    return CommandFailure(message, code=exc.code or "http_error", status=exc.status, reason=reason)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Server, network and command errors become one line and exit 1; with --json, a JSON object
    on stderr instead (never a problem's confirm_token or any other secret)."""
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CityloginError as exc:
            failure = _api_failure(exc)
        except requests.RequestException as exc:
            failure = CommandFailure(f"cannot reach the server: {exc}", code="unreachable")
        except CommandFailure as exc:
            failure = exc
        if kwargs.get("as_json"):
            print_json({"error": failure.as_json()}, err=True)
            raise click.exceptions.Exit(1)
        raise failure
    return wrapper


# --- passwords and secrets --------------------------------------------------------------------

def ask_password(*, confirm: bool = False) -> str:
    """From CITYLOGIN_CLIENT_PASSWORD, else prompted without echo (never a command-line flag)."""
    return os.environ.get(PASSWORD_ENV) or click.prompt("Password", hide_input=True, confirmation_prompt=confirm,
                                                         err=True)


def ask_new_password() -> str:
    """Always prompted, twice, without echo: the environment holds the current password, if any."""
    return click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)


def ask_secret(prompt: str, given: str | None = None) -> str:
    # A code or token typed at a hidden prompt stays out of the shell history and `ps`.
    return given or click.prompt(prompt, hide_input=True, err=True)


# --- the key file and its session -------------------------------------------------------------

def new_key_file(path: Path) -> Path:
    """Check that `path` may take a new key file, making its directory (0700) if needed."""
    # A key file holds the only copy of a device key; overwriting it loses that device.
    if path.exists():
        raise CommandFailure(f"{path} exists; choose another --key-file", code="key_file_exists")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def cli_client(url: str | None = None, **options: Any) -> Client:
    """A client that names the command line in its User-Agent: its sessions and history say "citylogin CLI"."""
    return Client(url, agent=user_agent("citylogin-cli"), **options)


def device_client(path: Path, *, auto_renew: bool = True, quiet: bool = False) -> Client:
    """A client of the device in this key file, with its stored session if any. Every change of the
    tokens and every renewed certificate is written back to the file at once (refresh tokens rotate)."""
    try:
        key_file = KeyFile.load(path)
    except FileNotFoundError:
        raise CommandFailure(f"no key file at {path}: register, pair or recover a device, or pass --key-file",
                             code="no_key_file") from None

    def save_tokens(client: Client) -> None:
        key_file.session = client.tokens()
        key_file.save(path)

    def save_renewed(renewed: KeyFile) -> None:
        renewed.save(path)
        if not quiet:
            click.echo(f"certificate renewed: fingerprint {renewed.fingerprint}; {path} updated", err=True)

    client = cli_client(key_file=key_file, on_renew=save_renewed, on_tokens=save_tokens, auto_renew=auto_renew)
    if key_file.session:
        client.use_tokens(key_file.session)
    return client


def stored_session(path: Path, *, auto_renew: bool = True) -> Client:
    """The device's client on its stored session, refreshed first if the access token is (nearly)
    expired. No stored session, or one that ended: CommandFailure / CityloginError, never a new login
    (a login could displace another device)."""
    client = device_client(path, auto_renew=auto_renew)
    if client.refresh_token is None:
        raise CommandFailure(f"This device is not logged in. {LOGIN_HINT}", code="not_logged_in")
    client.refresh_if_due()
    return client


def describe(key_file: KeyFile, path: Path) -> None:
    click.echo(f"user {key_file.user_uuid}, device {key_file.device_id} ({key_file.device_name})")
    click.echo(f"fingerprint {key_file.fingerprint}; key file {path}")


def show_recovery_codes(codes: list[str]) -> None:
    click.echo("Recovery codes, each good for one recovery (citylogin client recover) if every device is lost.")
    click.echo("Store them safely, away from this device: they are shown this once.")
    for code in codes:
        click.echo(f"  {code}")
