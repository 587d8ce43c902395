"""Client CPU per DynamoDB call: a plain boto3 client (parameter validation off) against the lean
client that `common.database.dynamo.make_client` returns (common/database/dynamo_client.py). Goal (issue 20): ≤ 1 ms
of client CPU per call at p50.

    .venv/bin/python bench/dynamo_client.py [--calls 300] [--runs 3] [--endpoint URL] [--out FILE]

Not a test. One DynamoDB Local in memory (or --endpoint), one table, items the size of a session
item. Per run and operation (GetItem with ConsistentRead, BatchGetItem of 3 keys, TransactWriteItems
of a Put and an Update, Query of a 3-item partition, PutItem), each client makes --calls calls after
30 warm-ups, the two clients in rounds A B B A so that drift hits both alike. Each call is timed
with `time.thread_time()` of the calling thread: the CPU the client spends, not DynamoDB Local's
and not the wait for its answer. Prints p50/p90 in ms per client and the ratio boto3 ÷ lean of the
p50s, per run and as the median over the runs."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from common.database import dynamo  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

WARM_UP = 30
OPERATIONS = ("GetItem", "BatchGetItem", "TransactWriteItems", "Query", "PutItem")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def session_like(pk: str, sk: str) -> dict[str, Any]:
    """An item shaped like a session: ids, times, a small map and a sealed binary value."""
    return dynamo.to_item({
        "pk": pk, "sk": sk, "user_uuid": str(uuid.uuid4()), "device_id": str(uuid.uuid4()),
        "created_at": "2025-01-01T00:00:00Z", "ends_at": 1_900_000_000, "expires_ttl": 1_900_000_000,
        "state": "active", "refresh_digest": "d" * 64, "jkt": "k" * 43, "generation": 7,
        "client": {"name": "phone", "platform": "ios", "version": 3}, "sealed": b"\x00" * 32})


def calls(client: Any, table: str) -> dict[str, Callable[[], Any]]:
    key = {"pk": {"S": "u1"}, "sk": {"S": "s1"}}
    item, other = session_like("u1", "s1"), session_like("u2", "s1")  # made once: not the client's work
    return {
        "GetItem": lambda: client.get_item(TableName=table, Key=key, ConsistentRead=True),
        "BatchGetItem": lambda: client.batch_get_item(RequestItems={table: {"Keys": [
            {"pk": {"S": "u1"}, "sk": {"S": f"s{i}"}} for i in (1, 2, 3)], "ConsistentRead": True}}),
        "TransactWriteItems": lambda: client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": other}},
            {"Update": {"TableName": table, "Key": {"pk": {"S": "u2"}, "sk": {"S": "count"}},
                        "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}]),
        "Query": lambda: client.query(TableName=table, KeyConditionExpression="pk = :p", ConsistentRead=True,
                                      ExpressionAttributeValues={":p": {"S": "u1"}}),
        "PutItem": lambda: client.put_item(TableName=table, Item=item),
    }


def cpu_per_call(call: Callable[[], Any], n: int) -> list[float]:
    """Thread CPU seconds of each of n calls, after the warm-up."""
    for _ in range(WARM_UP):
        call()
    samples = []
    for _ in range(n):
        start = time.thread_time()
        call()
        samples.append(time.thread_time() - start)
    return samples


def one_run(clients: dict[str, Any], table: str, n: int) -> dict[str, dict[str, dict[str, float]]]:
    ops = {name: calls(client, table) for name, client in clients.items()}
    result: dict[str, dict[str, dict[str, float]]] = {}
    for op in OPERATIONS:
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for name in ("boto3", "lean", "lean", "boto3"):  # A B B A
            samples[name] += cpu_per_call(ops[name][op], n // 2)
        result[op] = {name: {"p50_ms": pct(s, 0.5) * 1000, "p90_ms": pct(s, 0.9) * 1000}
                      for name, s in samples.items()}
    return result


def make_clients(endpoint: str) -> dict[str, Any]:
    """The two clients with the same timeouts, retries and pool; validation off in both."""
    plain = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                         aws_access_key_id="local", aws_secret_access_key="local",
                         config=Config(retries={"total_max_attempts": 2, "mode": "standard"},
                                       max_pool_connections=64, parameter_validation=False,
                                       connect_timeout=1.0, read_timeout=2.0))
    lean = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, parameter_validation=False)
    return {"boto3": plain, "lean": lean}


def prepare(client: Any) -> str:
    table = f"bench_client_{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    for i in (1, 2, 3):
        client.put_item(TableName=table, Item=session_like("u1", f"s{i}"))
    return table


def report(runs: list[dict]) -> dict[str, dict[str, float]]:
    summary = {}
    print(f"{'operation':20} {'boto3 p50/p90 ms':>18} {'lean p50/p90 ms':>18} {'ratio p50':>10}   (median of "
          f"{len(runs)} runs; per run: ratio)")
    for op in OPERATIONS:
        med = {name: {q: statistics.median(r[op][name][q] for r in runs) for q in ("p50_ms", "p90_ms")}
               for name in ("boto3", "lean")}
        ratios = [r[op]["boto3"]["p50_ms"] / r[op]["lean"]["p50_ms"] for r in runs]
        summary[op] = {**{f"{name}_{q}": v for name, qs in med.items() for q, v in qs.items()},
                       "ratio_p50": statistics.median(ratios)}
        print(f"{op:20} {med['boto3']['p50_ms']:8.3f}/{med['boto3']['p90_ms']:<9.3f} "
              f"{med['lean']['p50_ms']:8.3f}/{med['lean']['p90_ms']:<9.3f} {statistics.median(ratios):9.2f}x   "
              + " ".join(f"{x:.2f}x" for x in ratios))
    worst = max(summary[op]["lean_p50_ms"] for op in OPERATIONS)
    print(f"goal: lean client CPU ≤ 1 ms per call at p50: {'MET' if worst <= 1.0 else 'MISSED'} "
          f"(worst operation {worst:.3f} ms)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per client, operation and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--endpoint", help="a running DynamoDB Local (default: start one in memory)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    with ExitStack() as stack:
        endpoint = args.endpoint or stack.enter_context(DynamoDBLocal()).endpoint_url
        clients = make_clients(endpoint)
        table = prepare(dynamo.make_client(region="us-east-1", endpoint_url=endpoint, read_timeout=30))
        runs = [one_run(clients, table, args.calls) for _ in range(args.runs)]
    summary = report(runs)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "source": "bench/dynamo_client.py", "command": "bench/dynamo_client.py " + " ".join(sys.argv[1:]),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "mode": "full", "runs": args.runs,
            "machine": {"cpu_count": os.cpu_count(), "loadavg_end": os.getloadavg()},
            "goals": goal_rows(runs), "measured": runs, "summary": summary, "calls": args.calls}, indent=2))


def goal_rows(runs: list[dict]) -> list[dict]:
    """bench/publish.py's rows: per operation the lean client's p50 in each run (goal ≤ 1 ms in every
    run), and boto3's beside it for information."""
    rows = []
    for op in OPERATIONS:
        lean = [round(r[op]["lean"]["p50_ms"], 3) for r in runs]
        boto3 = [round(r[op]["boto3"]["p50_ms"], 3) for r in runs]
        rows.append({"figure": f"client CPU per {op}, p50 (lean client)", "value": statistics.median(lean),
                     "unit": "ms", "goal": "<= 1", "runs": lean, "status": "MET" if max(lean) <= 1.0 else "MISSED"})
        rows.append({"figure": f"client CPU per {op}, p50 (boto3, the same run)", "value": statistics.median(boto3),
                     "unit": "ms", "goal": "info", "runs": boto3, "status": "info"})
    return rows


if __name__ == "__main__":
    main()
