"""Bringing 100,000 people at once: `citylogin accounts import` (SPEC §17) against DynamoDB Local, its accounts
per second and its DynamoDB calls per account.

    .venv/bin/python bench/import_bench.py [--count 100000] [--format csv|auth0] [--runs 1] [--out FILE]
    .venv/bin/python bench/import_bench.py --quick          # 2,000 rows: a smoke run of a few seconds
    .venv/bin/python bench/publish.py --from bench/results/import.json --name import --docs

Not a test. DynamoDB Local in memory, `citylogin init` on a table prefix of the run's own. The file is made
before any clock starts: `--count` rows of a CSV (`username,email,email_verified,password_hash,locale`) or of
Auth0's password-hash export (NDJSON), every row with one of a few bcrypt hashes made once and reused: the
import never recomputes a hash, so the hashes' cost is not the import's. Per run:

1. the import: the real command, `citylogin accounts import FILE --format F --json`, as a process of its own,
   its DynamoDB through a counting proxy (bench/dynamo_proxy.py, no delay): its wall time from start to exit
   (the interpreter's start included), its CPU seconds, and every DynamoDB request it made, by operation;
2. the same file again: a rerun, which finds every account there and writes nothing;
3. the check: every account stored exactly once (a Scan with Select=COUNT of the users table beside the
   proxy, not counted), and the command's own report (imported, unchanged, refused).

The calls are counted as bench/dynamo_calls.py counts a request's: every call the import made, by operation,
divided by the accounts. `run_bench.py --only import` runs the same measurement as a part of the main run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bcrypt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the bench package and the project's own packages

from bench.dynamo_proxy import DelayProxy  # noqa: E402
from bench.goals import import_rows, merge_runs, render_goals  # noqa: E402
from bench.report import machine_info  # noqa: E402
from bench.servers import LOCALHOST_ONLY, PROJECT_ROOT, VENV_BIN, app_environment, run_init  # noqa: E402
from common.database import dynamo  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

FULL_COUNT, QUICK_COUNT = 100_000, 2_000
FORMATS = ("csv", "auth0")
# A few people's passwords, each hashed once: bcrypt at Auth0's cost (10), as its export gives them.
PASSWORDS = ("correct horse battery staple", "Tr0ub4dor&3", "open sesame, said Ali Baba")
BCRYPT_COST = 10
CSV_HEADER = "username,email,email_verified,password_hash,locale"
AUTH0_CONNECTION = "Username-Password-Authentication"
IMPORT_TIMEOUT_S = 3600


def bcrypt_hashes(cost: int = BCRYPT_COST) -> list[str]:
    """One bcrypt hash per password of PASSWORDS, made once for the whole file."""
    return [bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode() for password in PASSWORDS]


def write_file(path: Path, count: int, *, fmt: str, run: str) -> Path:
    """`count` people in `fmt`, each with a username and address of its own (the run's prefix keeps runs
    apart), half of the addresses verified, a tenth Japanese, the hashes of bcrypt_hashes() in turn."""
    hashes = bcrypt_hashes()
    with path.open("w", encoding="utf-8", newline="\n") as out:
        if fmt == "csv":
            out.write(CSV_HEADER + "\n")
        for i in range(count):
            name, verified, locale = f"i{run}_{i:06d}", i % 2 == 0, "ja" if i % 10 == 0 else "en"
            password_hash = hashes[i % len(hashes)]
            if fmt == "csv":
                out.write(f"{name},{name}@example.com,{'true' if verified else 'false'},{password_hash},{locale}\n")
            else:  # Auth0's password-hash export: one JSON object per line, the id as a MongoDB ObjectId
                out.write(json.dumps({"_id": {"$oid": f"{i:024x}"}, "email": f"{name}@example.com",
                                      "email_verified": verified, "username": name, "passwordHash": password_hash,
                                      "connection": AUTH0_CONNECTION}) + "\n")
    return path


def import_once(env: dict[str, str], path: Path, fmt: str) -> dict[str, Any]:
    """The command once: its JSON report, wall seconds and CPU seconds (user + system of the process)."""
    command = [str(VENV_BIN / "citylogin"), "accounts", "import", str(path), "--format", fmt, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=IMPORT_TIMEOUT_S)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin accounts import exited {done.returncode}:\n{done.stdout[-2000:]}\n"
                           f"{done.stderr[-2000:]}")
    return {"report": _counts(json.loads(done.stdout)), "seconds": seconds,
            "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def counted_pass(proxy: DelayProxy, env: dict[str, str], path: Path, fmt: str, count: int) -> dict[str, Any]:
    """One import of the file through the proxy: the command's figures and the calls it made (by operation,
    and by operation and the tables it named, without the run's prefix)."""
    prefix = env["CITYLOGIN_TABLE_PREFIX"]
    mark = proxy.mark()
    done = import_once(env, path, fmt)
    made = proxy.since(mark)
    by_operation = Counter(request.operation for request in made)
    by_table = Counter(f"{request.operation} {'+'.join(t.removeprefix(prefix) for t in request.tables)}"
                       for request in made)
    calls = sum(by_operation.values())
    return {**done, "accounts": count, "accounts_per_second": count / done["seconds"],
            "cpu_ms_per_account": 1000 * done["cpu_seconds"] / count,
            "dynamodb_calls": {"total": calls, "per_account": calls / count,
                               "by_operation": dict(sorted(by_operation.items())),
                               "by_table": dict(sorted(by_table.items()))}}


def stored_accounts(endpoint_url: str, table_prefix: str) -> int:
    """How many users items the tables hold (the import's tables are the run's own): a Scan, Select=COUNT."""
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url, read_timeout=30)
    total, start = 0, None
    while True:
        page = client.scan(TableName=table_prefix + "users", Select="COUNT",
                           **({"ExclusiveStartKey": start} if start else {}))
        total += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def measure_import(endpoint_url: str, work_dir: Path, *, count: int, fmt: str = "csv",
                   run: str | None = None) -> dict[str, Any]:
    """The import of `count` generated rows, then its rerun, on tables of their own: {"import": figures}."""
    run = run or uuid.uuid4().hex[:6]
    prefix = f"imp{run}_"
    work_dir.mkdir(parents=True, exist_ok=True)
    env = app_environment(endpoint_url=endpoint_url, data_dir=work_dir / "data", table_prefix=prefix)
    run_init(env)
    started = time.perf_counter()
    path = write_file(work_dir / f"people-{run}.{'csv' if fmt == 'csv' else 'ndjson'}", count, fmt=fmt, run=run)
    made_s = time.perf_counter() - started
    port = int(endpoint_url.rsplit(":", 1)[1])
    with DelayProxy(upstream_port=port) as proxy:
        proxied = {**env, "CITYLOGIN_DYNAMODB_ENDPOINT_URL": proxy.endpoint_url}
        first = counted_pass(proxy, proxied, path, fmt, count)
        rerun = counted_pass(proxy, proxied, path, fmt, count)
    return {"import": {"count": count, "format": fmt, "file_bytes": path.stat().st_size,
                       "file_seconds": made_s, "bcrypt_cost": BCRYPT_COST, "hashes_made": len(PASSWORDS),
                       "first": first, "rerun": rerun, "stored": stored_accounts(endpoint_url, prefix)}}


def render(result: dict[str, Any]) -> str:
    """The measurements of one run, one line per pass."""
    figures = result["import"]
    lines = [f"import of {figures['count']:,} {figures['format']} rows ({figures['file_bytes']:,} bytes, made in "
             f"{figures['file_seconds']:.1f} s): {figures['stored']:,} accounts stored"]
    for name in ("first", "rerun"):
        at = figures[name]
        calls = at["dynamodb_calls"]
        lines.append(f"  {name:6} {at['seconds']:8.1f} s  {at['accounts_per_second']:9.0f} accounts/s  "
                     f"{at['cpu_ms_per_account']:.3f} CPU ms/account  {calls['per_account']:.4f} calls/account "
                     f"({', '.join(f'{op} {n}' for op, n in calls['by_operation'].items())})  "
                     f"report: {json.dumps(_counts(at['report']))}")
    return "\n".join(lines)


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    """The command's report without its rows (a refused row's where and reason): the counts, small enough to
    publish."""
    return {key: (value if not isinstance(value, list) else len(value)) for key, value in report.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=None, help=f"rows to import ({FULL_COUNT:,}; --quick "
                                                                f"{QUICK_COUNT:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT:,} rows")
    parser.add_argument("--format", choices=FORMATS, default="csv", dest="fmt")
    parser.add_argument("--runs", type=int, default=1, help="imports of a fresh file on fresh tables")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "import.json")
    args = parser.parse_args(argv)
    count = args.count or (QUICK_COUNT if args.quick else FULL_COUNT)
    os.environ.update(LOCALHOST_ONLY)
    info, started_at = machine_info({}), datetime.now(timezone.utc).isoformat()
    info.pop("argon2_params")  # no password is hashed or checked here
    runs = []
    with tempfile.TemporaryDirectory(prefix="citylogin-import-bench-") as tmp, ExitStack() as stack:
        db = stack.enter_context(DynamoDBLocal())
        for number in range(1, args.runs + 1):
            runs.append(measure_import(db.endpoint_url, Path(tmp) / f"run{number}", count=count, fmt=args.fmt))
            print(f"run {number} of {args.runs}\n{render(runs[-1])}", flush=True)
    info["loadavg_end"] = os.getloadavg()
    rows = merge_runs([import_rows(r) for r in runs])
    print(render_goals(rows))
    command = "bench/import_bench.py" + (" --quick" if args.quick and not args.count else "") + \
        (f" --count {args.count}" if args.count else "") + (f" --format {args.fmt}" if args.fmt != "csv" else "") + \
        (f" --runs {args.runs}" if args.runs != 1 else "")
    report = {"source": "bench/import_bench.py", "command": command, "when": started_at,
              "mode": "quick" if count < FULL_COUNT else "full", "runs": args.runs, "machine": info,
              "goals": rows, "summaries": [r["import"] for r in runs]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}; publish with bench/publish.py --from {args.out} --name import --docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
