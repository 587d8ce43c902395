"""GetItem throughput while the credentials rotate: the lean client (common/database/dynamo_client.py)
signing with keys that botocore fetches from the ECS container endpoint and refreshes at each
rotation, against the same with keys that never rotate (the floor, measured in the same run).

    .venv/bin/python bench/credential_rotation.py [--seconds 20] [--threads 8] [--rotate 2] [--rounds 2]
                                                   [--endpoint URL] [--out FILE]

Not a test. One DynamoDB Local in memory (or --endpoint), one table, one item. Two set-ups from
tests/support/aws_credentials.py, each its own key issuer, container credentials endpoint and
signature-checking front (SigV4 verified per request, in this process): "rotating" (a new
generation every --rotate seconds, botocore refreshing once per generation) and "floor" (one
generation that never expires within the run). Each variant gets --seconds in all, in --rounds
letters alternating A B A B so that drift hits both alike; --threads threads make ConsistentRead
GetItems back to back, after a 2-s warm-up per client; each letter starts with one untimed
call (see `run`). Prints the completed GetItems of every second,
per variant the median and worst second, and the ratio rotating ÷ floor of the medians; any error
or refusal by the front is counted (it should be 0)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from common.database import dynamo  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402
from tests.support.aws_credentials import (  # noqa: E402
    CheckingFront,
    ContainerCredentials,
    KeyIssuer,
    chain_environment,
)

VARIANTS = ("rotating", "floor")
KEY = {"pk": {"S": "bench"}}
AUTHORIZATION = uuid.uuid4().hex
WARM_UP = 2  # seconds per client before the letters


class Variant:
    """A credentials source, a checking front and a client signing through the default chain."""

    def __init__(self, stack: ExitStack, endpoint: str, rotate: int | None, config_dir: Path) -> None:
        self.issuer = stack.enter_context(KeyIssuer(rotate))
        self.front = stack.enter_context(CheckingFront(endpoint, self.issuer))
        # one authorization token for both: botocore reads it from the environment at every fetch
        self.container = stack.enter_context(ContainerCredentials(self.issuer, authorization=AUTHORIZATION))
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update(chain_environment(config_dir, **self.container.environment()))
        boto3.DEFAULT_SESSION = None  # this variant's chain: its client keeps the endpoint it resolved
        self.client = dynamo.make_client(region="us-east-1", endpoint_url=self.front.url, local=False,
                                         parameter_validation=False)


def restore_environment(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)
    boto3.DEFAULT_SESSION = None


def make_table(endpoint: str) -> str:
    local = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, read_timeout=30)
    table = f"bench_rotation_{uuid.uuid4().hex[:8]}"
    local.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                       KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    local.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    local.put_item(TableName=table, Item={**KEY, "state": {"S": "active"}, "n": {"N": "7"}})
    return table


def letter(client: Any, table: str, *, threads: int, seconds: int) -> tuple[list[int], int]:
    """GetItems completed in each second of `seconds`, and the errors."""
    done: Counter[int] = Counter()
    errors = [0]
    lock = threading.Lock()
    start = time.monotonic()
    end = start + seconds

    def work() -> None:
        mine: Counter[int] = Counter()
        failed = 0
        while time.monotonic() < end:
            try:
                client.get_item(TableName=table, Key=KEY, ConsistentRead=True)
                mine[int(time.monotonic() - start)] += 1
            except Exception:  # counted: the figure is how many calls completed, and how many did not
                failed += 1
        with lock:
            done.update(mine)
            errors[0] += failed

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [done[s] for s in range(seconds)], errors[0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as config_dir:
        endpoint = args.endpoint or stack.enter_context(DynamoDBLocal()).endpoint_url
        table = make_table(endpoint)
        stack.callback(restore_environment, dict(os.environ))
        variants = {"rotating": Variant(stack, endpoint, args.rotate, Path(config_dir)),
                    "floor": Variant(stack, endpoint, None, Path(config_dir))}
        for variant in variants.values():  # warm-up: connections, signing keys, DynamoDB Local's JIT
            letter(variant.client, table, threads=args.threads, seconds=WARM_UP)
            variant.front.reset_counts()
        per_letter = args.seconds // args.rounds
        letters: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            for name in VARIANTS:
                # Idle while the other ran, the rotating client holds keys some rotations old: botocore
                # refreshes them in the background (15 min left is not its mandatory window), letting the
                # other threads sign with them meanwhile. AWS would still take them; the front takes only
                # the current and the previous generation. One untimed call refreshes them first.
                variants[name].client.get_item(TableName=table, Key=KEY, ConsistentRead=True)
                seconds, errors = letter(variants[name].client, table, threads=args.threads, seconds=per_letter)
                letters.append({"variant": name, "per_second": seconds, "errors": errors})
                print(f"{name:9} " + " ".join(f"{n:5d}" for n in seconds) + f"   errors {errors}", flush=True)
        fronts = {name: {"refusals": dict(v.front.refusals), "generations": len(v.front.generations_seen),
                         "fetches": v.container.fetches} for name, v in variants.items()}
    return {"letters": letters, "fronts": fronts, "per_letter_seconds": per_letter}


def summarise(measured: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in VARIANTS:
        seconds = [n for entry in measured["letters"] if entry["variant"] == name for n in entry["per_second"]]
        summary[name] = {"median_rps": statistics.median(seconds), "worst_second": min(seconds),
                         "mean_rps": statistics.fmean(seconds),
                         "errors": sum(e["errors"] for e in measured["letters"] if e["variant"] == name),
                         **measured["fronts"][name]}
    summary["ratio_median"] = summary["rotating"]["median_rps"] / summary["floor"]["median_rps"]
    summary["ratio_worst"] = summary["rotating"]["worst_second"] / summary["floor"]["worst_second"]
    return summary


def report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nGetItem/s, {args.threads} threads, {args.seconds} s per variant in {args.rounds} letters ABAB, "
          f"rotation every {args.rotate} s")
    print(f"{'variant':9} {'median':>8} {'worst s':>8} {'mean':>8} {'errors':>7} {'refusals':>9} "
          f"{'generations':>12} {'fetches':>8}")
    for name in VARIANTS:
        s = summary[name]
        print(f"{name:9} {s['median_rps']:8.0f} {s['worst_second']:8d} {s['mean_rps']:8.0f} {s['errors']:7d} "
              f"{sum(s['refusals'].values()):9d} {s['generations']:12d} {s['fetches']:8d}")
    print(f"rotating ÷ floor: median {summary['ratio_median']:.3f}, worst second {summary['ratio_worst']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="seconds per variant, over all its letters")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rotate", type=int, default=2, help="seconds between generations of keys")
    parser.add_argument("--rounds", type=int, default=2, help="letters per variant (ABAB for 2)")
    parser.add_argument("--endpoint", help="a running DynamoDB Local (default: start one in memory)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    measured = run(args)
    summary = summarise(measured)
    report(summary, args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "source": "bench/credential_rotation.py",
            "command": "bench/credential_rotation.py " + " ".join(sys.argv[1:]),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "mode": "full",
            "machine": {"cpu_count": os.cpu_count(), "loadavg_end": os.getloadavg()},
            "config": vars(args) | {"out": str(args.out)}, "measured": measured, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
