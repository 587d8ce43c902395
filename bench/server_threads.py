"""Where a peer row's server CPU goes, thread by thread: citylogin as deploy/ runs it (gunicorn, citylogin's
worker, 2 workers x 64 threads) beside the provider floor under the same server (and, with --old DIR,
citylogin from another checkout), the peer bench's clients (bench/peer_client.py) in its closed loop, 4
threads. Each block's CPU is read per thread (/proc/PID/task/TID/stat) of every process of each server's
tree, before and after; the threads are named at the end by `py-spy dump` (Python's thread names).
Blocks alternate between the servers (A B C C B A ...), so that they compare in the same minutes.

    .venv/bin/python bench/server_threads.py --row flow --rounds 3 [--old ../citylogin-before]

Per server: CPU ms per request, and its share by thread kind (the arbiter, each worker's event loop, the
request threads, and every other named thread: the background pool, the metrics flush, the stream pump ...).
Rows: the peer bench's flow, userinfo, introspection, discovery and refresh, and code (issue 87): each block
3 batches of 15 codes a thread, made by as many people in turn just before it, 0.3 s apart from it.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import _TICKS, tree_pids  # noqa: E402
from bench.peer_bench import QUICK, Clients, _calls, make_clients, run_block, warm_up  # noqa: E402
from bench.peer_servers import citylogin_server, floor_server  # noqa: E402
from bench.servers import LOCALHOST_ONLY, VENV_BIN  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402

_THREAD = re.compile(r'^Thread (?:0x[0-9A-Fa-f]+|\d+) \((?:[^)]*)\): "([^"]*)"')
_TID = re.compile(r"^Thread (\d+) ")
_CODES_PER_THREAD = 15  # the code row: each thread's batch, made by as many people in turn (as the peer bench's)
_CODE_BATCHES = 3


def thread_ticks(root: int) -> dict[tuple[int, int], int]:
    """(pid, tid) -> utime + stime in clock ticks, for every thread of the process tree of `root`."""
    out = {}
    for pid in tree_pids(root):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = raw.rsplit(")", 1)[1].split()
            out[pid, int(tid)] = int(fields[11]) + int(fields[12])
    return out


def thread_names(root: int) -> dict[tuple[int, int], str]:
    """(pid, tid) -> Python's name of the thread (py-spy dump --native ids), for each Python process of the tree."""
    names = {}
    for pid in tree_pids(root):
        done = subprocess.run([str(VENV_BIN / "py-spy"), "dump", "--pid", str(pid)], capture_output=True, text=True,
                              timeout=60)
        for line in done.stdout.splitlines():
            name, tid = _THREAD.match(line), _TID.match(line)
            if name and tid:
                names[pid, int(tid.group(1))] = name.group(1)
    return names


def kind(pid: int, root: int, name: str | None) -> str:
    if pid == root:
        return "arbiter"
    if name is None:
        return "worker: unnamed (native)"
    if name == "MainThread":
        return "worker: event loop (MainThread)"
    if name.startswith("ThreadPoolExecutor-0_"):  # gunicorn's request pool (the first executor made)
        return "worker: request threads"
    return "worker: " + re.sub(r"[-_]\d+$", "", name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", default="flow",
                        choices=("flow", "userinfo", "introspection", "discovery", "refresh", "code"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="each block's length")
    parser.add_argument("--old", type=Path, help="another checkout of citylogin, measured as citylogin-old")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--threads", type=int, default=QUICK["threads"], help="client threads (connections)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="then one more block of each server under py-spy (its workers): the top N functions")
    parser.add_argument("--within", default="", help="--profile: only the samples whose stack has this text")
    args = parser.parse_args(argv)
    os.environ.update(LOCALHOST_ONLY)
    cfg = {**QUICK, "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="citylogin-threads-") as tmp, ExitStack() as stack:
        db = stack.enter_context(DynamoDBLocal())
        running = {"citylogin": stack.enter_context(citylogin_server(db.endpoint_url, Path(tmp, "new"),
                                                                     table_prefix="new_"))}
        if args.old:
            running["citylogin-old"] = stack.enter_context(citylogin_server(
                db.endpoint_url, Path(tmp, "old"), table_prefix="old_", checkout=args.old.resolve()))
        if not args.no_floor:
            Path(tmp, "floor").mkdir()
            running["floor-gunicorn"] = stack.enter_context(floor_server(db.endpoint_url, Path(tmp, "floor"),
                                                                         server="gunicorn", table_prefix="floor_"))
        people = _CODES_PER_THREAD if args.row == "code" else 1
        sides: dict[str, Clients] = {name: make_clients(side, cfg["threads"], name[:3], people=people)
                                     for name, side in running.items()}
        warm_up(args.row, sides, cfg, 6.0)
        names = list(sides)
        ticks: dict[str, dict[tuple[int, int], int]] = {name: defaultdict(int) for name in names}
        done: dict[str, int] = defaultdict(int)
        order = (names + names[::-1]) * args.rounds
        for name in order:
            clients = sides[name]
            for _ in range(_CODE_BATCHES if args.row == "code" else 1):
                calls, count = _calls(args.row, clients, _CODES_PER_THREAD)
                root = clients.running.pid
                time.sleep(0.3)  # what the preparation left behind (writes after an answer) is done
                before = thread_ticks(root)
                block = run_block(calls, seconds=args.seconds, count=count, pid=root)
                after = thread_ticks(root)
                done[name] += len(block.latencies)
                for key, value in after.items():
                    ticks[name][key] += value - before.get(key, 0)
        for name in names:
            root = sides[name].running.pid
            named = thread_names(root)
            by_kind: dict[str, int] = defaultdict(int)
            for (pid, tid), spent in ticks[name].items():
                by_kind[kind(pid, root, named.get((pid, tid)))] += spent
            total = sum(by_kind.values())
            print(f"\n{name}: {done[name]} {args.row} requests, {1000 * total / _TICKS / done[name]:.2f} ms CPU each")
            for what, spent in sorted(by_kind.items(), key=lambda item: -item[1]):
                print(f"  {what:45} {1000 * spent / _TICKS / done[name]:7.3f} ms  {100 * spent / total:5.1f} %")
        for name in names if args.profile else ():
            profile(sides[name], args)
    return 0


def profile(clients: Clients, args: argparse.Namespace) -> None:
    """One block under py-spy (each worker process, 200 samples a second, CPU only): each function's
    share of the samples that include it (inclusive) and that it was running (own)."""
    root = clients.running.pid
    workers = [pid for pid in tree_pids(root) if pid != root]
    with tempfile.TemporaryDirectory() as tmp:
        spies = [subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "200",
                                   "--duration", str(int(args.seconds) + 1), "--format", "raw", "--nonblocking",
                                   "--output", f"{tmp}/{pid}.txt"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for pid in workers]
        calls, count = _calls(args.row, clients, _CODES_PER_THREAD)
        run_block(calls, seconds=args.seconds, count=count, pid=root)
        for spy in spies:
            spy.wait(timeout=120)
        inclusive: dict[str, int] = defaultdict(int)
        own: dict[str, int] = defaultdict(int)
        total = 0
        for pid in workers:
            for line in Path(f"{tmp}/{pid}.txt").read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                if args.within and args.within not in stack:
                    continue
                frames = stack.split(";")
                total += int(n)
                for frame in set(frames):
                    inclusive[frame] += int(n)
                own[frames[-1]] += int(n)
    print(f"\n{clients.running.side.name}: {total} samples" + (f" within {args.within!r}" if args.within else ""))
    for frame, n in sorted(inclusive.items(), key=lambda item: -item[1])[:args.profile]:
        print(f"  {100 * n / total:5.1f} % {100 * own.get(frame, 0) / total:5.1f} %  {frame[:150]}")


if __name__ == "__main__":
    sys.exit(main())
