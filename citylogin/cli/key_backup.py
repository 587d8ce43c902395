"""`citylogin keys backup FILE` and `citylogin keys restore FILE`: the key ring in one file, sealed under the
key-encryption key as the ring is (common.keys.ring_backup), and back into a table that has no ring."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from citylogin.cli.database import command_audit, command_settings, config_errors, ring_store
from common.config import Settings
from common.web.audit_events import AuditEvent

FILE = click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))


@click.command("backup")
@FILE
def backup_keys(file: str) -> None:
    """Write the whole key ring to FILE (`-`: standard output), sealed under the key-encryption key: the
    file alone reveals no key, and it opens only with that key. The file is written whole or not at all
    (mode 0600)."""
    from common.timefmt import aware_utc
    from common.keys.ring import read_ring
    from common.keys.ring_backup import make_backup

    with ring_store(command_settings()) as store:
        contents = config_errors(lambda: read_ring(store))
        text = make_backup(contents, table=store.table, encryptor=store.encryptor, now=aware_utc(None))
        table, refused = store.table, len(contents.refused)
    if file == "-":
        click.echo(text, nl=False)
    else:
        _write_private(Path(file), text)
    command_audit(AuditEvent.KEY_RING_BACKED_UP, entries=len(contents.entries), ring_version=contents.ring.version)
    where = "standard output" if file == "-" else file
    click.echo(f"backed up {len(contents.entries)} keys of {table} (ring version {contents.ring.version}) to "
               f"{where}, sealed under the key-encryption key: keep it apart from that key", err=True)
    if refused:
        click.echo(f"left out {refused} item(s) of the ring that do not open (see `citylogin keys list`'s log)",
                   err=True)


@click.command("restore")
@FILE
def restore_keys(file: str) -> None:
    """Write the key ring of a backup FILE (`-`: standard input) into a table that holds no ring: a new
    CITYLOGIN_TABLE_PREFIX or DynamoDB, or a table whose ring was deleted with every service stopped.
    Refused, with nothing written, for a file that does not open under the key-encryption key, that was
    edited or damaged, holds a member a backup has not, is over 16 MiB, or a table that holds a ring."""
    from common.keys.ring import describe

    name, data = _read(file)
    settings = command_settings()
    _refuse_a_new_key_encryption_key(settings, name)
    # A DynamoDB Local started for the restore makes its folder (and the data directory) if missing: a
    # restore that fails removes them again, so that a wrong key leaves no empty data directory behind.
    made = _missing(settings.data_dir.resolve() / "dynamodb")
    restored = False
    try:
        backup, contents, table = _restore(settings, name, data)
        restored = True
    finally:
        if not restored and made is not None:
            shutil.rmtree(made, ignore_errors=True)
    command_audit(AuditEvent.KEY_RING_RESTORED, entries=len(backup.entries), ring_version=backup.ring.version,
                  backup_made_at=backup.made_at, backup_table=backup.table)
    signing = [row for row in describe(contents) if row["state"] == "signing"]
    click.echo(f"restored {len(backup.entries)} keys into {table} from a backup of {backup.table} made "
               f"{backup.made_at}; the ring is at version {contents.ring.version}")
    click.echo("signing: " + ", ".join(f"{row['kind']} {row['kid']}" for row in signing))
    click.echo("retire again any key retired after the backup was made (`citylogin keys retire KID --force`)")


def _restore(settings: Settings, name: str, data: bytes) -> tuple[Any, Any, str]:
    """(the backup, the ring read back, the table) once the backup's ring is in a table that had none."""
    from common.timefmt import aware_utc
    from common.keys.ring import read_ring
    from common.keys.ring_backup import RingBackup, open_backup

    opened: list[RingBackup] = []

    def open_into_an_empty_table(store: Any) -> None:  # before a table is created: a refusal writes nothing
        opened.append(config_errors(lambda: open_backup(data, name=name, encryptor=store.encryptor)))
        if not store.is_empty():
            raise click.ClickException(_exists(store.table))

    with ring_store(settings, create_tables=True, before_creating=open_into_an_empty_table) as store:
        backup = opened[0]
        if not store.restore(list(backup.entries), ring=backup.ring, now=aware_utc(None)):
            raise click.ClickException(_exists(store.table))
        contents = config_errors(lambda: read_ring(store))
        return backup, contents, store.table


def _missing(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet (None: `path` exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            return missing
        missing = folder
    return missing


def _refuse_a_new_key_encryption_key(settings: Settings, name: str) -> None:
    """A restore into a new data directory needs the backup's key-encryption key there: one generated now
    could never open it. Refused before anything is made."""
    from citylogin.cli.database import operator_service
    from common.keys.encryption import LOCAL_KEK_FILE

    if settings.key_encryption_key is not None or settings.kms_key_id:
        return
    if operator_service(settings, may_create=True)[0] is not None:
        return  # the running service's own key
    key_file = settings.data_dir.resolve() / "keys" / LOCAL_KEK_FILE
    if not key_file.exists():
        raise click.ClickException(f"{name} opens only under the key-encryption key it was made with, and there "
                                   "is none here: set CITYLOGIN_KEY_ENCRYPTION_KEY, or copy the key file of the "
                                   f"backed-up data directory to {key_file} (mode 0600). Nothing restored")


def _exists(table: str) -> str:
    return (f"a key ring exists in {table}: nothing restored. A restore writes only into a table without one "
            "(a new CITYLOGIN_TABLE_PREFIX or DynamoDB, or the ring's items deleted with every service stopped)")


def _read(file: str) -> tuple[str, bytes]:
    """(how refusals name the backup, its bytes). At most one byte past MAX_BACKUP_BYTES is read: a larger
    file, or one without an end (/dev/zero, a stream), is refused before anything is made."""
    from common.keys.ring_backup import MAX_BACKUP_BYTES

    if file == "-":
        name, data = "the backup on standard input", sys.stdin.buffer.read(MAX_BACKUP_BYTES + 1)
    else:
        try:
            with Path(file).open("rb") as handle:
                name, data = file, handle.read(MAX_BACKUP_BYTES + 1)
        except OSError as exc:
            raise click.ClickException(f"{file}: {exc.strerror or exc}") from None
    if len(data) > MAX_BACKUP_BYTES:
        raise click.ClickException(f"{name} is over {MAX_BACKUP_BYTES // 2**20} MiB, larger than any key ring "
                                   "backup: nothing restored")
    return name, data


def _write_private(path: Path, text: str) -> None:
    """`text` into `path`, mode 0600 from creation on, replacing it in one step: a reader never sees half."""
    directory = path.resolve().parent
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
