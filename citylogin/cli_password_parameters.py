"""`citylogin password-parameters list/record/retire`: the Argon2id parameter sets the deployment
has hashed with (common.password_parameters), how many stored hashes each still has, the record of
those the stored hashes use and no process recorded, and the retirement of those no hash uses, so
that password checks stop paying for them. Each reads the whole users table (a Scan)."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

import click

from citylogin.cli_database import command_dynamodb, command_settings
from common.config import Settings


@contextmanager
def _census(settings: Settings) -> Iterator[tuple]:
    """(the records' store, a count of the users' hashes per set) on the configured DynamoDB."""
    from accounts.password_hash_census import hashes_by_parameters
    from common.password_parameter_store import PasswordParameterStore

    with command_dynamodb(settings) as (settings, tables, client):  # a scan of many pages: a start's patience
        yield PasswordParameterStore(client, tables.key_ring), lambda: hashes_by_parameters(client, tables.users)


def _current(settings: Settings) -> tuple[int, int, int]:
    return settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M")


@click.group("password-parameters")
def password_parameters() -> None:
    """The Argon2id parameter sets stored password hashes were made with; every password check
    verifies one hash of each, so a dormant account costs what an unknown name costs."""


@password_parameters.command("list")
def list_sets() -> None:
    """Each recorded set, when a process first and last hashed with it, and its stored hashes (a scan)."""
    from common.password_parameter_store import key_of

    settings = command_settings()
    with _census(settings) as (store, count_hashes):
        records, counts = store.load(), count_hashes()
    for record in records:
        mark = "current" if record.parameters == _current(settings) else ""
        click.echo(f"{key_of(record.parameters):22} {mark:8} hashes {counts.get(record.parameters, 0):>8}  "
                   f"first used {_day(record.first_used)}  last used {_day(record.last_used)}")
    unrecorded = set(counts) - {record.parameters for record in records}
    for parameters in sorted(unrecorded):
        click.echo(f"{key_of(parameters):22} {'':8} hashes {counts[parameters]:>8}  not recorded: "
                   "`citylogin password-parameters record`")


@password_parameters.command("record")
def record_sets() -> None:
    """Record every set the stored hashes use that no process recorded (hashes made by a release that
    recorded none, or imported), so that every process verifies it from its next reload."""
    from common.password_parameter_store import key_of
    from common.password_parameters import record_found

    settings = command_settings()
    with _census(settings) as (store, count_hashes):
        counts = count_hashes()
        found = record_found(store, counts=counts, now=int(datetime.now(timezone.utc).timestamp()))
    for parameters in found:
        click.echo(f"{key_of(parameters):22} recorded: {counts[parameters]} stored hashes use it")
    if not found:
        click.echo("every set the stored hashes use was recorded already")


@password_parameters.command("retire")
def retire_sets() -> None:
    """Remove the record of every set that no stored hash uses, but the current one and any a process
    has hashed with in the last day; processes started afterwards stop verifying it."""
    from common.password_parameter_store import key_of
    from common.password_parameters import CURRENT, HASHES_LEFT, RECENTLY_USED, RETIRED, retire_unused

    outcomes = {RETIRED: "retired: no stored hash uses it", CURRENT: "kept: the current set",
                HASHES_LEFT: "kept: {hashes} stored hashes use it",
                RECENTLY_USED: "kept: a process hashed with it less than a day ago (one may still)"}
    settings = command_settings()
    with _census(settings) as (store, count_hashes):
        done = retire_unused(store, count_hashes=count_hashes, current=_current(settings),
                             now=int(datetime.now(timezone.utc).timestamp()))
    for retirement in done:
        text = outcomes[retirement.outcome].format(hashes=retirement.hashes)
        click.echo(f"{key_of(retirement.record.parameters):22} {text}")
    if any(retirement.outcome == RETIRED for retirement in done):
        click.echo("processes started from now on no longer verify the retired sets")
