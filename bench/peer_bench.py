"""The peer bench (issue 53): citylogin's OpenID Provider beside node-oidc-provider, in server CPU per request.

    .venv/bin/python bench/peer_bench.py [--quick] [--runs N] [--out FILE]

citylogin runs as deploy/ runs it (gunicorn -c deploy/gunicorn.conf.py, citylogin's worker) on DynamoDB
Local in memory, whose own CPU is not counted; node-oidc-provider 9 (bench/peer/server.mjs) runs beside it
in one Node 22 process with its memory store. The same client code (bench/peer_client.py) drives both.
Each row is measured in blocks alternating between the two servers (ABBA, `rounds` times), closed loop
with `threads` threads, each with its own keep-alive connection; a block's CPU is the server's process
tree's (bench/cpu.py: gunicorn's master and workers, node's process) from just before to just after it.
Rows: refresh (each thread rotating its own grant), code (redeeming codes made just before the block, each
thread's by its people in turn),
flow (authorize, the person's part, token, userinfo: CPU per whole flow), userinfo, introspection,
discovery. Per row and side: CPU ms per request, requests per server CPU second, p50; and the ratio
citylogin / node in requests per server CPU second, against the goals of bench/goals.py (PEER_GOALS).
run_bench.py runs it as one of its parts (bench_peer); alone it writes bench/results/peer.json.
Not a test: pytest never collects it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the bench package and the project's own packages

from bench.cpu import tree_cpu_seconds  # noqa: E402
from bench.goals import PEER_GOALS, merge_runs, peer_rows, render_goals  # noqa: E402
from bench.loadgen import percentile  # noqa: E402
from bench.peer_client import AccountSignIn, Call, CookieSignIn, DeviceSignIn, OidcClient, Side, SignIn  # noqa: E402
from bench.peer_servers import FLOOR_SERVERS, Running, citylogin_server, floor_server, node_server  # noqa: E402
from bench.report import machine_info  # noqa: E402
from bench.servers import LOCALHOST_ONLY  # noqa: E402
from citylogin.client import Client  # noqa: E402
from database.dynamodb_local import DynamoDBLocal  # noqa: E402

ROWS = tuple(PEER_GOALS)  # refresh, code, flow, userinfo, introspection, discovery
SIDES = ("citylogin", "node")
FLOORS = tuple(f"floor-{server}" for server in FLOOR_SERVERS)  # bench/peer_floor.py, with --floor
MIRRORED = {2: "ABBA", 4: "ABCDDCBA"}  # the blocks' order per round, by the number of servers
QUICK = {"threads": 4, "rounds": 1, "block_s": 1.5, "codes_per_batch": 60, "code_batches": 2, "warmup_s": 0.5,
         "settle_s": 0.3}
FULL = {"threads": 4, "rounds": 2, "block_s": 4.0, "codes_per_batch": 100, "code_batches": 3, "warmup_s": 1.0,
        "settle_s": 0.3}
# A `code` block is `code_batches` batches, each of codes made just before it and then redeemed, the CPU
# counted over the redemptions alone: node-oidc-provider's memory store is an LRU of 1,000 entries (and
# as many stale ones), so a code made more than about 1,000 writes before its redemption is gone (a code
# costs it some 7 writes, its redemption 3); and the batches add up to more clock ticks of CPU (/proc
# counts in hundredths of a second, and node redeems 100 codes in about one tenth).
BLOCK_DEADLINE_S = 60
CONFIGURATION = ("node-oidc-provider has one confidential client with client_secret_basic, PKCE required (S256), "
                 "a refresh token for every code grant with openid, rotated on every use, an ID token on refresh, "
                 "RS256 ID tokens (RSA 2048) and opaque access tokens; citylogin's app is added with "
                 "`citylogin apps add --redirect-uri URI --require-pkce` (RS256 ID tokens, JWT access tokens)")
PASSWORD = "Peer-bench-" + os.urandom(8).hex()


def log(message: str) -> None:
    print(f"[peer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the closed loop ---------------------------------------------------------------------------


@dataclass
class Block:
    """One block of one row on one server."""
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0


def _worker(call: Call, start: threading.Barrier, stop_at: list[float], count: int, block: Block,
            lock: threading.Lock) -> None:
    latencies, errors = [], 0
    start.wait()
    for _ in range(count):
        if time.monotonic() >= stop_at[0]:
            break
        try:
            took = call()
        except Exception:  # noqa: BLE001 - a dropped connection or an unexpected answer is an error of the row
            took = None
        if took is None:
            errors += 1
        else:
            latencies.append(took)
    with lock:
        block.latencies += latencies
        block.errors += errors


def _merged(batches: list[Block]) -> Block:
    return Block(latencies=[latency for b in batches for latency in b.latencies], errors=sum(b.errors for b in batches),
                 seconds=sum(b.seconds for b in batches), server_cpu_s=sum(b.server_cpu_s for b in batches),
                 loadgen_cpu_s=sum(b.loadgen_cpu_s for b in batches))


def run_block(calls: list[Call], *, seconds: float, count: int, pid: int) -> Block:
    """One thread per call, each calling again as soon as its last call returned, until `seconds` have
    passed or it made `count` calls; the server's CPU (the process tree of `pid`) around it all."""
    block, lock, stop_at = Block(), threading.Lock(), [0.0]
    start = threading.Barrier(len(calls) + 1)
    pool = [threading.Thread(target=_worker, args=(call, start, stop_at, count, block, lock), daemon=True)
            for call in calls]
    for thread in pool:
        thread.start()
    before = tree_cpu_seconds({"server": pid})
    began = time.monotonic()
    stop_at[0] = began + seconds
    start.wait(timeout=30)
    for thread in pool:
        thread.join(timeout=seconds + 60)
    block.seconds = time.monotonic() - began
    after = tree_cpu_seconds({"server": pid})
    block.server_cpu_s = after["server"] - before["server"]
    block.loadgen_cpu_s = after["loadgen"] - before["loadgen"]
    return block


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

    def new_grants(self) -> None:
        """A fresh grant per refresh thread, at each refresh row: node-oidc-provider's memory store (an
        LRU cache) has forgotten those of an earlier run by then."""
        self.grants = [client.refresh_call(client.tokens()["refresh_token"]) for client in self.refresh]


def _citylogin_sign_in(side: Side, name: str) -> DeviceSignIn:
    """A new account whose device signs in as citylogin.client does (its session bound to the key)."""
    device = Client(side.base_url, timeout=30)
    device.http.trust_env = False
    device.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind="ecdsa-p256")
    device.login(PASSWORD, force=True)
    return DeviceSignIn(device)


def make_clients(running: Running, threads: int, run: str, *, people: int = 1) -> Clients:
    """`people`: how many people each thread's `code` row makes its codes with (see _code_calls)."""
    side = running.side
    if side.name == "citylogin":
        def sign_in(purpose: str) -> SignIn:
            return _citylogin_sign_in(side, f"p{run}{purpose}")
    elif side.name == "node":
        def sign_in(purpose: str) -> SignIn:
            return AccountSignIn(f"p{run}{purpose}")
    else:
        def sign_in(purpose: str) -> SignIn:
            return CookieSignIn(f"p{run}{purpose}")
    return Clients(running=running,
                   refresh=[OidcClient(side, sign_in(f"r{i}")) for i in range(threads)],
                   code=[[OidcClient(side, sign_in(f"c{i}-{k}")) for k in range(people)] for i in range(threads)],
                   flow=[OidcClient(side, sign_in(f"f{i}")) for i in range(threads)],
                   token=OidcClient(side, sign_in("t")),
                   readers=[OidcClient(side) for _ in range(threads)])


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
    calls = []
    for people in clients.code:
        codes = [people[k % len(people)].codes(1)[0] for k in range(codes_per_thread)]
        calls.append(people[0].code_call(codes))
    return calls


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
    return _merged(batches)


def _over(a: dict, b: dict) -> float | None:
    """a's requests per server CPU second over b's."""
    ours, theirs = a["per_server_cpu_second"], b["per_server_cpu_second"]
    return ours / theirs if ours and theirs else None


def measure_row(row: str, sides: dict[str, Clients], cfg: dict) -> dict:
    """One row: a warm-up on each side, then blocks in mirrored order (A B B A; with the floors,
    A B C D D C B A) x rounds; pooled per side; the ratio citylogin / node, and with the floors each
    floor's over node and citylogin's over the floor under the same server."""
    names = list(sides)
    for name in names:
        if row == "refresh":
            sides[name].new_grants()
        calls, count = _calls(row, sides[name], cfg["codes_per_batch"] // cfg["threads"])
        run_block(calls, seconds=cfg["warmup_s"], count=count, pid=sides[name].running.pid)
    blocks: dict[str, list[Block]] = {name: [] for name in names}
    for name in (names + names[::-1]) * cfg["rounds"]:
        blocks[name].append(_block(row, sides[name], cfg))
    out: dict = {name: _pooled(blocks[name]) for name in names}
    out["ratio"] = _over(out["citylogin"], out["node"])
    floors = [name for name in names if name in FLOORS]
    if floors:
        out["floor_ratios"] = {name: _over(out[name], out["node"]) for name in floors}
        out["citylogin_over_floor"] = _over(out["citylogin"], out["floor-gunicorn"])
    return out


def measure(sides: dict[str, Clients], cfg: dict) -> dict:
    rows = {}
    for row in ROWS:
        log(f"{row}: {cfg['rounds']} x {len(sides)} servers' blocks, mirrored, {cfg['threads']} threads")
        rows[row] = measure_row(row, sides, cfg)
    about = sides["node"].running.about
    method = {"node": about.get("node"), "oidc_provider": about.get("oidc-provider"),
              "citylogin_server": sides["citylogin"].running.about.get("server"),
              "floors": {name: sides[name].running.about.get("server") for name in sides if name in FLOORS},
              "configuration": CONFIGURATION, "threads": cfg["threads"], "rounds": cfg["rounds"],
              "order": MIRRORED[len(sides)],
              "block_s": cfg["block_s"], "codes_per_batch": cfg["codes_per_batch"],
              "code_batches": cfg["code_batches"]}
    return {"peer": {"method": method, "rows": rows}}


def bench_peer(endpoint_url: str, work_dir: Path, cfg: dict, *, run: str = "1", floor: bool = False) -> dict:
    """The servers started, the clients signed in, every row measured, the servers stopped: the part
    run_bench.py runs (on its DynamoDB Local)."""
    with ExitStack() as stack:
        sides = start_sides(stack, endpoint_url, work_dir, cfg, run=run, floor=floor)
        return measure(sides, cfg)


def start_sides(stack: ExitStack, endpoint_url: str, work_dir: Path, cfg: dict, *, run: str,
                floor: bool = False) -> dict[str, Clients]:
    """citylogin and node-oidc-provider, and with `floor` the provider floor under each FLOOR_SERVERS
    server (bench/peer_floor.py): each side's clients, signed in."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log("starting citylogin (gunicorn -c deploy/gunicorn.conf.py) and node-oidc-provider"
        + (" and the provider floor" if floor else ""))
    running = {"citylogin": stack.enter_context(citylogin_server(endpoint_url, work_dir, table_prefix=f"peer{run}_")),
               "node": stack.enter_context(node_server(work_dir))}
    if floor:
        for server in FLOOR_SERVERS:
            running[f"floor-{server}"] = stack.enter_context(
                floor_server(endpoint_url, work_dir, server=server, table_prefix=f"peer{run}_{server}_"))
    node = running["node"]
    log(f"node-oidc-provider {node.about.get('oidc-provider')} on Node {node.about.get('node')}; signing in")
    people = max(1, cfg.get("codes_per_batch", 0) // cfg["threads"])
    log(f"signing in {cfg['threads'] * (3 + people) + 1} people at each of {len(running)} providers")
    return {name: make_clients(side, cfg["threads"], run, people=people) for name, side in running.items()}


# --- the table -----------------------------------------------------------------------------------


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_peer(peer: dict) -> str:
    """Per row and side: CPU ms per request, requests per server CPU second, p50 and errors; the ratio
    citylogin / node; with the floors, each floor's over node and citylogin's over the gunicorn floor."""
    rows = peer["rows"]
    names = [name for name in next(iter(rows.values()), {}) if name in SIDES + FLOORS]
    head = f"{'row':14} {'side':15} {'CPU ms/req':>10} {'req/CPU s':>10} {'p50 ms':>8} {'errors':>6}  over node"
    lines = [head, "-" * len(head)]
    for row, at in rows.items():
        over = {"citylogin": at["ratio"], **at.get("floor_ratios", {})}
        for name in names:
            side = at[name]
            first = row if name == names[0] else ""
            lines.append(f"{first:14} {name:15} {_fmt(side['cpu_ms_per_request'], '.2f'):>10} "
                         f"{_fmt(side['per_server_cpu_second'], '.0f'):>10} {_fmt(side['p50_ms'], '.2f'):>8} "
                         f"{side['errors']:>6}  {_fmt(over.get(name), '.2f') if name != 'node' else ''}")
        if at.get("citylogin_over_floor") is not None:
            lines.append(f"{'':14} citylogin / floor-gunicorn: {at['citylogin_over_floor']:.2f}")
    method = peer["method"]
    lines.append(f"node-oidc-provider {method['oidc_provider']} on Node {method['node']}; citylogin under "
                 f"{method['citylogin_server']}; {method['rounds']} x mirrored blocks, {method['threads']} threads")
    for name, server in (method.get("floors") or {}).items():
        lines.append(f"{name}: bench/peer_floor.py under {server}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one ABBA, short blocks: a minute or two")
    parser.add_argument("--runs", type=int, default=1, help="measure every row N times (servers started once)")
    parser.add_argument("--floor", action="store_true",
                        help="measure the provider floor (bench/peer_floor.py) beside them, under gunicorn and granian")
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
        sides = start_sides(stack, db.endpoint_url, Path(tmp), cfg, run="1", floor=args.floor)
        for number in range(1, args.runs + 1):
            log(f"--- run {number} of {args.runs} ---")
            runs.append(measure(sides, cfg))
    info["loadavg_end"] = os.getloadavg()
    rows = merge_runs([peer_rows(run) for run in runs])
    text = "\n\n".join(f"run {i} of {len(runs)}\n" + render_peer(run["peer"]) for i, run in enumerate(runs, 1))
    text += "\n\n" + render_goals(rows)
    print(text)
    command = "bench/peer_bench.py" + (" --quick" if args.quick else "") + \
        (f" --runs {args.runs}" if args.runs != 1 else "") + (" --floor" if args.floor else "")
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
