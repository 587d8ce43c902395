"""The import bench (bench/import_bench.py) measures what its rows say: a small count of generated rows goes
through the real `citylogin accounts import` into tables of its own, every account is stored once, the calls
counted are the command's own (a batched read and transactions of several accounts: a fraction of a call per
account), and the rerun of the same file writes no account (the command's own key-ring heartbeat aside).
It times nothing."""
from __future__ import annotations

import csv
import json

import bcrypt
import pytest

from bench import goals, import_bench

COUNT = 40


def test_the_generated_csv_has_the_header_and_reuses_a_few_bcrypt_hashes(tmp_path):
    path = import_bench.write_file(tmp_path / "people.csv", 7, fmt="csv", run="t1")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert path.read_text().splitlines()[0] == "username,email,email_verified,password_hash,locale"
    assert len(rows) == 7 and len({row["username"] for row in rows}) == 7
    assert len({row["password_hash"] for row in rows}) == len(import_bench.PASSWORDS)
    first = rows[0]
    assert bcrypt.checkpw(import_bench.PASSWORDS[0].encode(), first["password_hash"].encode())


def test_the_generated_auth0_export_is_one_user_a_line_with_its_object_id(tmp_path):
    path = import_bench.write_file(tmp_path / "people.ndjson", 3, fmt="auth0", run="t2")
    users = [json.loads(line) for line in path.read_text().splitlines()]
    assert [len(user["_id"]["$oid"]) for user in users] == [24, 24, 24]
    assert {user["passwordHash"][:7] for user in users} == {"$2b$10$"}


@pytest.mark.slow  # two runs of the command and `citylogin init`, each a fresh interpreter: ~15 s
def test_a_small_import_is_stored_once_counted_and_a_rerun_writes_nothing(dynamodb_endpoint, tmp_path):
    result = import_bench.measure_import(dynamodb_endpoint, tmp_path, count=COUNT)
    figures = result["import"]
    assert figures["stored"] == COUNT
    first, rerun = figures["first"], figures["rerun"]
    assert first["report"]["imported"] == COUNT and first["report"]["refused"] == 0
    assert rerun["report"]["imported"] == 0 and rerun["report"]["unchanged"] == COUNT
    assert "TransactWriteItems" in first["dynamodb_calls"]["by_operation"]
    assert 0 < first["dynamodb_calls"]["per_account"] < 1
    assert not [key for key in rerun["dynamodb_calls"]["by_table"] if goals.account_write(key)]
    assert first["dynamodb_calls"]["by_table"]["TransactWriteItems claims+users"] >= 1
    statuses = {row["figure"]: row["status"] for row in goals.import_rows(result)}
    assert statuses[f"import of {COUNT} accounts: accounts stored once"] == "MET"
    assert statuses[f"import of {COUNT} accounts again: DynamoDB writes of accounts"] == "MET"
