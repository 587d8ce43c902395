"""Client CPU per DynamoDB call over TLS: the lean client (common/database/dynamo_client.py on
common/database/dynamo_http.py) against a plain boto3 client, both verifying nginx's certificate against a
private CA (AWS_CA_BUNDLE) in front of DynamoDB Local (tests/support/dynamodb_tls.py), with the
two clients over plain HTTP to DynamoDB Local as the reference rows; then what a reconnect (a new
TCP connection and a full TLS handshake) costs a call, with nginx closing every connection after
its answer (keep-alive off) against keeping it (on).

    .venv/bin/python bench/dynamo_tls.py [--calls 300] [--runs 3] [--endpoint URL] [--out FILE]

Not a test. Needs Debian's nginx (/usr/sbin/nginx). Same method as bench/dynamo_client.py, whose
items and calls it reuses: per run and operation (GetItem with ConsistentRead, PutItem, Query of a
3-item partition, TransactWriteItems of a Put and an Update) each client makes --calls calls after
30 warm-ups, the clients in rounds A B C D D C B A so that drift hits all alike; each call is timed
with `time.thread_time()` of the calling thread: the client's CPU, TLS included (OpenSSL runs on
the calling thread), not nginx's, not DynamoDB Local's, not the wait. Prints p50/p90 in ms per
client and operation (median over the runs), and the reconnect's added CPU per call (keep-alive off
minus on, GetItem) per client; nginx's access log confirms how many connections each part used."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.dynamo_client import calls, cpu_per_call, pct, prepare  # noqa: E402
from common.database import dynamo  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402
from tests.support.dynamodb_tls import TlsDynamoDB, dynamodb_behind_tls  # noqa: E402
from tests.support.nginx import NGINX  # noqa: E402

OPERATIONS = ("GetItem", "PutItem", "Query", "TransactWriteItems")
CLIENTS = ("boto3 tls", "lean tls", "lean http", "boto3 http")  # one round: this order, then reversed
RECONNECT_CALLS = 100  # per client and keep-alive setting: each is a full TLS handshake when off


def boto3_client(endpoint: str) -> Any:
    """boto3 as bench/dynamo_client.py makes it (validation off, the lean client's timeouts, retries
    and pool); over https it verifies against AWS_CA_BUNDLE, as botocore does."""
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="local", aws_secret_access_key="local",
                        config=Config(retries={"total_max_attempts": 2, "mode": "standard"},
                                      max_pool_connections=64, parameter_validation=False,
                                      connect_timeout=1.0, read_timeout=2.0))


def lean_client(endpoint: str) -> Any:
    return dynamo.make_client(region="us-east-1", endpoint_url=endpoint, parameter_validation=False)


def one_run(clients: dict[str, Any], table: str, n: int) -> dict[str, dict[str, dict[str, float]]]:
    ops = {name: calls(client, table) for name, client in clients.items()}
    result: dict[str, dict[str, dict[str, float]]] = {}
    for op in OPERATIONS:
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for name in (*CLIENTS, *reversed(CLIENTS)):
            samples[name] += cpu_per_call(ops[name][op], n // 2)
        result[op] = {name: {"p50_ms": pct(s, 0.5) * 1000, "p90_ms": pct(s, 0.9) * 1000}
                      for name, s in samples.items()}
    return result


def reconnect_run(kept: TlsDynamoDB, closing: TlsDynamoDB, table: str) -> dict[str, dict[str, float]]:
    """GetItem's CPU per call through nginx with keep-alive on and off, per client, in rounds
    on, off, off, on; the p50s and their difference (what the reconnect costs)."""
    makers = {"lean": lean_client, "boto3": boto3_client}
    clients = {f"{kind} {setting}": make(endpoint.url) for kind, make in makers.items()
               for setting, endpoint in (("on", kept), ("off", closing))}
    get = {name: calls(client, table)["GetItem"] for name, client in clients.items()}
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for kind in ("lean", "boto3"):
        for setting in ("on", "off", "off", "on"):
            samples[f"{kind} {setting}"] += cpu_per_call(get[f"{kind} {setting}"], RECONNECT_CALLS // 2)
    result = {}
    for kind in ("lean", "boto3"):
        on, off = (pct(samples[f"{kind} {s}"], 0.5) * 1000 for s in ("on", "off"))
        result[kind] = {"on_p50_ms": on, "off_p50_ms": off, "reconnect_ms": off - on,
                        "off_p90_ms": pct(samples[f"{kind} off"], 0.9) * 1000}
    return result


def report(runs: list[dict], reconnects: list[dict]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    print(f"client CPU per call, ms, p50/p90 (median of {len(runs)} runs)")
    print(f"{'operation':20}" + "".join(f"{name:>18}" for name in CLIENTS) + f"{'tls: boto3/lean':>17}")
    for op in OPERATIONS:
        med = {name: {q: statistics.median(r[op][name][q] for r in runs) for q in ("p50_ms", "p90_ms")}
               for name in CLIENTS}
        ratio = statistics.median(r[op]["boto3 tls"]["p50_ms"] / r[op]["lean tls"]["p50_ms"] for r in runs)
        summary[op] = {**{f"{name}_{q}": v for name, qs in med.items() for q, v in qs.items()}, "tls_ratio_p50": ratio}
        print(f"{op:20}" + "".join(f"{med[n]['p50_ms']:9.3f}/{med[n]['p90_ms']:<8.3f}" for n in CLIENTS)
              + f"{ratio:16.2f}x")
    print(f"reconnect (GetItem over TLS, keep-alive off - on), ms of client CPU per call (median of "
          f"{len(reconnects)} runs)")
    for kind in ("lean", "boto3"):
        med = {q: statistics.median(r[kind][q] for r in reconnects) for q in reconnects[0][kind]}
        summary[f"reconnect {kind}"] = med
        print(f"{kind:8} on p50 {med['on_p50_ms']:.3f}   off p50 {med['off_p50_ms']:.3f} (p90 {med['off_p90_ms']:.3f})"
              f"   a reconnect adds {med['reconnect_ms']:.3f}")
    return summary


def connections_used(endpoint: TlsDynamoDB) -> tuple[int, int]:
    """(requests, connections) in nginx's access log so far."""
    logged = endpoint.requests()
    return len(logged), len({r.connection for r in logged})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per client, operation and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--endpoint", help="a running DynamoDB Local (default: start one in memory)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    if not os.path.exists(NGINX):
        sys.exit(f"{NGINX} is missing: run `bash scripts/setup.sh --browser` (it installs nginx)")
    load_start = os.getloadavg()
    with ExitStack() as stack:
        endpoint = args.endpoint or stack.enter_context(DynamoDBLocal()).endpoint_url
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        kept = stack.enter_context(dynamodb_behind_tls(endpoint, folder / "kept"))
        closing = stack.enter_context(dynamodb_behind_tls(endpoint, folder / "closing", keepalive=False,
                                                          authority=kept.authority))
        os.environ["AWS_CA_BUNDLE"] = str(kept.ca_file)  # every https client made below verifies against it
        table = prepare(dynamo.make_client(region="us-east-1", endpoint_url=endpoint, read_timeout=30))
        clients = {"boto3 tls": boto3_client(kept.url), "lean tls": lean_client(kept.url),
                   "lean http": lean_client(endpoint), "boto3 http": boto3_client(endpoint)}
        runs = [one_run(clients, table, args.calls) for _ in range(args.runs)]
        kept_log = connections_used(kept)
        reconnects = [reconnect_run(kept, closing, table) for _ in range(args.runs)]
        closing_log = connections_used(closing)
    summary = report(runs, reconnects)
    print(f"nginx: keep-alive on, the comparison: {kept_log[0]} requests on {kept_log[1]} connections; "
          f"keep-alive off: {closing_log[0]} requests on {closing_log[1]} connections")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "source": "bench/dynamo_tls.py", "command": "bench/dynamo_tls.py " + " ".join(sys.argv[1:]),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "mode": "full", "runs": args.runs,
            "machine": {"cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
            "measured": runs, "reconnects": reconnects, "summary": summary, "calls": args.calls}, indent=2))


if __name__ == "__main__":
    main()
