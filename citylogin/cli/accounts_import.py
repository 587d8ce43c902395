"""`citylogin accounts import`: the people a service already has, from a Keycloak realm export, Auth0's user
export or a CSV file (SPEC §17), on the configured DynamoDB. Run it again at will: what it wrote is found and
left as it is (`--update` changes what differs). It prints counts and every refused row with where it is and
why; never a hash."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from citylogin.cli.admin import _context
from citylogin.cli.operator import OPERATOR_HELP, remember_operator
from citylogin.cli.output import OperatorGroup

if TYPE_CHECKING:
    from flows.account_import import ImportReport

FORMATS = ["keycloak", "auth0", "csv"]
READ_CHUNK = 1 << 20


@click.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def accounts(context: click.Context, operator: str | None) -> None:
    """Bring accounts from elsewhere (Keycloak, Auth0, CSV)."""
    remember_operator(context, operator)


def _provider_mapping(_context_: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for value in values:
        source, sep, name = value.partition("=")
        if not sep or not source or not name:
            raise click.BadParameter(f"{value!r} is not SOURCE=NAME")
        mapping[source] = name
    return mapping


@accounts.command("import")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="What FILE is: a Keycloak realm export (a file or a directory export), Auth0's user export "
                   "(NDJSON), or CSV (username,email,email_verified,password_hash,locale).")
@click.option("--dry-run", is_flag=True, help="Read the file and the tables, write nothing, say what it would do.")
@click.option("--update", is_flag=True, help="Accounts imported before: change what differs (never a password "
                                             "set in citylogin).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--provider", "provider_map", multiple=True, callback=_provider_mapping, metavar="SOURCE=NAME",
              help="Link the export's identities of provider SOURCE through the provider NAME configured here "
                   "(default: the one of the same name; Auth0's google-oauth2, apple and windowslive: the one of "
                   "that preset).")
def import_accounts(file: Path, fmt: str, dry_run: bool, update: bool, as_json: bool,
                    provider_map: dict[str, str]) -> None:
    """Import the accounts of FILE."""
    from accounts.import_rows import FileRefused
    from common.keys.imported_schemes import SchemesMoved
    from flows.account_import import ImportOptions, UnknownProvider, import_accounts as run

    options = ImportOptions(source=fmt, dry_run=dry_run, update=update, providers=provider_map)
    progress = _Progress() if sys.stderr.isatty() else None
    try:
        digest = file_sha256(file)
        with _context() as ctx:
            report = run(ctx, rows=_rows(file, fmt), options=options, file_sha256=digest, progress=progress)
    except (FileRefused, UnknownProvider, SchemesMoved) as refused:
        raise click.ClickException(str(refused)) from None
    except (OSError, UnicodeError) as error:
        raise click.ClickException(f"{file} cannot be read ({getattr(error, 'strerror', None) or error})") from None
    finally:
        if progress:
            progress.end()
    if as_json:
        click.echo(json.dumps(report.summary(), ensure_ascii=False))
    else:
        click.echo(_text(report))


def _rows(file: Path, fmt: str):  # type: ignore[no-untyped-def]
    from accounts.import_formats import read_rows

    return read_rows(file, fmt)


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (a directory export: of its files' names and contents, in name order), for the audit."""
    digest = hashlib.sha256()
    for part in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if part.is_file():
            digest.update(part.relative_to(path).as_posix().encode() + b"\0" if path.is_dir() else b"")
            with part.open("rb") as stream:
                while chunk := stream.read(READ_CHUNK):
                    digest.update(chunk)
    return digest.hexdigest()


def _text(report: ImportReport) -> str:
    counts = report.counts()
    would = "dry run, nothing written: would have " if report.dry_run else ""
    lines = [f"{would}imported {counts['imported']}, updated {counts['updated']}, unchanged {counts['unchanged']}, "
             f"refused {counts['refused']}, identities linked {counts['linked']} ({counts['read']} rows read)"]
    if report.refused:
        lines.append("refused:")
        lines += [f"  {r.where}: {r.reason} ({r.detail})" for r in report.refused]
    if report.notes:
        lines.append("notes:")
        lines += [f"  {n.where}: {n.note}" for n in report.notes]
    return "\n".join(lines)


class _Progress:
    """One line on the terminal's stderr, rewritten after each batch: rows, accounts per second, refused."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, report: ImportReport) -> None:
        click.echo(f"\r{report.read} rows  {report.accounts_per_second():.0f} accounts/s  "
                   f"{len(report.refused)} refused ", nl=False, err=True)
        self.shown = True

    def end(self) -> None:
        if self.shown:
            click.echo("", err=True)
