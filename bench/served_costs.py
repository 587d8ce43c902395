"""What chosen functions cost a peer row's request under the server (issue 87): citylogin as deploy/ runs it
(gunicorn, citylogin's worker, 2 workers x 64 threads), the peer bench's clients in its closed loop (4 threads),
and in each worker the thread CPU of each function named, added up as it runs (bench/function_timing.py, set up
by bench/served_timing_conf.py: deploy's settings plus the hook). Not a test.

    .venv/bin/python bench/served_costs.py refresh --time oidc.token.refresh_rotation:rotate \\
        common.keys.jwt_keys:JwtKeyRing.sign_jwt --rounds 3 --seconds 4
    .venv/bin/python bench/served_costs.py userinfo --floor --time \\
        common.database.dynamo_client:LeanDynamoDBClient._call   # the same function at both, in alternate blocks

With `--floor`, the provider floor (bench/peer_floor.py) runs beside under the same server and settings, in
alternate blocks (A B B A ...): a function both call (the DynamoDB client's, PyJWT's) is timed at both, so
that what citylogin spends there beyond the floor is measured, not estimated. With `--session-refresh` (the
refresh row), the device's own `POST /session/refresh` (bearer sessions, one a thread, rotating, as
`run_bench.py --only oidc` puts it beside an app's refresh) takes alternate blocks on the same server:

    .venv/bin/python bench/served_costs.py refresh --session-refresh --time oidc.core.id_tokens:IdTokens._sign

Per row: the server's CPU per request (its process tree, bench/cpu.py, as the peer bench counts it), the app's
(`flask.app:Flask.__call__`, always timed: the WSGI app on the request's thread, its access line's middleware
included, before its answer is written), and each function's ms per request and calls per request, from the
workers' totals read just before and after each block (the code row's: 3 batches, each made just before it, 0.3 s
apart).
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
sys.path.insert(1, str(ROOT / "bench"))  # bench/flows.py imports loadgen so (bare `flows` is the product's)

from bench import flows  # noqa: E402
from loadgen import local_session  # noqa: E402
from bench.peer_bench import QUICK, Clients, _calls, make_clients, run_block, warm_up  # noqa: E402
from bench.peer_loop import Call  # noqa: E402
from bench.peer_servers import citylogin_server, floor_server  # noqa: E402
from bench.servers import LOCALHOST_ONLY  # noqa: E402
from citylogin.server.gunicorn_config import workers  # noqa: E402
from citylogin.client.api import Client  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

APP = "flask.app:Flask.__call__"
CONF = ROOT / "bench" / "served_timing_conf.py"
ROWS = ("refresh", "code", "flow", "userinfo", "introspection", "discovery")
_CODES_PER_THREAD, _CODE_BATCHES = 15, 3
_ASKED: dict[Path, int] = {}  # the next snapshot's number, per server (two sides may share one)


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


class Side:
    """One server under timing: its clients, its workers' snapshot directory, and what its blocks added up."""

    def __init__(self, name: str, clients: Clients, asks: Path, names: list[str],
                 own_calls: list[Call] | None = None) -> None:
        self.name, self.clients, self.asks, self.own_calls = name, clients, asks, own_calls
        self.spent = {each: [0.0, 0] for each in names}
        self.done, self.cpu = 0, 0.0

    def block(self, row: str, seconds: float) -> None:
        calls, count = (self.own_calls, 1_000_000) if self.own_calls else _calls(row, self.clients, _CODES_PER_THREAD)
        time.sleep(0.3)  # what the preparation left behind (writes after an answer) is done
        n = _ASKED.get(self.asks, 0)
        _ASKED[self.asks] = n + 2
        before = snapshot(self.asks, n)
        block = run_block(calls, seconds=seconds, count=count, pid=self.clients.running.pid)
        after = snapshot(self.asks, n + 1)
        self.done, self.cpu = self.done + len(block.latencies), self.cpu + block.server_cpu_s
        for name, total in self.spent.items():
            if name in after:
                total[0] += after[name][0] - before[name][0]
                total[1] += after[name][1] - before[name][1]

    def report(self, row: str) -> str:
        lines = [f"\n{self.name}, {row}: {self.done} requests, server CPU {1000 * self.cpu / self.done:.3f} ms a "
                 "request (its process tree)"]
        for name, (seconds, calls) in sorted(self.spent.items(), key=lambda item: -item[1][0]):
            lines.append(f"  {1000 * seconds / self.done:7.3f} ms  {calls / self.done:5.2f} calls  {name}")
        return "\n".join(lines)


def session_refresh_call(client: Client) -> Call:
    """POST /session/refresh of `client`'s session, the rotated pair kept; the answer's latency, None if refused."""
    http = local_session()

    def call() -> float | None:
        started = time.perf_counter()
        refreshed = flows.refresh(client, http)
        return time.perf_counter() - started if refreshed else None
    return call


def bearer_session(base_url: str) -> Client:
    """A new account's device, logged in by hand as run_bench.py's oidc part logs in: a bearer session."""
    client = flows.register(base_url, f"costsr{os.urandom(4).hex()}")
    flows.login_with_retry(client)
    return client


def session_refresh_calls(base_url: str, threads: int) -> list[Call]:
    """One bearer session a thread, each call its session_refresh_call."""
    return [session_refresh_call(bearer_session(base_url)) for _ in range(threads)]


def _timing(asks: Path, names: list[str]) -> dict[str, str]:
    asks.mkdir(parents=True)
    return {"BENCH_TIME_FUNCTIONS": " ".join(names), "BENCH_TIMING_DIR": str(asks)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--time", nargs="*", default=[], metavar="MODULE:FUNCTION")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="each block's length")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--floor", action="store_true", help="the provider floor beside, in alternate blocks")
    parser.add_argument("--session-refresh", action="store_true",
                        help="the refresh row: the device's own POST /session/refresh beside, on the same server")
    args = parser.parse_args(argv)
    if args.session_refresh and args.row != "refresh":
        parser.error("--session-refresh goes with the refresh row")
    os.environ.update(LOCALHOST_ONLY)
    cfg = {**QUICK, "codes_per_batch": _CODES_PER_THREAD * QUICK["threads"]}
    names = [APP, *args.time]
    with tempfile.TemporaryDirectory(prefix="citylogin-costs-") as tmp, ExitStack() as stack:
        db = stack.enter_context(DynamoDBLocal())
        people = _CODES_PER_THREAD if args.row == "code" else 1
        running = stack.enter_context(citylogin_server(
            db.endpoint_url, Path(tmp, "server"), table_prefix="costs_", conf=CONF,
            extra_env=_timing(Path(tmp, "asks"), names)))
        sides = [Side("citylogin", make_clients(running, cfg["threads"], "cst", people=people), Path(tmp, "asks"),
                      names)]
        if args.floor:
            Path(tmp, "floor").mkdir()
            floor = stack.enter_context(floor_server(db.endpoint_url, Path(tmp, "floor"), server="gunicorn",
                                                     table_prefix="costsfloor_", conf=CONF,
                                                     extra_env=_timing(Path(tmp, "floor-asks"), names)))
            sides.append(Side("floor-gunicorn", make_clients(floor, cfg["threads"], "fl", people=people),
                              Path(tmp, "floor-asks"), names))
        if args.session_refresh:
            own = session_refresh_calls(running.side.base_url, cfg["threads"])
            sides.append(Side("citylogin POST /session/refresh", sides[0].clients, Path(tmp, "asks"), names, own))
            run_block(own, seconds=args.warmup, count=1_000_000, pid=running.pid)
        warm_up(args.row, {side.name: side.clients for side in sides if not side.own_calls}, cfg, args.warmup)
        for side in (sides + sides[::-1]) * args.rounds:
            for _ in range(_CODE_BATCHES if args.row == "code" else 1):
                side.block(args.row, args.seconds)
        for side in sides:
            print(side.report(args.row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
