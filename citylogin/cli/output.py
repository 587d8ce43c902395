"""What the `citylogin client` commands print: aligned tables for people, JSON (`--json`) for scripts."""
from __future__ import annotations

import io
import json
import sys
import unicodedata
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Sequence

import click

SHORT_ID = 8  # characters of an id shown in a table while no other shown id starts the same

@contextmanager
def output_when_done() -> Iterator[None]:
    """Standard output held until the command ends well, then written at once: a command that fails writes
    nothing there, so `citylogin apps add x --json > x.json` never leaves half an answer (or an empty file
    that looks like one). Errors, prompts and progress go to stderr as they come."""
    real, held = sys.stdout, io.StringIO()
    sys.stdout = held
    try:
        yield
    except click.exceptions.Exit as done:
        if done.exit_code == 0:
            _write(real, held.getvalue())
        raise
    else:
        _write(real, held.getvalue())
    finally:
        sys.stdout = real


def _write(stream: Any, text: str) -> None:
    stream.write(text)
    stream.flush()


def _with_service_option(command: click.Command) -> None:
    """`--service` (citylogin.server.service_choice) among the command's options, once."""
    from citylogin.server.service_choice import service_option

    if not any(param.name == "service" for param in command.params):
        command.params.append(service_option())


class OperatorGroup(click.Group):
    """A group of operator commands (keys, apps, admin, password-parameters): each one's stdout is written
    only once it is complete (`output_when_done`); the group and each of its commands take `--service`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _with_service_option(self)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _with_service_option(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        with output_when_done():
            return super().invoke(ctx)


class OperatorCommand(click.Command):
    """An operator command outside those groups (`init`), its stdout written only once complete; it takes
    `--service` too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _with_service_option(self)

    def invoke(self, ctx: click.Context) -> Any:
        with output_when_done():
            return super().invoke(ctx)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")


def print_json(data: Any, *, err: bool = False) -> None:
    click.echo(json.dumps(data, indent=None if err else 2, ensure_ascii=False), err=err)


def local_time(value: str | None) -> str:
    """An API time (ISO 8601 UTC) in the local time zone, to the minute; "-" for none."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def short_ids(ids: Iterable[str]) -> Callable[[str | None], str]:
    """A function giving each id its shortest prefix (at least SHORT_ID long) that no other id shares."""
    unique = sorted(set(i for i in ids if i))
    lengths = {}
    for index, value in enumerate(unique):
        neighbours = unique[max(index - 1, 0):index] + unique[index + 1:index + 2]
        shared = max((_common_prefix(value, other) for other in neighbours), default=0)
        lengths[value] = max(SHORT_ID, shared + 1)
    return lambda value: value[:lengths[value]] if value in lengths else (value or "-")


def _common_prefix(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def resolve_prefix(given: str, ids: Iterable[str], *, what: str) -> str:
    """The one id that starts with `given` (as a table shows it), else `given` itself for the server
    to judge; click.UsageError when several ids start with it."""
    ids = list(ids)
    if given in ids:
        return given
    matches = [i for i in ids if i.startswith(given)]
    if len(matches) > 1:
        raise click.UsageError(f"{given!r} is the start of {len(matches)} {what} ids; give more of it")
    return matches[0] if matches else given


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns separated by two spaces, each as wide as its widest cell (East Asian wide characters
    count twice); None shows as "-"; the last column is not padded."""
    cells = [[str(c) for c in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join(padded + [row[-1]]).rstrip())
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1
               for ch in text)


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    """`label: value` lines with the values aligned."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label + ':':{width + 1}} {'-' if value in (None, '') else value}" for label, value in pairs)


def shorten(text: str | None, limit: int = 40) -> str:
    if not text:
        return "-"
    return text if len(text) <= limit else text[:limit - 1] + "…"
