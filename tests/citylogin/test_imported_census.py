"""`citylogin password-parameters list/record/retire` over imported scheme keys (SPEC §17): the stored hashes
still of each key (accounts an import brought that have not signed in since), the record of a key the
stored hashes use and no import recorded, and the retirement of a key no stored hash uses. Through the CLI
on DynamoDB Local, the accounts signed in over HTTP."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from citylogin.cli.main import main
from common.crypto.passwords import is_imported
from common.keys.imported_schemes import KEY_ID, RETIRE_AFTER_SECONDS, RING, load_schemes, record_schemes
from tests.accounts.test_imported_passwords import import_hash, stored_hash
from tests.conftest import FAST_ARGON2
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device

pytestmark = pytest.mark.slow


@pytest.fixture
def make_server(base_config) -> Iterator:
    with app_servers({**base_config, "key_ring_reload_seconds": 3600}) as start:
        yield start


@pytest.fixture
def env(base_config) -> dict[str, str]:
    """The CLI's environment: this module's tables, the data directory's key-encryption key, the apps' set."""
    return {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": base_config["dynamodb_endpoint_url"],
            "CITYLOGIN_TABLE_PREFIX": base_config["table_prefix"], "CITYLOGIN_DATA_DIR": base_config["data_dir"],
            **{f"CITYLOGIN_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()}}


def cli(env, *arguments: str) -> str:
    done = CliRunner().invoke(main, ["password-parameters", *arguments], env=env)
    assert done.exit_code == 0, done.output
    return done.output


def line_of(output: str, key: str) -> str:
    found = [line for line in output.splitlines() if line.startswith(key + " ")]
    assert len(found) == 1, output
    return found[0]


def key_of_account(ctx, client) -> str:
    from common.crypto.imported_hashes import scheme_key
    return scheme_key(stored_hash(ctx, client).removeprefix("imported:"))


def test_list_counts_the_accounts_still_on_each_imported_scheme_and_retire_removes_an_unused_one(make_server, env):
    url, ctx = make_server()
    ctx.dynamodb.delete_item(TableName=ctx.tables.key_ring, Key={"ring": {"S": RING}, "key_id": {"S": KEY_ID}})
    staying, signing_in, alone = register_device(url), register_device(url), register_device(url)
    for client in (staying, signing_in):
        import_hash(ctx, client, "bcrypt")
    import_hash(ctx, alone, "scrypt")
    bcrypt_key, scrypt_key = key_of_account(ctx, staying), key_of_account(ctx, alone)
    long_ago = int(ctx.epoch()) - RETIRE_AFTER_SECONDS - 1
    record_schemes(ctx.dynamodb, ctx.tables.key_ring, [bcrypt_key, scrypt_key], encryptor=ctx.key_ring.encryptor,
                   now=long_ago)  # the import ran two days ago
    listed = cli(env, "list")
    assert "hashes        2" in line_of(listed, bcrypt_key) and "imported" in line_of(listed, bcrypt_key)
    assert "hashes        1" in line_of(listed, scrypt_key)

    signing_in.login(PASSWORD)
    alone.login(PASSWORD)
    assert not is_imported(stored_hash(ctx, alone))
    listed = cli(env, "list")
    assert "hashes        1" in line_of(listed, bcrypt_key) and "hashes        0" in line_of(listed, scrypt_key)

    retired = cli(env, "retire")
    assert "retired" in line_of(retired, scrypt_key) and "kept: 1 stored hashes" in line_of(retired, bcrypt_key)
    kept = load_schemes(ctx.dynamodb, ctx.tables.key_ring, encryptor=ctx.key_ring.encryptor)
    assert kept.listed.keys == (bcrypt_key,)


def test_record_writes_a_key_the_stored_hashes_use_and_no_import_recorded(make_server, env):
    url, ctx = make_server()
    client = register_device(url)
    import_hash(ctx, client, "pbkdf2")
    key = key_of_account(ctx, client)
    ctx.dynamodb.delete_item(TableName=ctx.tables.key_ring, Key={"ring": {"S": RING}, "key_id": {"S": KEY_ID}})
    assert "not recorded" in line_of(cli(env, "list"), key)
    assert "recorded, sealed: 1 stored hashes" in line_of(cli(env, "record", "--yes"), key)
    assert key in load_schemes(ctx.dynamodb, ctx.tables.key_ring, encryptor=ctx.key_ring.encryptor).listed.keys
    assert "recorded" in line_of(cli(env, "list"), key)
