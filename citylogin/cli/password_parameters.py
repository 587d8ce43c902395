"""`citylogin password-parameters list/record/retire`: the Argon2id parameter sets the deployment
has hashed with (common.keys.password_parameters) and the imported scheme keys (common.keys.imported_schemes:
hashes an import brought, SPEC §17), how many stored hashes each still has, the record of those the stored
hashes use and no process recorded (and the sealing of the previous release's records), and the retirement
of those no hash uses, so that password checks stop paying for them. Each reads the whole users table (a
Scan) and needs the key-encryption key: the records are sealed."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Counter, Iterator, TypeVar

import click

from citylogin.cli.database import command_dynamodb, command_settings, config_errors
from citylogin.cli.output import OperatorGroup
from common.clock import now_epoch
from common.config import Settings

if TYPE_CHECKING:  # imported where used, so that the other commands start without them
    from accounts.password_hash_census import HashCensus
    from common.keys.imported_schemes import LoadedSchemes
    from common.keys.password_parameter_store import PasswordParameterStore, RecordedSet, Refusal

T = TypeVar("T")


@contextmanager
def _census(settings: Settings) -> Iterator[tuple[PasswordParameterStore, Callable[[], HashCensus]]]:
    """(the records' store, a count of the users' hashes per set and per imported scheme key) on the
    configured DynamoDB; a key-encryption key that does not open the key ring is a one-line CLI error (it
    would seal nothing the processes open)."""
    from accounts.password_hash_census import hash_census
    from common.keys.encryption import key_encryptor
    from common.keys.password_parameter_store import PasswordParameterStore
    from common.keys.ring import read_ring
    from common.keys.ring_store import KeyRingStore

    with command_dynamodb(settings) as (settings, tables, client):  # a scan of many pages: a start's patience
        encryptor = config_errors(lambda: key_encryptor(settings))
        config_errors(lambda: read_ring(KeyRingStore(client, tables.key_ring, encryptor)))
        yield (PasswordParameterStore(client, tables.key_ring, encryptor), lambda: hash_census(client, tables.users))


def _current(settings: Settings) -> tuple[int, int, int]:
    return settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M") if epoch else "unknown         "


def _unmoved(action: Callable[[], T]) -> T:
    """`action()`; records that kept changing under it are a one-line CLI error."""
    from common.keys.password_parameter_store import SetsMoved

    try:
        return action()
    except SetsMoved as exc:
        raise click.ClickException(str(exc)) from None


def _not_written(refusal: Refusal) -> str:
    """Why `record` did not write a set, in the words of the one who ran it."""
    from common.keys.password_parameter_store import MAX_SETS, TOO_MANY

    why = {TOO_MANY: f"{MAX_SETS} sets are recorded already (the current one included): `citylogin "
                     "password-parameters retire` removes those no stored hash uses"}
    return f"  {refusal.name}: " + why.get(refusal.reason, "beyond what the settings accept")


def _echo_refusals(refusals: list[Refusal], table: str) -> None:
    for refusal in refusals:
        click.echo(f"refused: {refusal.message(table)}")


@click.group("password-parameters", cls=OperatorGroup)
def password_parameters() -> None:
    """The Argon2id parameter sets stored password hashes were made with; every password check
    verifies one hash of each, so a dormant account costs what an unknown name costs."""


@password_parameters.command("list")
def list_sets() -> None:
    """Each recorded set, when a process first and last hashed with it, and its stored hashes (a scan);
    then every record refused (unsealed, edited, beyond the bounds...) and why."""
    from common.keys.password_parameter_store import RecordedSet, bounded, costly_note, key_of

    from common.keys.imported_schemes import load_schemes

    settings = command_settings()
    with _census(settings) as (store, census):
        loaded, imported = store.load(), load_schemes(store.client, store.table, encryptor=store.encryptor)
        counted = census()
    counts, current = counted.by_parameters, _current(settings)
    for parameters in sorted(loaded.listed.sets):
        record = loaded.records.get(parameters, RecordedSet(parameters, 0, 0))
        mark = "current" if parameters == current else ""
        click.echo(f"{key_of(parameters):22} {mark:8} hashes {counts.get(parameters, 0):>8}  "
                   f"first used {_day(record.first_used)}  last used {_day(record.last_used)}")
        note = costly_note(parameters, current=current)
        if note is not None:
            click.echo(f"  costly: {note}")
    for parameters in sorted(set(counts) - loaded.listed.sets):
        click.echo(f"{key_of(parameters):22} {'':8} hashes {counts[parameters]:>8}  not recorded: "
                   "`citylogin password-parameters record`")
    _echo_refusals([*loaded.refused, *bounded(loaded.listed.sets, current=current)[1]], store.table)
    _list_imported(imported, counted.by_imported_key, store.table)


def _list_imported(imported: LoadedSchemes, counts: Counter[str], table: str) -> None:
    """Each imported scheme key recorded, and the stored hashes still of it (accounts an import brought
    that have not signed in since: their first sign-in replaces it)."""
    from accounts.password_hash_census import UNREADABLE

    for key in imported.listed.keys:
        click.echo(f"{key:22} {'imported':8} hashes {counts.get(key, 0):>8}  "
                   f"recorded {_day(imported.recorded_at.get(key, 0))}")
    for key in sorted(set(counts) - set(imported.listed.keys)):
        click.echo(f"{key:22} {'imported':8} hashes {counts[key]:>8}  not recorded: "
                   + ("no scheme reads them" if key == UNREADABLE else "`citylogin password-parameters record`"))
    if imported.refusal is not None:
        click.echo(f"refused: the imported scheme record in {table} is {imported.refusal} (not written under the "
                   "key-encryption key): `citylogin password-parameters record` writes it again")


@password_parameters.command("record")
@click.option("--yes", is_flag=True, help="Seal the unsealed records that no stored hash uses without asking.")
def record_sets(yes: bool) -> None:
    """Record, sealed, the current set and every set the stored hashes use that no sealed record lists
    (hashes made by a release that recorded none, or imported), so that every process verifies it from
    its next reload; write again a record or the manifest that was lost. Unsealed records (the previous
    release's) that no stored hash uses are sealed once you confirm them. A set beyond the bounds (more
    than 8, or beyond the settings) is not recorded, and the command fails naming it; one costlier than
    4 × the current set is recorded (parity comes first) and what it adds to every check is shown."""
    from common.keys.password_parameter_store import costly_note, key_of
    from common.keys.password_parameters import record_found

    def confirm(unsealed: list[RecordedSet]) -> bool:
        # The question and what it is about go to stderr: stdout is written only when the command ends.
        click.echo("unsealed records that no stored hash uses (written by the previous release, or without "
                   "the key-encryption key):", err=True)
        for record in unsealed:
            click.echo(f"  {key_of(record.parameters):22} last used {_day(record.last_used)}", err=True)
        return yes or click.confirm("Seal them, so that every password check verifies their sets?", default=False,
                                    err=True)

    settings = command_settings()
    with _census(settings) as (store, census):
        counted = census()
        counts = counted.by_parameters
        done = _unmoved(lambda: record_found(store, counts=counts, current=_current(settings), now=now_epoch(),
                                                  confirm=confirm))
        imported_refused = _record_imported(store, counted.by_imported_key)
    for parameters in done.recorded:
        click.echo(f"{key_of(parameters):22} recorded, sealed: {counts.get(parameters, 0)} stored hashes use it")
        note = costly_note(parameters, current=_current(settings))
        if note is not None:
            click.echo(f"  costly: {note}")
    for record in done.left_unsealed:
        click.echo(f"{key_of(record.parameters):22} left unsealed: no process verifies it "
                   "(`citylogin password-parameters retire` removes it)")
    if not done.recorded and not done.refused:
        click.echo("every set the stored hashes use was recorded and sealed already")
    if done.refused or imported_refused:
        raise click.ClickException("not recorded, and not verified on password checks:\n" + "\n".join(
            [*map(_not_written, done.refused), *(f"  {key}: {IMPORTED_REFUSED}" for key in imported_refused)]))


IMPORTED_REFUSED = "an imported scheme beyond the bounds, or past the 8 recorded"


def _record_imported(store: PasswordParameterStore, counts: Counter[str]) -> list[str]:
    """The imported scheme keys the stored hashes use, recorded again (sealed) with their counts shown;
    returns those refused."""
    from accounts.password_hash_census import UNREADABLE
    from common.keys.imported_schemes import SchemesMoved, record_schemes

    keys = sorted(key for key in counts if key != UNREADABLE)
    try:
        refused = record_schemes(store.client, store.table, keys, encryptor=store.encryptor) if keys else []
    except SchemesMoved as exc:
        raise click.ClickException(str(exc)) from None
    for key in keys:
        if key not in refused:
            click.echo(f"{key:22} imported scheme recorded, sealed: {counts[key]} stored hashes use it")
    return refused


@password_parameters.command("retire")
def retire_sets() -> None:
    """Remove the record of every set that no stored hash uses, but the current one and any a process
    has hashed with in the last day; processes started afterwards stop verifying it."""
    from common.keys.password_parameter_store import key_of
    from common.keys.password_parameters import CURRENT, HASHES_LEFT, RECENTLY_USED, RETIRED, retire_unused

    outcomes = {RETIRED: "retired: no stored hash uses it", CURRENT: "kept: the current set",
                HASHES_LEFT: "kept: {hashes} stored hashes use it",
                RECENTLY_USED: "kept: a process hashed with it less than a day ago (one may still)"}
    settings = command_settings()
    with _census(settings) as (store, census):
        done = _unmoved(lambda: retire_unused(store, count_hashes=lambda: census().by_parameters,
                                              current=_current(settings), now=now_epoch()))
        _retire_imported(store, census)
    for retirement in done:
        text = outcomes[retirement.outcome].format(hashes=retirement.hashes)
        if not retirement.sealed and retirement.outcome != RETIRED:
            text += " (unsealed, so no process verifies it: `citylogin password-parameters record` seals it)"
        click.echo(f"{key_of(retirement.record.parameters):22} {text}")
    if any(retirement.outcome == RETIRED for retirement in done):
        click.echo("processes started from now on no longer verify the retired sets")


def _retire_imported(store: PasswordParameterStore, census: Callable[[], HashCensus]) -> None:
    """The imported scheme keys no stored hash uses (every account of them has signed in since, or is
    gone) and no import recorded in the last day, removed."""
    from common.keys.imported_schemes import HASHES_LEFT, RECENTLY_USED, RETIRED, SchemesMoved, retire_schemes

    outcomes = {RETIRED: "retired: no stored hash uses it", HASHES_LEFT: "kept: {hashes} stored hashes use it "
                "(accounts not signed in since the import)", RECENTLY_USED: "kept: an import recorded it less than "
                "a day ago (one may still be writing its accounts)"}
    try:
        done = retire_schemes(store.client, store.table, encryptor=store.encryptor, now=now_epoch(),
                              count_hashes=lambda: census().by_imported_key)
    except SchemesMoved as exc:
        raise click.ClickException(str(exc)) from None
    for retirement in done:
        text = outcomes[retirement.outcome].format(hashes=retirement.hashes)
        click.echo(f"{retirement.key:22} imported scheme {text}")
