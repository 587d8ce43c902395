"""The server behind nginx, decided by measurement (issue 87): citylogin behind the shipped nginx
(deploy/nginx/citylogin.conf.template, TLS) under each candidate of bench/nginx_front.py, in server CPU per
request, and the protections its tests hold (bench/server_protections.py) checked at nginx's address.

    PYTHONPATH=$PWD .venv/bin/python bench/server_choice.py [--quick] [--rows ROW,...] [--no-protections] [--out FILE]

Each candidate runs on DynamoDB Local (in memory, its CPU not counted) on tables of its own, behind an nginx
of its own: A gunicorn (citylogin's worker, as deploy/ runs it), B granian WSGI, C granian with the event
streams and held polls routed to citylogin's worker. The peer bench's client (bench/peer_client.py) drives
them through nginx over TLS: closed loop, `threads` threads each on its own keep-alive connection, blocks
in mirrored order (A B C C B A) x `rounds`. A block's CPU is read from /proc around it for the app servers'
process trees (citylogin) and for nginx's (master and worker) apart. Rows: userinfo, refresh (each thread
rotating its own grant), introspection, code (codes made before each batch, the redemptions measured).

The decision (the issue's rule): a candidate wins when its citylogin CPU per request is more than 15% below
gunicorn's on BOTH userinfo and refresh and it kept every protection. Writes bench/results/server_choice.json.
Not a test: pytest never collects it."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the bench package and the project's own packages

from bench.loadgen import percentile  # noqa: E402
from bench.nginx_front import CANDIDATES, GRANIAN_THREADS, Deployment, Tls, deployed, shown  # noqa: E402
from bench.peer_bench import Clients, _calls, mirrored  # noqa: E402
from bench.peer_loop import Block, closed_loop, merged  # noqa: E402
from bench.peer_client import DISCOVERY, Call, DeviceSignIn, OidcClient, Side  # noqa: E402
from bench.peer_servers import Running  # noqa: E402
from bench.report import machine_info  # noqa: E402
from bench.server_protections import PROTECTIONS, run_protections, signed_in  # noqa: E402
from bench.servers import LOCALHOST_ONLY  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

ROWS = ("userinfo", "refresh", "introspection", "code")
DECIDING_ROWS = ("userinfo", "refresh")
WIN = 0.15  # less CPU per request than gunicorn's by more than this, on every deciding row
BASELINE = "gunicorn"
QUICK = {"threads": 4, "rounds": 1, "block_s": 2.0, "codes_per_batch": 60, "code_batches": 2, "warmup_s": 1.0,
         "settle_s": 0.3}
FULL = {"threads": 4, "rounds": 2, "block_s": 4.0, "codes_per_batch": 100, "code_batches": 3, "warmup_s": 2.0,
        "settle_s": 0.3}
PASSWORD = "Server-choice-" + os.urandom(8).hex()


def log(message: str) -> None:
    print(f"[server-choice {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the closed loop, through nginx -------------------------------------------------------------


def run_block(calls: list[Call], *, seconds: float, count: int, deployment: Deployment) -> Block:
    """peer_bench.run_block's closed loop; the CPU of the app servers' trees (server_cpu_s) and of nginx's
    (kept in loadgen_cpu_s's place: this tool's own CPU is not reported)."""
    roots = {**{f"app-{name}": pid for name, pid in deployment.servers.items()}, "nginx": deployment.nginx_pid}
    block, spent = closed_loop(calls, seconds=seconds, count=count, roots=roots)
    block.server_cpu_s = sum(spent[name] for name in roots if name.startswith("app-"))
    block.loadgen_cpu_s = spent["nginx"]
    return block


def clients_of(deployment: Deployment, threads: int, people: int) -> Clients:
    """The peer bench's clients of one candidate, each on its own TLS keep-alive session through nginx;
    citylogin's devices signed in through nginx too."""
    http = deployment.https()
    meta = http.get(deployment.url + DISCOVERY, timeout=30).json()
    endpoints = {kind: meta[f"{kind}_endpoint"] for kind in ("authorization", "token", "userinfo", "introspection")}
    side = Side(name=deployment.name, base_url=deployment.url, client_id=deployment.app["client_id"],
                client_secret=deployment.app["client_secret"],
                endpoints=endpoints | {"discovery": deployment.url + DISCOVERY})

    def client(purpose: str | None) -> OidcClient:
        made = OidcClient(side, None if purpose is None else DeviceSignIn(
            signed_in(deployment, f"sc{deployment.name}{purpose}{os.urandom(3).hex()}", PASSWORD)))
        made.http.verify = str(deployment.server_ca)
        return made
    return Clients(running=Running(side=side, pid=next(iter(deployment.servers.values()))),
                   refresh=[client(f"r{i}") for i in range(threads)],
                   code=[[client(f"c{i}-{k}") for k in range(people)] for i in range(threads)],
                   flow=[], token=client("t"), readers=[client(None) for _ in range(threads)])


def measured(row: str, clients: Clients, deployment: Deployment, cfg: dict, *, seconds: float | None = None) -> Block:
    """One block of `row` (a `code` block: `code_batches` batches of codes made just before)."""
    per_thread = cfg["codes_per_batch"] // cfg["threads"]
    batches = []
    for _ in range(cfg["code_batches"] if row == "code" else 1):
        calls, count = _calls(row, clients, per_thread)
        time.sleep(cfg["settle_s"])
        batches.append(run_block(calls, seconds=60.0 if row == "code" else seconds or cfg["block_s"], count=count,
                                 deployment=deployment))
    return merged(batches)


def pooled(blocks: list[Block]) -> dict:
    done = sum(len(b.latencies) for b in blocks)
    cpu, nginx = sum(b.server_cpu_s for b in blocks), sum(b.loadgen_cpu_s for b in blocks)
    latencies = sorted(latency for b in blocks for latency in b.latencies)
    return {"completed": done, "errors": sum(b.errors for b in blocks), "seconds": sum(b.seconds for b in blocks),
            "citylogin_cpu_ms": 1000 * cpu / done if done else None,
            "nginx_cpu_ms": 1000 * nginx / done if done else None,
            "p50_ms": 1000 * percentile(latencies, 50) if latencies else None,
            "blocks_citylogin_cpu_ms": [round(1000 * b.server_cpu_s / len(b.latencies), 3) if b.latencies else None
                                        for b in blocks]}


def measure_rows(deployments: dict[str, Deployment], clients: dict[str, Clients], cfg: dict,
                 rows: tuple[str, ...]) -> dict:
    names = list(deployments)
    out = {}
    for row in rows:
        log(f"{row}: warm-up, then {cfg['rounds']} x {mirrored(len(names))}, {cfg['threads']} threads")
        for name in names:
            if row == "refresh":
                clients[name].new_grants()
            measured(row, clients[name], deployments[name], cfg, seconds=cfg["warmup_s"])
        blocks: dict[str, list[Block]] = {name: [] for name in names}
        for letter in mirrored(len(names)) * cfg["rounds"]:
            name = names[ord(letter) - ord("A")]
            blocks[name].append(measured(row, clients[name], deployments[name], cfg))
        out[row] = {name: pooled(blocks[name]) for name in names}
    return out


# --- the decision and the tables (pure) ----------------------------------------------------------


def ratios(rows: dict, baseline: str = BASELINE) -> dict[str, dict[str, float | None]]:
    """Per row, each candidate's citylogin CPU per request over the baseline's."""
    out: dict[str, dict[str, float | None]] = {}
    for row, at in rows.items():
        base = at[baseline]["citylogin_cpu_ms"]
        out[row] = {name: (side["citylogin_cpu_ms"] / base if base and side["citylogin_cpu_ms"] is not None
                           else None) for name, side in at.items()}
    return out


def decide(rows: dict, protections: dict[str, dict[str, dict]] | None, baseline: str = BASELINE) -> dict:
    """The issue's rule, per candidate other than the baseline: it wins with more than WIN less citylogin CPU
    per request on every DECIDING_ROWS row AND every protection kept (unknown protections: no win). The
    winner: the one of those with the least CPU on the deciding rows, or None."""
    by_row = ratios(rows, baseline)
    verdicts = {}
    for name in next(iter(rows.values()), None) or protections or {}:
        if name == baseline:
            continue
        cheaper = all((by_row.get(row, {}).get(name) or 1.0) < 1 - WIN for row in DECIDING_ROWS)
        checks = (protections or {}).get(name)
        lost = sorted(p for p, c in checks.items() if not c["passed"]) if checks is not None else None
        verdicts[name] = {"cpu_win": cheaper, "protections_lost": lost,
                          "wins": cheaper and lost is not None and not lost}
    winners = sorted((name for name, v in verdicts.items() if v["wins"]),
                     key=lambda name: sum(by_row[row][name] or 1.0 for row in DECIDING_ROWS))
    rule = (f"less than {1 - WIN:.2f} x {baseline}'s citylogin CPU per request on {' and '.join(DECIDING_ROWS)}, "
            "and every protection kept")
    return {"rule": rule, "candidates": verdicts, "winner": winners[0] if winners else None}


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_rows(rows: dict, baseline: str = BASELINE) -> str:
    by_row = ratios(rows, baseline)
    head = (f"| row | candidate | citylogin CPU ms/req | nginx CPU ms/req | p50 ms | errors | "
            f"citylogin CPU ÷ {baseline}'s |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row, at in rows.items():
        for name, side in at.items():
            lines.append(f"| {row} | {name} | {_fmt(side['citylogin_cpu_ms'], '.3f')} | "
                         f"{_fmt(side['nginx_cpu_ms'], '.3f')} | {_fmt(side['p50_ms'], '.2f')} | {side['errors']} | "
                         f"{_fmt(by_row[row][name], '.2f')} |")
    return "\n".join(lines)


def render_threads(threads: dict[str, dict]) -> str:
    lines = ["| candidate | server threads, idle | streams answered | server threads with them open |",
             "|---|---|---|---|"]
    for name, at in threads.items():
        lines.append(f"| {name} | {_by_server(at['idle'])} | {at['streams_open']} | {_by_server(at['with_streams'])} |")
    return "\n".join(lines)


def _by_server(counts: dict[str, int]) -> str:
    return " + ".join(f"{count} ({server})" for server, count in counts.items()) if len(counts) > 1 else \
        str(sum(counts.values()))


def render_protections(protections: dict[str, dict[str, dict]]) -> str:
    names = list(protections)
    lines = ["| protection | " + " | ".join(names) + " | the test that holds it for citylogin's worker |",
             "|---|" + "---|" * len(names) + "---|"]
    for protection, (_, test) in PROTECTIONS.items():
        cells = [("kept" if protections[n][protection]["passed"] else "**lost**") + ": "
                 + protections[n][protection]["detail"] if protection in protections[n] else "-" for n in names]
        lines.append(f"| {protection} | " + " | ".join(cells) + f" | `{test}` |")
    return "\n".join(lines)


def render_decision(decision: dict) -> str:
    lines = [f"rule: {decision['rule']}"]
    for name, v in decision["candidates"].items():
        lost = v["protections_lost"]
        lines.append(f"{name}: CPU {'wins' if v['cpu_win'] else 'does not win'}; protections "
                     + ("not checked" if lost is None else ("all kept" if not lost else "lost: " + ", ".join(lost)))
                     + f" -> {'WINS' if v['wins'] else 'no'}")
    lines.append(f"winner: {decision['winner'] or 'none (gunicorn with citylogin worker stays)'}")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2-s blocks")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {','.join(ROWS)}")
    parser.add_argument("--candidates", default=",".join(CANDIDATES),
                        help=f"comma-separated, of {','.join(CANDIDATES)}")
    parser.add_argument("--no-protections", action="store_true", help="measure the CPU only")
    parser.add_argument("--protections-only", action="store_true", help="check the protections only (no rows)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "server_choice.json")
    args = parser.parse_args(argv)
    rows = () if args.protections_only else tuple(r for r in args.rows.split(",") if r in ROWS)
    candidates = tuple(c for c in args.candidates.split(",") if c in CANDIDATES)
    if BASELINE not in candidates:
        parser.error(f"{BASELINE} is the baseline: keep it among --candidates")
    cfg = QUICK if args.quick else FULL
    os.environ.update(LOCALHOST_ONLY)
    info, started, started_at = machine_info({}), time.monotonic(), datetime.now(timezone.utc).isoformat()
    info.pop("argon2_params", None)
    info["loadavg_start"] = os.getloadavg()
    protections: dict[str, dict[str, dict]] | None = None if args.no_protections else {}
    threads: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="citylogin-server-choice-") as tmp, ExitStack() as stack:
        log("starting DynamoDB Local (in memory)")
        db = stack.enter_context(DynamoDBLocal())
        tls = Tls.make(Path(tmp, "tls"))
        deployments = {}
        for name in candidates:
            log(f"starting {name} behind nginx")
            deployments[name] = stack.enter_context(deployed(name, db.endpoint_url, Path(tmp, name), tls))
        people = max(1, cfg["codes_per_batch"] // cfg["threads"]) if "code" in rows else 1
        if rows:
            log(f"signing in {cfg['threads'] * (1 + people) + 1} people at each candidate")
        clients = {name: clients_of(d, cfg["threads"], people) for name, d in deployments.items()} if rows else {}
        results = measure_rows(deployments, clients, cfg, rows)
        info["loadavg_after_rows"] = os.getloadavg()
        if protections is not None:
            for name, deployment in deployments.items():
                log(f"protections at {name} (about 80 s)")
                device = signed_in(deployment, f"scp{name}{os.urandom(3).hex()}", PASSWORD)
                checks, threads[name] = run_protections(deployment, device)
                protections[name] = {p: c.as_dict() for p, c in checks.items()}
    info["loadavg_end"] = os.getloadavg()
    decision = decide(results, protections)
    text = render_rows(results) if results else "(no rows measured)"
    if protections:
        text += "\n\n" + render_threads(threads) + "\n\n" + render_protections(protections)
    text += "\n\n" + render_decision(decision)
    text += (f"\n\nA {shown('gunicorn')}; B {shown('granian')} ({GRANIAN_THREADS} blocking threads a worker); C B for "
             f"all but /session/events and /ssf/poll, which go to A's server; {cfg['rounds']} x "
             f"{mirrored(len(candidates))}, {cfg['threads']} threads, {cfg['block_s']:g}-s blocks; load average "
             f"{', '.join(f'{x:.1f}' for x in info['loadavg_start'])} at the start, "
             f"{', '.join(f'{x:.1f}' for x in info['loadavg_end'])} at the end")
    print(text)
    command = " ".join(["bench/server_choice.py", *(argv if argv is not None else sys.argv[1:])])
    report = {"source": "bench/server_choice.py", "command": command,
              "started_at": started_at, "mode": "quick" if args.quick else "full", "config": cfg, "machine": info,
              "servers": {"gunicorn": shown("gunicorn"), "granian": shown("granian"),
                          "split": "granian, and gunicorn for /session/events and /ssf/poll"},
              "rows": results, "ratios": ratios(results), "threads": threads, "protections": protections,
              "decision": decision, "wall_seconds": time.monotonic() - started, "table": text}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} ({report['wall_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
