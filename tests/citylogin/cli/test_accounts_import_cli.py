"""`citylogin accounts import` as an operator runs it, a real process on DynamoDB Local (SPEC §17): killed
with SIGKILL anywhere and run again, every account is there exactly once with its claims and nothing is
half-written; two processes importing one file at once end as one would; --json prints one object,
--dry-run writes nothing, a progress line only on a terminal; a bad file is one line, never a traceback;
no hash in anything it prints or logs."""
from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.user_store import email_claim, username_claim
from common.database import dynamo
from tests.conftest import unique_name
from tests.support.fixtures import cli_environment
from tests.support.terminal import Terminal
from tests.support.waiting import settled

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(scope="module")
def kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def started(make_server, base_config, kek, tmp_path):
    _, ctx = make_server(key_encryption_key=kek)
    env = {**os.environ, **cli_environment(base_config, kek=kek, data_dir=str(tmp_path / "data")),
           "PYTHONPATH": str(ROOT), "CITYLOGIN_AUDIT_LOG": str(tmp_path / "audit.log"),
           "CITYLOGIN_LOG_LEVEL": "INFO"}
    return ctx, env


def bcrypt_text(rng: random.Random) -> str:
    # The form of a bcrypt hash (the import never computes one): what a CSV export holds.
    return "$2b$10$" + "".join(rng.choice(BCRYPT_ALPHABET) for _ in range(53))


def csv_file(path: Path, count: int) -> tuple[Path, list[dict]]:
    rng = random.Random()
    tag = unique_name("c")[:18]
    people = [{"username": f"{tag}-{i}", "email": f"{tag}-{i}@example.com", "hash": bcrypt_text(rng)}
              for i in range(count)]
    lines = ["username,email,email_verified,password_hash,locale"]
    lines += [f"{p['username']},{p['email']},true,{p['hash']},en" for p in people]
    path.write_text("\n".join(lines) + "\n")
    return path, people


def command(file: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "citylogin.cli.main", "accounts", "import", str(file), "--format", "csv", *options]


def run_cli(env: dict, file: Path, *options: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command(file, *options), env=env, capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) is ok, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done


def stored(ctx, people: list[dict]) -> dict:
    """The users items and claims of the file's people (and any claim whose users item is missing)."""
    names = {p["username"] for p in people}
    found: dict = {"users": {}, "claims": {}}
    for page in ctx.dynamodb.get_paginator("scan").paginate(TableName=ctx.tables.users, ConsistentRead=True):
        for item in map(dynamo.from_item, page["Items"]):
            if item.get("username") in names:
                found["users"][item["user_uuid"]] = item
    wanted = {username_claim(p["username"]) for p in people} | {email_claim(p["email"]) for p in people}
    for page in ctx.dynamodb.get_paginator("scan").paginate(TableName=ctx.tables.claims, ConsistentRead=True):
        for item in map(dynamo.from_item, page["Items"]):
            if item["claim"] in wanted:
                found["claims"][item["claim"]] = item["user_uuid"]
    return found


def assert_whole(ctx, people: list[dict]) -> dict:
    """Every person's account exactly once, both its claims naming it, no claim without its account."""
    found = stored(ctx, people)
    by_name = {item["username"]: uuid for uuid, item in found["users"].items()}
    assert len(found["users"]) == len(people) == len(by_name)
    for p in people:
        uuid = by_name[p["username"]]
        assert found["claims"][username_claim(p["username"])] == uuid
        assert found["claims"][email_claim(p["email"])] == uuid
        assert found["users"][uuid]["password_hash"] == "imported:" + p["hash"]
    return found


def written(ctx, people: list[dict]) -> int:
    return len(stored(ctx, people)["users"])


def test_killed_anywhere_then_run_to_the_end_every_account_is_there_once_and_whole(started, tmp_path):
    ctx, env = started
    file, people = csv_file(tmp_path / "people.csv", 1500)
    rng = random.Random()
    for _ in range(3):
        process = subprocess.Popen(command(file), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        already = written(ctx, people)
        if already == len(people):
            break
        target = rng.randrange(already + 1, len(people) + 1)  # killed once about this many are in, or as it ends
        deadline = time.monotonic() + 120
        while process.poll() is None and written(ctx, people) < target and time.monotonic() < deadline:
            pass
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        found = settled(lambda: stored(ctx, people), what="the tables after the kill")
        for uuid in found["users"]:  # what is there is whole: each account with both claims
            names = [c for c, owner in found["claims"].items() if owner == uuid]
            assert len(names) == 2
        assert set(found["claims"].values()) <= set(found["users"])  # and no claim without its account
    final = json.loads(run_cli(env, file, "--json").stdout)
    assert final["imported"] + final["unchanged"] == len(people) and final["refused"] == 0
    before = assert_whole(ctx, people)
    again = json.loads(run_cli(env, file, "--json").stdout)
    assert (again["unchanged"], again["imported"], again["updated"]) == (len(people), 0, 0)
    assert stored(ctx, people) == before


def test_two_processes_importing_one_file_at_once_end_as_one_would(started, tmp_path):
    ctx, env = started
    file, people = csv_file(tmp_path / "people.csv", 300)
    both = [subprocess.Popen(command(file, "--json"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in both]
    assert [process.returncode for process in both] == [0, 0], [err for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    assert sum(r["imported"] for r in reports) == len(people)  # each account written by exactly one of them
    assert sum(r["unchanged"] for r in reports) == len(people)
    assert all(r["refused"] == 0 for r in reports)
    assert_whole(ctx, people)


def test_json_dry_run_and_refusals_and_no_hash_anywhere(started, tmp_path):
    ctx, env = started
    file, people = csv_file(tmp_path / "people.csv", 5)
    with file.open("a") as stream:
        stream.write("not-an-email,nobody,true,,en\n")
    dry = run_cli(env, file, "--dry-run", "--json")
    summary = json.loads(dry.stdout)
    assert (summary["dry_run"], summary["imported"], summary["refused"]) == (True, 5, 1)
    assert summary["refused_rows"][0]["where"] == "line 7" and summary["refused_rows"][0]["reason"]
    assert written(ctx, people) == 0
    real = run_cli(env, file)
    assert "imported 5" in real.stdout and "line 7" in real.stdout
    assert written(ctx, people) == 5
    audit_log = (tmp_path / "audit.log").read_text()
    assert '"event": "accounts_imported"' in audit_log
    everything = dry.stdout + dry.stderr + real.stdout + real.stderr + audit_log
    for p in people:
        assert p["hash"][7:] not in everything and p["hash"][-31:] not in everything


def test_a_file_that_is_not_the_format_is_one_line_and_nothing_is_written(started, tmp_path):
    _, env = started
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\xff not a csv at all\n")
    done = run_cli(env, bad, ok=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "not a CSV" in errors[0]
    done = run_cli(env, tmp_path / "people.csv", ok=False)  # missing
    assert "does not exist" in done.stderr
    file, _ = csv_file(tmp_path / "people.csv", 1)
    done = run_cli(env, file, "--provider", "corp=nowhere", ok=False)
    assert [line for line in done.stderr.splitlines() if "nowhere" in line][0].startswith("Error: ")


def test_a_progress_line_on_a_terminal_only(started, tmp_path):
    _, env = started
    file, people = csv_file(tmp_path / "people.csv", 40)
    terminal = Terminal(command(file), env=env)
    terminal.wait_for(r"40 rows\s+\d+ accounts/s\s+0 refused")
    terminal.wait_for(r"imported 40")
    assert terminal.finish() == 0
    piped = run_cli(env, file)
    assert "accounts/s" not in piped.stderr + piped.stdout and "unchanged 40" in piped.stdout


FILES = ROOT / "tests" / "accounts" / "import_files"
# What a hash's salt or digest looks like in an export: long runs of base64 holding a digit and a letter.
HASH_LIKE = re.compile(r"[A-Za-z0-9+/.]{22,}")


def secret_looking(text: str) -> set[str]:
    return {t for t in HASH_LIKE.findall(text) if re.search(r"\d", t) and re.search(r"[A-Za-z]", t)}


@pytest.mark.parametrize(("name", "fmt"), [("keycloak-realm.json", "keycloak"), ("keycloak-dir", "keycloak"),
                                           ("auth0-users.ndjson", "auth0"), ("auth0-passwords.ndjson", "auth0"),
                                           ("accounts.csv", "csv")])
def test_the_exports_as_the_products_write_them_import_once_and_print_no_hash(started, tmp_path, name, fmt):
    ctx, env = started
    path = FILES / name
    args = [sys.executable, "-m", "citylogin.cli.main", "accounts", "import", str(path), "--format", fmt]
    first = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "Traceback" not in first.stderr, first.stderr
    report = json.loads(first.stdout)
    assert report["imported"] + report["unchanged"] > 0
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"imported 0, updated 0, unchanged {report['imported'] + report['unchanged']}" in again.stdout
    texts = [p.read_text() for p in ([path] if path.is_file() else sorted(path.iterdir()))]
    printed = first.stdout + first.stderr + again.stdout + again.stderr + (tmp_path / "audit.log").read_text()
    leaked = {t for text in texts for t in secret_looking(text)} & secret_looking(printed)
    assert not leaked
