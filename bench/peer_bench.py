"""The peer bench (issues 53, 66, 87): citylogin's OpenID Provider beside node-oidc-provider, in server CPU per request.

    .venv/bin/python bench/peer_bench.py [--quick] [--runs N] [--floor] [--node-store memory|dynamodb|both] [--out FILE]
    .venv/bin/python bench/peer_bench.py --quick --rows flow --sides citylogin,floor-gunicorn   # one row, two sides
    .venv/bin/python bench/peer_bench.py --quick --rows refresh,userinfo --sides citylogin,node-dynamodb   # latency

citylogin runs as deploy/ runs it (gunicorn -c deploy/gunicorn.conf.py, citylogin's worker) on DynamoDB
Local in memory, whose own CPU is not counted; node-oidc-provider 9 (bench/peer/server.mjs) runs beside it
in one Node 22 process, as the side `node` on its memory store (the storage-free ceiling: node-oidc-provider
calls that store development-only) and as the side `node-dynamodb` on the same DynamoDB Local, through an
adapter of the design of node-oidc-provider's DynamoDB example (bench/peer/dynamodb_adapter.mjs), as
production runs it; `--node-store` chooses which (both by default). With `--floor`, the provider floor
(bench/peer_floor.py) under citylogin's worker and under granian. The same client code
(bench/peer_client.py) drives them all. Before the first row every side runs every row, unmeasured: each
node for `node_warmup_s` a row (V8 compiles node-oidc-provider's and the AWS SDK's code as it runs: a
fresh node-dynamodb serves a refresh for half the CPU only after some 15-20 s of load), the Python sides
for `warmup_s`; and each row starts with a short warm-up on each side.
Each row is measured in blocks in mirrored order (A B C D E E D C B A, `rounds` times), closed loop
with `threads` threads, each with its own keep-alive connection; a block's CPU is the server's process
tree's (bench/cpu.py: gunicorn's master and workers, node's process) from just before to just after it.
After a row's blocks, an untimed pass counts the DynamoDB calls per request of the sides that count them
(node-dynamodb's adapter, citylogin's GET /metrics).
Rows: refresh (each thread rotating its own grant), code (redeeming codes made just before the block, each
thread's by its people in turn), flow (authorize, the person's part, token, userinfo: CPU per whole flow),
userinfo, introspection, discovery; `--rows ROW,...` measures only those (each warmed up first). Per row and
side: CPU ms per request, requests per server CPU second, p50; and citylogin's requests per server CPU second
over each other side's, against the goals of bench/goals.py (PEER_GOALS over node-dynamodb, PEER_FLOOR_GOAL
over floor-gunicorn; over node on memory: information).
After each run's CPU rows, the latency under load (bench/peer_latency.py, issue 87) of refresh and userinfo
(those of them in `--rows`) at every side: the maximum rate in a closed loop, then an open loop at 80 % of it,
each request's latency from the time it was due; `--no-latency` skips it.
`--sides SIDE,...` starts only those sides (citylogin always; instead of --floor and --node-store), for a
row's quick look: its goals then show the ratios it measured.
run_bench.py runs it as one of its parts (bench_peer); alone it writes bench/results/peer.json.
Not a test: pytest never collects it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the bench package and the project's own packages

from bench.goals import PEER_GOALS, merge_runs, peer_rows, render_goals  # noqa: E402
from bench.loadgen import percentile  # noqa: E402
from bench.peer_latency import ROWS as LATENCY_ROWS  # noqa: E402
from bench.peer_latency import measure_latency, render_latency  # noqa: E402
from bench.peer_loop import Block, merged, run_block  # noqa: E402
from bench.peer_client import (AccountSignIn, Call, CookieSignIn, DeviceSignIn, OidcClient, Side,  # noqa: E402
                               SignIn, http_session)
from bench.peer_servers import (FLOOR_SERVERS, NODE_SIDES, NODE_STORES, Running, citylogin_server,  # noqa: E402
                                floor_server, node_server)
from bench.servers import METRICS_TOKEN  # noqa: E402
from bench.metrics_text import dynamodb_calls_from_text  # noqa: E402
from bench.report import machine_info  # noqa: E402
from bench.servers import LOCALHOST_ONLY  # noqa: E402
from citylogin.client.api import Client  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

ROWS = tuple(PEER_GOALS)  # refresh, code, flow, userinfo, introspection, discovery
NODES = tuple(NODE_SIDES.values())  # node (memory), node-dynamodb
SIDES = ("citylogin", *NODES)
FLOORS = tuple(f"floor-{server}" for server in FLOOR_SERVERS)  # bench/peer_floor.py, with --floor
QUICK = {"threads": 4, "rounds": 1, "block_s": 1.5, "codes_per_batch": 60, "code_batches": 2, "warmup_s": 0.5,
         "node_warmup_s": 4.0, "settle_s": 0.3, "count_n": 10, "latency_max_threads": 8, "latency_max_s": 2.0,
         "latency_threads": 16, "latency_s": 3.0, "latency_load": 0.8}
FULL = {"threads": 4, "rounds": 2, "block_s": 4.0, "codes_per_batch": 100, "code_batches": 3, "warmup_s": 1.0,
        "node_warmup_s": 6.0, "settle_s": 0.3, "count_n": 20, "latency_max_threads": 8, "latency_max_s": 4.0,
        "latency_threads": 16, "latency_s": 6.0, "latency_load": 0.8}
# A `code` block is `code_batches` batches, each of codes made just before it and then redeemed, the CPU
# counted over the redemptions alone: node-oidc-provider's memory store is an LRU of 1,000 entries (and
# as many stale ones), so a code made more than about 1,000 writes before its redemption is gone (a code
# costs it some 7 writes, its redemption 3); and the batches add up to more clock ticks of CPU (/proc
# counts in hundredths of a second, and node redeems 100 codes in about one tenth). node on DynamoDB keeps
# every code (no LRU), but runs the same batches: the same client code for both nodes.
# `node_warmup_s`: each row on each node before the first row's blocks (the Python sides: `warmup_s`). A
# fresh node-dynamodb's refreshes, back to back in 1.5-s blocks, went 102, 115, 121, 146, 181 ... 257,
# 263, 267 per CPU second, level after some 15-20 s, and a second fresh node on the same (now warm)
# DynamoDB Local alike: V8's compiling, not DynamoDB Local's (bench/README.md). With 1.5 s a row, the
# first refresh block measured node-dynamodb at 184 per CPU second, the second at 258.
# `count_n`: the requests of each row's untimed pass that counts DynamoDB calls.
COUNT_SETTLE_S = 0.5  # bench/dynamo_calls.py's: what a request writes after its answer, and /metrics, caught up
BLOCK_DEADLINE_S = 60
CONFIGURATION = ("node-oidc-provider has one confidential client with client_secret_basic, PKCE required (S256), "
                 "a refresh token for every code grant with openid, rotated on every use, an ID token on refresh, "
                 "RS256 ID tokens (RSA 2048) and opaque access tokens; citylogin's app is added with "
                 "`citylogin apps add --redirect-uri URI --require-pkce` (RS256 ID tokens, JWT access tokens)")
PASSWORD = "Peer-bench-" + os.urandom(8).hex()


def log(message: str) -> None:
    print(f"[peer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- each side's clients -------------------------------------------------------------------------


@dataclass
class Clients:
    """One side's clients, one per thread and row (each its own connection and, at citylogin, its own
    signed-in device: an app's new sign-in on a session replaces its grant there)."""
    running: Running
    refresh: list[OidcClient]
    code: list[list[OidcClient]]  # per thread, its people (_code_calls)
    flow: list[OidcClient]
    token: OidcClient  # signs in once per block for the userinfo and introspection rows' access token
    readers: list[OidcClient]  # the userinfo, introspection and discovery rows' threads
    grants: list[Call] = field(default_factory=list)  # the refresh row's calls, each rotating its own grant
    sign_in: Callable[[str], SignIn] | None = None  # a new person at this side, for a purpose (sign_in_for)

    def new_grants(self) -> None:
        """A fresh grant per refresh thread, at each refresh row: node-oidc-provider's memory store (an
        LRU cache) has forgotten those of an earlier run by then."""
        self.grants = [client.refresh_call(client.tokens()["refresh_token"]) for client in self.refresh]


def _citylogin_sign_in(side: Side, name: str) -> DeviceSignIn:
    """A new account whose device signs in as citylogin.client.api does (its session bound to the key)."""
    device = Client(side.base_url, timeout=30)
    device.http.trust_env = False
    device.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind="ecdsa-p256")
    device.login(PASSWORD, force=True)
    return DeviceSignIn(device)


def sign_in_for(side: Side, run: str) -> Callable[[str], SignIn]:
    """How `side` signs a new person in for a purpose (each purpose a new account at the side)."""
    if side.name == "citylogin":
        return lambda purpose: _citylogin_sign_in(side, f"p{run}{purpose}")
    if side.name in NODES:
        return lambda purpose: AccountSignIn(f"p{run}{purpose}")
    return lambda purpose: CookieSignIn(f"p{run}{purpose}")


def make_clients(running: Running, threads: int, run: str, *, people: int = 1) -> Clients:
    """`people`: how many people each thread's `code` row makes its codes with (see _code_calls)."""
    side, sign_in = running.side, sign_in_for(running.side, run)
    return Clients(running=running,
                   refresh=[OidcClient(side, sign_in(f"r{i}")) for i in range(threads)],
                   code=[[OidcClient(side, sign_in(f"c{i}-{k}")) for k in range(people)] for i in range(threads)],
                   flow=[OidcClient(side, sign_in(f"f{i}")) for i in range(threads)],
                   token=OidcClient(side, sign_in("t")),
                   readers=[OidcClient(side) for _ in range(threads)], sign_in=sign_in)


def _calls(row: str, clients: Clients, codes_per_thread: int) -> tuple[list[Call], int]:
    """The row's calls for one block on one side (what they need made now, before the block), and
    how many calls each thread may make."""
    unbounded = 1_000_000
    if row == "refresh":
        return clients.grants, unbounded
    if row == "code":
        return _code_calls(clients, codes_per_thread), codes_per_thread
    if row == "flow":
        return [client.flow_call() for client in clients.flow], unbounded
    if row == "discovery":
        return [client.discovery_call() for client in clients.readers], unbounded
    access_token = clients.token.tokens()["access_token"]
    if row == "userinfo":
        return [client.userinfo_call(access_token) for client in clients.readers], unbounded
    return [client.introspection_call(access_token) for client in clients.readers], unbounded


def _code_calls(clients: Clients, codes_per_thread: int) -> list[Call]:
    """Each thread's codes, made in turn by its people (one code each when the batch is as long as the thread
    has people) and redeemed by its first. As apps meet codes: a person's next sign-in to the app comes after
    the last code was redeemed. (At citylogin a session's new sign-in replaces its grant with the app, so a
    code made before another of the same session was redeemed names a grant that is gone by then, and costs
    its redemption a second write: one person making a whole batch measured that case instead.)"""
    return [_thread_code_call(people, codes_per_thread) for people in clients.code]


def _thread_code_call(people: list[OidcClient], count: int) -> Call:
    codes = [people[k % len(people)].codes(1)[0] for k in range(count)]
    return people[0].code_call(codes)


# --- the rows ----------------------------------------------------------------------------------


def _pooled(blocks: list[Block]) -> dict:
    done = sum(len(b.latencies) for b in blocks)
    seconds, cpu = sum(b.seconds for b in blocks), sum(b.server_cpu_s for b in blocks)
    latencies = sorted(latency for b in blocks for latency in b.latencies)
    return {"completed": done, "errors": sum(b.errors for b in blocks), "seconds": seconds,
            "server_cpu_seconds": cpu,
            "cpu_ms_per_request": 1000 * cpu / done if done else None,
            "per_server_cpu_second": done / cpu if cpu > 0 else None,
            "p50_ms": 1000 * percentile(latencies, 50) if latencies else None,
            "p95_ms": 1000 * percentile(latencies, 95) if latencies else None,
            "server_cores_used": cpu / seconds if seconds else None,
            "loadgen_cores_used": sum(b.loadgen_cpu_s for b in blocks) / seconds if seconds else None,
            "blocks_per_server_cpu_second": [round(len(b.latencies) / b.server_cpu_s, 1) if b.server_cpu_s > 0
                                             else None for b in blocks]}


def _block(row: str, clients: Clients, cfg: dict) -> Block:
    """One measured block of `row` on one side: its calls made, a pause, the closed loop (the `code`
    row: that, `code_batches` times)."""
    per_thread = cfg["codes_per_batch"] // cfg["threads"]
    batches = []
    for _ in range(cfg["code_batches"] if row == "code" else 1):
        calls, count = _calls(row, clients, per_thread)
        time.sleep(cfg["settle_s"])  # what the preparation left behind (writes after an answer) is done
        seconds = BLOCK_DEADLINE_S if row == "code" else cfg["block_s"]
        batches.append(run_block(calls, seconds=seconds, count=count, pid=clients.running.pid))
    return merged(batches)


def _over(a: dict, b: dict) -> float | None:
    """a's requests per server CPU second over b's."""
    ours, theirs = a["per_server_cpu_second"], b["per_server_cpu_second"]
    return ours / theirs if ours and theirs else None


def mirrored(count: int) -> str:
    """The blocks' order per round for `count` servers: A B B A, A B C C B A, ..."""
    letters = "ABCDEFGH"[:count]
    return letters + letters[::-1]


def warm_up(row: str, sides: dict[str, Clients], cfg: dict, seconds: float, node_seconds: float | None = None) -> None:
    """`row`'s calls on each side for `seconds` (the nodes: `node_seconds`, if given), a refresh row's
    grants made afresh, not measured; a `code` warm-up redeems batch after batch of codes."""
    for name, clients in sides.items():
        spent = node_seconds if name in NODES and node_seconds is not None else seconds
        began = time.monotonic()
        while True:
            if row == "refresh":
                clients.new_grants()
            calls, count = _calls(row, clients, cfg["codes_per_batch"] // cfg["threads"])
            left = spent - (time.monotonic() - began)
            run_block(calls, seconds=max(left, 0.1), count=count, pid=clients.running.pid)
            if row != "code" or time.monotonic() - began >= spent:
                break


def dynamodb_calls(running: Running) -> Counter | None:
    """The side's DynamoDB calls so far by operation, if it counts them: node-dynamodb's adapter (its
    bench-only route), citylogin's `citylogin_dynamodb_calls_total` of its requests (GET /metrics)."""
    name, base_url = running.side.name, running.side.base_url
    if name not in ("node-dynamodb", "citylogin"):
        return None
    with http_session() as http:
        if name == "node-dynamodb":
            answer = http.get(base_url + "/bench/dynamodb-calls", timeout=10)
            answer.raise_for_status()
            return Counter(answer.json())
        answer = http.get(base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
        answer.raise_for_status()
        return dynamodb_calls_from_text(answer.text)


def count_calls(row: str, clients: Clients, count: int) -> dict | None:
    """DynamoDB calls per request of `row` at one side (None if it does not count them): `count` of the
    row's requests, one after another, untimed, their calls read before and after."""
    if dynamodb_calls(clients.running) is None:
        return None
    if row == "code":
        call = _thread_code_call(clients.code[0], count)
    else:
        if row == "refresh":
            clients.new_grants()
        call = _calls(row, clients, count)[0][0]
    time.sleep(COUNT_SETTLE_S)
    before = dynamodb_calls(clients.running)
    done = sum(call() is not None for _ in range(count))
    time.sleep(COUNT_SETTLE_S)
    delta = dynamodb_calls(clients.running) - before  # type: ignore[operator]
    return {"n": count, "answered": done, "per_request": sum(delta.values()) / count,
            "by_operation": {op: calls / count for op, calls in sorted(delta.items())}}


def measure_row(row: str, sides: dict[str, Clients], cfg: dict) -> dict:
    """One row: a warm-up on each side, then blocks in mirrored order (A B C D E E D C B A) x rounds;
    pooled per side; citylogin's requests per server CPU second over each other side's (`citylogin_over`);
    `ratio`: over node on memory, `floor_ratios`: each floor's over node, `citylogin_over_floor`: over the
    floor under citylogin's own server (the names of issue 53's results); then each side's DynamoDB
    calls per request, where it counts them."""
    names = list(sides)
    warm_up(row, sides, cfg, cfg["warmup_s"])
    blocks: dict[str, list[Block]] = {name: [] for name in names}
    for letter in mirrored(len(names)) * cfg["rounds"]:
        name = names[ord(letter) - ord("A")]
        blocks[name].append(_block(row, sides[name], cfg))
    out: dict = {name: _pooled(blocks[name]) for name in names}
    out["citylogin_over"] = {name: _over(out["citylogin"], out[name]) for name in names if name != "citylogin"}
    out["ratio"] = out["citylogin_over"].get("node")
    floors = [name for name in names if name in FLOORS]
    if floors:
        if "node" in names:
            out["floor_ratios"] = {name: _over(out[name], out["node"]) for name in floors}
        out["citylogin_over_floor"] = out["citylogin_over"].get("floor-gunicorn")
    for name in names:
        counted = count_calls(row, sides[name], cfg.get("count_n", 10))
        if counted is not None:
            out[name]["dynamodb_calls"] = counted
    return out


def measure(sides: dict[str, Clients], cfg: dict, *, fresh: bool = True, rows_measured: tuple[str, ...] = ROWS,
            latency: bool = True) -> dict:
    """Each of `rows_measured` on `sides`; `fresh` servers (not yet measured) are warmed up on each of
    them first. Then, with `latency`, the latency under load of those of them that are latency rows
    (bench/peer_latency.py: refresh, userinfo) at every side."""
    rows = {}
    if fresh:
        log(f"warming every side up: each row {cfg['node_warmup_s']:g}s at each node, {cfg['warmup_s']:g}s at the "
            "others")
        for row in rows_measured:
            warm_up(row, sides, cfg, cfg["warmup_s"], cfg["node_warmup_s"])
    for row in rows_measured:
        log(f"{row}: {cfg['rounds']} x {len(sides)} servers' blocks, mirrored, {cfg['threads']} threads")
        rows[row] = measure_row(row, sides, cfg)
    about = next((sides[name].running.about for name in NODES if name in sides), {})
    method = {"node": about.get("node"), "oidc_provider": about.get("oidc-provider"),
              "node_sides": [name for name in NODES if name in sides],
              "aws_sdk": sides["node-dynamodb"].running.about.get("aws-sdk") if "node-dynamodb" in sides else None,
              "citylogin_server": sides["citylogin"].running.about.get("server"),
              "floors": {name: sides[name].running.about.get("server") for name in sides if name in FLOORS},
              "configuration": CONFIGURATION, "threads": cfg["threads"], "rounds": cfg["rounds"],
              "order": mirrored(len(sides)), "node_warmup_s": cfg["node_warmup_s"],
              "warmup_s": cfg["warmup_s"],
              "block_s": cfg["block_s"], "codes_per_batch": cfg["codes_per_batch"],
              "code_batches": cfg["code_batches"]}
    peer = {"method": method, "rows": rows}
    if latency and set(rows_measured) & set(LATENCY_ROWS):
        peer["latency"] = measure_latency(sides, cfg, rows_measured, log=log)
    return {"peer": peer}


def bench_peer(endpoint_url: str, work_dir: Path, cfg: dict, *, run: str = "1", floor: bool = False,
               node_stores: tuple[str, ...] = NODE_STORES) -> dict:
    """The servers started, the clients signed in, every row measured, the servers stopped: the part
    run_bench.py runs (on its DynamoDB Local)."""
    with ExitStack() as stack:
        sides = start_sides(stack, endpoint_url, work_dir, cfg, run=run, floor=floor, node_stores=node_stores)
        return measure(sides, cfg)


def start_sides(stack: ExitStack, endpoint_url: str, work_dir: Path, cfg: dict, *, run: str,
                floor: bool = False, node_stores: tuple[str, ...] = NODE_STORES,
                only: tuple[str, ...] | None = None) -> dict[str, Clients]:
    """citylogin, node-oidc-provider on each of `node_stores` (its DynamoDB table its own per run), and
    with `floor` the provider floor under each FLOOR_SERVERS server (bench/peer_floor.py): each side's
    clients, signed in. `only`: these sides alone (and citylogin), whatever `floor` and `node_stores` say."""
    work_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(only) if only is not None else (
        {NODE_SIDES[store] for store in node_stores} | ({*FLOORS} if floor else set()))
    log(f"starting citylogin (gunicorn -c deploy/gunicorn.conf.py) and {', '.join(sorted(wanted - {'citylogin'}))}")
    running = {"citylogin": stack.enter_context(citylogin_server(endpoint_url, work_dir, table_prefix=f"peer{run}_"))}
    for store in NODE_STORES:
        if NODE_SIDES[store] in wanted:
            running[NODE_SIDES[store]] = stack.enter_context(node_server(
                work_dir, store=store, endpoint_url=endpoint_url, table=f"peer{run}_node_oidc_provider"))
    for server in FLOOR_SERVERS:
        if f"floor-{server}" in wanted:
            running[f"floor-{server}"] = stack.enter_context(
                floor_server(endpoint_url, work_dir, server=server, table_prefix=f"peer{run}_{server}_"))
    node = next((running[name] for name in NODES if name in running), None)
    if node is not None:
        log(f"node-oidc-provider {node.about.get('oidc-provider')} on Node {node.about.get('node')}")
    people = max(1, cfg.get("codes_per_batch", 0) // cfg["threads"])
    log(f"signing in {cfg['threads'] * (3 + people) + 1} people at each of {len(running)} providers")
    return {name: make_clients(side, cfg["threads"], run, people=people) for name, side in running.items()}


# --- the table -----------------------------------------------------------------------------------


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _get_calls(side: dict) -> float | None:
    return (side.get("dynamodb_calls") or {}).get("per_request")


def render_peer(peer: dict) -> str:
    """Per row and side: CPU ms per request, requests per server CPU second, p50, errors, DynamoDB calls
    per request (where counted) and citylogin's requests per server CPU second over the side's."""
    rows = peer["rows"]
    names = [name for name in next(iter(rows.values()), {}) if name in SIDES + FLOORS]
    head = (f"{'row':14} {'side':15} {'CPU ms/req':>10} {'req/CPU s':>10} {'p50 ms':>8} {'errors':>6} "
            f"{'DDB calls':>9}  citylogin / side")
    lines = [head, "-" * len(head)]
    for row, at in rows.items():
        over = at.get("citylogin_over") or {"node": at.get("ratio")}
        for name in names:
            side = at[name]
            first = row if name == names[0] else ""
            calls = _get_calls(side)
            lines.append(f"{first:14} {name:15} {_fmt(side['cpu_ms_per_request'], '.2f'):>10} "
                         f"{_fmt(side['per_server_cpu_second'], '.0f'):>10} {_fmt(side['p50_ms'], '.2f'):>8} "
                         f"{side['errors']:>6} {_fmt(calls, '.2f'):>9}  "
                         f"{_fmt(over.get(name), '.2f') if name != 'citylogin' else ''}")
    method = peer["method"]
    node = (f"node-oidc-provider {method['oidc_provider']} on Node {method['node']}"
            + (f", AWS SDK {method['aws_sdk']} (node-dynamodb)" if method.get("aws_sdk") else "") + "; "
            if method.get("node_sides", ["node"]) else "")  # results before --sides name no node_sides: both ran
    lines.append(f"{node}citylogin under {method['citylogin_server']}; {method['rounds']} x {method['order']}, "
                 f"{method['threads']} threads")
    for name, server in (method.get("floors") or {}).items():
        lines.append(f"{name}: bench/peer_floor.py under {server}")
    if peer.get("latency"):
        lines += ["", render_latency(peer["latency"])]
    return "\n".join(lines)


def _names(allowed: tuple[str, ...]):
    """An argparse type: a comma-separated list of names, each one of `allowed`, in the order given."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'none'}: choose from {', '.join(allowed)}")
        return names
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of mirrored short blocks: 3-5 minutes")
    parser.add_argument("--runs", type=int, default=1, help="measure every row N times (servers started once)")
    parser.add_argument("--floor", action="store_true",
                        help="measure the provider floor (bench/peer_floor.py) beside them, under gunicorn and granian")
    parser.add_argument("--node-store", choices=(*NODE_STORES, "both"), default="both",
                        help="node-oidc-provider on its memory store (side node), on DynamoDB Local (node-dynamodb), "
                             "or both (the default)")
    parser.add_argument("--rows", type=_names(ROWS), default=ROWS,
                        help=f"measure only these rows, in this order (comma-separated: {','.join(ROWS)})")
    parser.add_argument("--sides", type=_names(SIDES + FLOORS),
                        help=f"start only these sides, citylogin always (comma-separated: {','.join(SIDES + FLOORS)}); "
                             "instead of --floor and --node-store")
    parser.add_argument("--no-latency", dest="latency", action="store_false",
                        help="skip the latency under load (after the CPU rows: refresh and userinfo, if in --rows)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "peer.json", help="JSON results")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    os.environ.update(LOCALHOST_ONLY)
    info, started, started_at = machine_info({}), time.monotonic(), datetime.now(timezone.utc).isoformat()
    info.pop("argon2_params", None)
    runs = []
    with tempfile.TemporaryDirectory(prefix="citylogin-peer-") as tmp, ExitStack() as stack:
        log("starting DynamoDB Local (in memory)")
        db = stack.enter_context(DynamoDBLocal())
        sides = start_sides(stack, db.endpoint_url, Path(tmp), cfg, run="1", floor=args.floor,
                            node_stores=NODE_STORES if args.node_store == "both" else (args.node_store,),
                            only=args.sides)
        for number in range(1, args.runs + 1):
            log(f"--- run {number} of {args.runs} ---")
            # a later run's servers are warm
            runs.append(measure(sides, cfg, fresh=number == 1, rows_measured=args.rows, latency=args.latency))
    info["loadavg_end"] = os.getloadavg()
    rows = merge_runs([peer_rows(run) for run in runs])
    text = "\n\n".join(f"run {i} of {len(runs)}\n" + render_peer(run["peer"]) for i, run in enumerate(runs, 1))
    text += "\n\n" + render_goals(rows)
    print(text)
    command = "bench/peer_bench.py" + (" --quick" if args.quick else "") + \
        (f" --runs {args.runs}" if args.runs != 1 else "") + (" --floor" if args.floor else "") + \
        (f" --node-store {args.node_store}" if args.node_store != "both" else "") + \
        (f" --rows {','.join(args.rows)}" if args.rows != ROWS else "") + \
        (f" --sides {','.join(args.sides)}" if args.sides is not None else "") + \
        ("" if args.latency else " --no-latency")
    report = {"source": "bench/peer_bench.py", "command": command, "started_at": started_at,
              "mode": "quick" if args.quick else "full", "runs": args.runs, "config": cfg, "machine": info,
              "results": {"runs": runs}, "goals": rows, "wall_seconds": time.monotonic() - started, "table": text}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} ({report['wall_seconds']:.0f}s); publish with "
        f"bench/publish.py --from {args.out} --name peer --docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
