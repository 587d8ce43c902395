"""DynamoDB reads per second with 1, 100 and 1,000 open event streams on one process (issue 18:
"the reading side costs DynamoDB requests per process per interval, never per open stream").

    .venv/bin/python bench/stream_reads.py [--counts 1,100,1000] [--window 10]

Not a test. One all-in-one app in this process (Flask's threaded server: one thread per stream),
DynamoDB Local in memory, one user with N live sessions (opened as the login's write opens them) and
one SSE stream each. For each N: open the streams, let them settle 2 s, count every DynamoDB call
the app makes for `--window` seconds (botocore's event hook; the key ring's own scheduled read is
left out), close the streams. It uses only what an older commit has too (`tests/support`, the
sessions service), so copying bench/ into a worktree of one gives the "before" figures."""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citylogin.app import create_app  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402
from tests.support.live import register_device, serving  # noqa: E402
from tests.support.seats import open_session  # noqa: E402

REFRESHER = "citylogin-key-ring-refresher"


class Calls:
    def __init__(self, client) -> None:
        self.counts: Counter = Counter()
        self.items = 0  # keys asked for by BatchGetItem
        self.lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model, params, **_):
        if threading.current_thread().name.startswith(REFRESHER):
            return
        with self.lock:
            self.counts[model.name] += 1
            if model.name == "BatchGetItem":
                self.items += sum(len(r.get("Keys", [])) for r in params.get("RequestItems", {}).values())

    def take(self) -> tuple[Counter, int]:
        with self.lock:
            taken, items, self.counts, self.items = self.counts, self.items, Counter(), 0
        return taken, items


def open_stream(host: str, port: int, token: str) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(f"GET /session/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                 f"Accept: text/event-stream\r\n\r\n".encode())
    head = sock.recv(4096)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:200])
    return sock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1,100,1000")
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.counts.split(",")]
    top = max(counts)
    results = []
    with DynamoDBLocal() as local, tempfile.TemporaryDirectory() as data:
        app = create_app({"dynamodb_endpoint_url": local.endpoint_url, "data_dir": data, "log_level": "WARNING",
                          "table_prefix": f"b{uuid.uuid4().hex[:6]}_", "max_concurrent_devices": 0,
                          "events_max_streams": top + 100, "events_max_streams_per_user": top + 100,
                          "events_max_streams_per_session": 2, "events_heartbeat": 60,
                          "argon2_time_cost": 1, "argon2_memory_cost": 8192, "deletion_sweep_interval": 0})
        ctx = app.extensions["citylogin"]
        with serving(app) as url:
            host, port = url.removeprefix("http://").split(":")
            user = register_device(url).key_file.user_uuid
            tokens = [open_session(ctx, user_uuid=user, device_id=str(uuid.uuid4()), device_name=f"d{i}")
                      .tokens.access_token for i in range(top)]
            calls = Calls(ctx.dynamodb)
            for n in counts:
                streams = [open_stream(host, int(port), token) for token in tokens[:n]]
                time.sleep(2)
                calls.take()
                time.sleep(args.window)
                taken, items = calls.take()
                for sock in streams:
                    sock.close()
                time.sleep(1.5)
                row = {"streams": n, "calls_per_s": round(sum(taken.values()) / args.window, 2),
                       "by_operation_per_s": {op: round(c / args.window, 2) for op, c in sorted(taken.items())},
                       "batch_items_per_s": round(items / args.window, 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
    print("\n| open streams | DynamoDB calls/s | by operation | session items read/s |")
    print("|---|---|---|---|")
    for row in results:
        ops = ", ".join(f"{op} {v}" for op, v in row["by_operation_per_s"].items()) or "none"
        print(f"| {row['streams']} | {row['calls_per_s']} | {ops} | {row['batch_items_per_s']} |")


if __name__ == "__main__":
    main()
