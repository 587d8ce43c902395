"""`citylogin client login` at the device limit (SPEC §5, "the person chooses which device goes"): the
devices that could be signed out as a numbered list, and the person's choice read from the terminal.
A script has no one to ask: it names its choice with `--displace` (or takes the default with `--force`)
beforehand, and without one the login fails naming the choices."""
from __future__ import annotations

import re
import sys

import click

from citylogin.cli.output import local_time, table
from citylogin.client.errors import ActiveDevice, ConcurrentLoginRequired
from citylogin.client.session import CommandFailure

CANCEL = frozenset({"c", "cancel", "q", "quit", "n", "no"})
NUMBERS = re.compile(r"[\s,]+")


def on_a_terminal() -> bool:
    """Whether a person can answer: the choice is read from stdin and asked on stderr."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stderr))


def device_list(conflict: ConcurrentLoginRequired) -> str:
    """The listed devices numbered from 1, in the server's order (the default ones first)."""
    rows = [(f"{number}.", _name(device), device.device_class, local_time(device.login_at),
             local_time(device.last_seen_at), ", ".join(device.apps) or "-", "(default)" if device.default else "")
            for number, device in enumerate(conflict.devices, start=1)]
    return table(("", "DEVICE", "CLASS", "SIGNED IN", "LAST SEEN", "APPS", ""), rows)


def _name(device: ActiveDevice) -> str:
    return f"{device.device_name} (this device)" if device.current else device.device_name


def ask_which(conflict: ConcurrentLoginRequired) -> list[str]:
    """Show the list and ask which devices go: Enter for the default ones, numbers, or cancel. The
    session ids chosen; CommandFailure `cancelled` when the person cancels."""
    click.echo(conflict.detail, err=True)
    click.echo(device_list(conflict), err=True)
    defaults = [str(number) for number, device in enumerate(conflict.devices, start=1) if device.default]
    many = conflict.needed > 1
    question = (f"Which {conflict.needed} devices should be signed out? Enter for {', '.join(defaults)}, "
                f"numbers (e.g. 1 3), or c to cancel" if many else
                f"Which device should be signed out? Enter for {', '.join(defaults) or 'the default'}, "
                f"a number, or c to cancel")
    while True:
        try:
            answer = click.prompt(question, default="", show_default=False, err=True).strip().lower()
        except click.Abort:  # Ctrl-C or the end of input: the same as cancelling
            answer = "c"
        if answer in CANCEL:
            raise CommandFailure("cancelled; the other devices stay signed in", code="cancelled")
        chosen = _chosen(answer, conflict)
        if chosen is not None:
            return chosen
        click.echo(f"Answer with {'numbers' if many else 'a number'} from 1 to {len(conflict.devices)} "
                   f"({conflict.needed} at least), Enter, or c.", err=True)


def _chosen(answer: str, conflict: ConcurrentLoginRequired) -> list[str] | None:
    """The session ids an answer names (the defaults for an empty one); None if it is not an answer."""
    if not answer:
        return conflict.defaults
    words = [word for word in NUMBERS.split(answer) if word]
    if not all(word.isdigit() and 1 <= int(word) <= len(conflict.devices) for word in words):
        return None
    numbers = sorted(set(int(word) for word in words))
    if len(numbers) < conflict.needed:
        return None
    return [conflict.devices[number - 1].session_id for number in numbers]


def no_one_to_ask(conflict: ConcurrentLoginRequired) -> CommandFailure:
    """The failure of a login at the limit without a terminal: it names the choices and how to make one."""
    choices = "; ".join(f"{device.session_id} {_name(device)!r}{' (default)' if device.default else ''}"
                        for device in conflict.devices)
    needed = "one device" if conflict.needed == 1 else f"{conflict.needed} devices"
    return CommandFailure(
        f"this account is at its device limit: {needed} must be signed out to sign in here. "
        f"Choose with --displace SESSION_ID (repeatable), or --force for the default; the devices: {choices}",
        code="concurrent_login", status=409,
        extra={"needed": conflict.needed,
               "active_devices": [{"session_id": d.session_id, "device_id": d.device_id,
                                   "device_name": d.device_name, "device_class": d.device_class,
                                   "current": d.current, "default": d.default} for d in conflict.devices]})
