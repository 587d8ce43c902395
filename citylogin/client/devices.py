"""`citylogin client devices ...`, `sessions ...` and `history`: the account's devices, sessions and
login attempts, through the session stored in the key file. Ids may be given as the tables show them
(a unique prefix)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from citylogin.cli.output import json_option, local_time, print_json, resolve_prefix, shorten, short_ids, table
from citylogin.client.api import Client
from citylogin.client.session import key_file_option, reports_errors, stored_session

FULL_ID = 36  # a UUID as text; anything shorter is taken as a prefix


def _device_id(session: Client, given: str) -> str:
    if len(given) >= FULL_ID:
        return given
    return resolve_prefix(given, (d["device_id"] for d in session.list_devices()), what="device")


def _session_id(session: Client, given: str) -> str:
    if len(given) >= FULL_ID:
        return given
    return resolve_prefix(given, (s["session_id"] for s in session.list_sessions()), what="session")


def _done(as_json: bool, answer: dict[str, Any], line: str) -> None:
    if as_json:
        print_json(answer)
    else:
        click.echo(line)


# --- devices ----------------------------------------------------------------------------------

@click.group()
def devices() -> None:
    """The account's devices: list, rename, log out, unbind."""


@devices.command("list")
@key_file_option()
@json_option
@reports_errors
def list_devices(key_file: Path, as_json: bool) -> None:
    """Every device of the account; * marks this one."""
    listed = stored_session(key_file).list_devices()
    if as_json:
        print_json({"devices": listed})
        return
    short = short_ids(d["device_id"] for d in listed)
    rows = [("*" if d.get("current") else "", short(d["device_id"]), d.get("device_name"),
             "primary" if d.get("is_primary") else "", d.get("key_type"), d.get("status"),
             "yes" if d.get("active") else "no", local_time(d.get("registered_at")),
             local_time(d.get("last_login_at")), local_time(d.get("cert_expires_at"))) for d in listed]
    click.echo(table(("", "DEVICE", "NAME", "ROLE", "KEY", "STATUS", "LOGGED IN", "REGISTERED", "LAST LOGIN",
                      "CERTIFICATE ENDS"), rows))


@devices.command("rename")
@key_file_option()
@json_option
@click.argument("device_id")
@click.argument("name")
@reports_errors
def rename_device(key_file: Path, as_json: bool, device_id: str, name: str) -> None:
    """Give a device a new name (1-64 characters)."""
    session = stored_session(key_file)
    renamed = session.rename_device(_device_id(session, device_id), name)
    _done(as_json, renamed, f"device {renamed['device_id']} renamed to {renamed['device_name']!r}")


@devices.command("logout")
@key_file_option()
@json_option
@click.argument("device_id")
@reports_errors
def logout_device(key_file: Path, as_json: bool, device_id: str) -> None:
    """End a device's session; it stays registered and may log in again."""
    session = stored_session(key_file)
    answer = session.force_logout_device(_device_id(session, device_id))
    state = "logged out" if answer.get("logged_out") else "was not logged in"
    _done(as_json, answer, f"device {answer['device_id']} {state}")


@devices.command("unbind")
@key_file_option()
@json_option
@click.option("--confirm-last", is_flag=True, help="Allow unbinding the account's last active device.")
@click.argument("device_id")
@reports_errors
def unbind_device(key_file: Path, as_json: bool, confirm_last: bool, device_id: str) -> None:
    """Revoke a device for good: its certificate never logs in again, its session ends."""
    session = stored_session(key_file)
    target = _device_id(session, device_id)
    answer = session.unbind_device(target, confirm_last=confirm_last)
    line = f"device {answer['device_id']} unbound"
    if target == session.require_key_file().device_id:
        session.forget_tokens()  # its session ended with it
        line += f" (this device: {key_file} no longer logs in)"
    _done(as_json, answer, line)


# --- sessions ---------------------------------------------------------------------------------

@click.group()
def sessions() -> None:
    """The account's sessions: list, revoke one, log out everywhere."""


@sessions.command("list")
@key_file_option()
@click.option("--all", "show_all", is_flag=True, help="Also the sessions that ended (kept about a week).")
@json_option
@reports_errors
def list_sessions(key_file: Path, show_all: bool, as_json: bool) -> None:
    """The live sessions (with --all, the ended ones too); * marks this device's."""
    listed = stored_session(key_file).list_sessions(include_ended=show_all)
    if as_json:
        print_json({"sessions": listed})
        return
    short = short_ids(s["session_id"] for s in listed)
    rows = [("*" if s.get("current") else "", short(s["session_id"]), s.get("device_name"),
             local_time(s.get("created_at")), local_time(s.get("last_seen_at")), local_time(s.get("expires_at")),
             s.get("ip"), _status(s)) for s in listed]
    click.echo(table(("", "SESSION", "DEVICE", "LOGGED IN", "LAST SEEN", "ENDS", "IP", "STATUS"), rows))


def _status(session: dict[str, Any]) -> str:
    reason = session.get("revoked_reason")
    return f"{session.get('status')} ({reason})" if reason else str(session.get("status"))


@sessions.command("revoke")
@key_file_option()
@json_option
@click.argument("session_id")
@reports_errors
def revoke_session(key_file: Path, as_json: bool, session_id: str) -> None:
    """End one session (this device's own too)."""
    session = stored_session(key_file)
    target = _session_id(session, session_id)
    own = target == session.session_id
    session.revoke_session(target)
    line = f"session {target} ended" + (f" (this device's: tokens removed from {key_file})" if own else "")
    _done(as_json, {"session_id": target, "revoked": True, "current": own}, line)


@sessions.command("logout-all")
@key_file_option()
@json_option
@click.option("--keep-current", is_flag=True, help="Keep this device's session.")
@reports_errors
def logout_all(key_file: Path, as_json: bool, keep_current: bool) -> None:
    """End every session of the account (this device's too, unless --keep-current)."""
    stored_session(key_file).logout_all(include_current=not keep_current)
    line = ("every other session ended" if keep_current
            else f"every session ended, this device's too: tokens removed from {key_file}")
    _done(as_json, {"logged_out_all": True, "kept_current": keep_current}, line)


# --- history ----------------------------------------------------------------------------------

@click.command()
@key_file_option()
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True, help="Attempts per page.")
@click.option("--all", "every_page", is_flag=True, help="Follow the pages to the oldest attempt kept (180 days).")
@json_option
@reports_errors
def history(key_file: Path, limit: int, every_page: bool, as_json: bool) -> None:
    """Login attempts on the account, newest first."""
    session = stored_session(key_file)
    page = session.history(limit=limit)
    items = list(page["items"])
    while every_page and page.get("next_cursor"):
        page = session.history(limit=limit, cursor=page["next_cursor"])
        items += page["items"]
    if as_json:
        print_json({"items": items, "next_cursor": page.get("next_cursor")})
        return
    short = short_ids(i.get("device_id") for i in items)
    rows = [(local_time(i.get("at")), _result(i), short(i.get("device_id")), i.get("ip"),
             ", ".join(e.get("device_name") or e.get("device_id", "") for e in i.get("evicted") or []) or None,
             shorten(i.get("user_agent"))) for i in items]
    click.echo(table(("AT", "RESULT", "DEVICE", "IP", "LOGGED OUT", "CLIENT"), rows))
    if page.get("next_cursor"):
        click.echo("(older attempts exist: add --all to see them)")


def _result(item: dict[str, Any]) -> str | None:
    """An attempt's result; a login asked "in use elsewhere - continue?" that went on says so, not a refusal."""
    return "asked, continued" if item.get("continued") else item.get("result")
