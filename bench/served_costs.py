"""What chosen functions cost a peer row's request under the server (issue 87): citylogin as deploy/ runs it
(gunicorn, citylogin's worker, 2 workers x 64 threads), the peer bench's clients in its closed loop (4 threads),
and in each worker the thread CPU of each function named, added up as it runs (bench/function_timing.py, set up
by bench/served_timing_conf.py: deploy's settings plus the hook). Not a test.

    .venv/bin/python bench/served_costs.py refresh --time oidc.token.refresh_rotation:rotate \\
        common.keys.jwt_keys:JwtKeyRing.sign_jwt --rounds 3 --seconds 4

Per row: the server's CPU per request (its process tree, bench/cpu.py, as the peer bench counts it), the app's
(`common.web.request_log:RequestLog.__call__`, always timed: the WSGI app on the request's thread, before its
answer is written), and each function's ms per request and calls per request, from the workers' totals read
just before and after each block (each block: the code row's 3 batches, each made just before it, 0.3 s apart).
A function that calls another timed one includes it. Timing costs about a microsecond a wrapped call.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the bench package and the project's own packages

from bench.peer_bench import QUICK, _calls, make_clients, run_block, warm_up  # noqa: E402
from bench.peer_servers import citylogin_server  # noqa: E402
from bench.servers import LOCALHOST_ONLY  # noqa: E402
from citylogin.server.gunicorn_config import workers  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

APP = "common.web.request_log:RequestLog.__call__"
CONF = ROOT / "bench" / "served_timing_conf.py"
ROWS = ("refresh", "code", "flow", "userinfo", "introspection", "discovery")
_CODES_PER_THREAD, _CODE_BATCHES = 15, 3


def snapshot(directory: Path, n: int) -> dict[str, list[float]]:
    """Every worker's totals, summed, as of now."""
    (directory / f"ask-{n:04d}").touch()
    deadline = time.monotonic() + 30
    while len(answers := list(directory.glob(f"*-{n:04d}.json"))) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(answers)} of {workers} workers answered snapshot {n}")
        time.sleep(0.05)
    summed: dict[str, list[float]] = {}
    for answer in answers:
        for name, (seconds, calls) in json.loads(answer.read_text()).items():
            total = summed.setdefault(name, [0.0, 0])
            total[0], total[1] = total[0] + seconds, total[1] + calls
    return summed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--time", nargs="*", default=[], metavar="MODULE:FUNCTION")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="each block's length")
    parser.add_argument("--warmup", type=float, default=6.0)
    args = parser.parse_args(argv)
    os.environ.update(LOCALHOST_ONLY)
    cfg = {**QUICK, "codes_per_batch": _CODES_PER_THREAD * QUICK["threads"]}
    names = [APP, *args.time]
    with tempfile.TemporaryDirectory(prefix="citylogin-costs-") as tmp, ExitStack() as stack:
        asks = Path(tmp, "asks")
        asks.mkdir()
        db = stack.enter_context(DynamoDBLocal())
        running = stack.enter_context(citylogin_server(
            db.endpoint_url, Path(tmp, "server"), table_prefix="costs_", conf=CONF,
            extra_env={"BENCH_TIME_FUNCTIONS": " ".join(names), "BENCH_TIMING_DIR": str(asks)}))
        people = _CODES_PER_THREAD if args.row == "code" else 1
        clients = make_clients(running, cfg["threads"], "cst", people=people)
        warm_up(args.row, {"citylogin": clients}, cfg, args.warmup)
        spent = {name: [0.0, 0] for name in names}
        done, cpu, n = 0, 0.0, 0
        for _ in range(args.rounds * (_CODE_BATCHES if args.row == "code" else 1)):
            calls, count = _calls(args.row, clients, _CODES_PER_THREAD)
            time.sleep(0.3)  # what the preparation left behind (writes after an answer) is done
            before = snapshot(asks, n)
            block = run_block(calls, seconds=args.seconds, count=count, pid=running.pid)
            after = snapshot(asks, n + 1)
            n += 2
            done, cpu = done + len(block.latencies), cpu + block.server_cpu_s
            for name in names:
                spent[name][0] += after[name][0] - before[name][0]
                spent[name][1] += after[name][1] - before[name][1]
        print(f"\n{args.row}: {done} requests, server CPU {1000 * cpu / done:.3f} ms a request (its process tree)")
        for name in sorted(names, key=lambda each: -spent[each][0]):
            print(f"  {1000 * spent[name][0] / done:7.3f} ms  {spent[name][1] / done:5.2f} calls  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
