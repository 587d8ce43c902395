"""Open event streams on one host (issue 20 item 1): 10,000 `GET /session/events` held open at once
by the shipped server (deploy/gunicorn.conf.py: citylogin's worker, 2 workers x 64 threads), while
`/healthz` keeps answering; the memory each open stream costs; and how soon the streams of a sample
of 100 sessions hear that their session ended.

    .venv/bin/python bench/streams.py                      # 10,000 streams, 3 runs
    .venv/bin/python bench/streams.py --streams 2000 --runs 1

Not a test. DynamoDB Local in memory, `citylogin init`, gunicorn as shipped. The sessions are opened
in this process, with tokens that the server verifies (the key ring is shared through the tables):
the held ones written straight into the sessions table, 5 devices per user so that no user or
session cap is reached; the sampled ones the way the login's write opens them, presence and all, so
that their logout is any logout. Per run:

1. open the streams in batches of 500 (each answered `200` with its first bytes before the next batch);
2. memory: the workers' resident set after the streams opened minus before, divided by the streams;
3. `/healthz` one at a time on a kept-alive connection for `--window` seconds while every stream
   is open and read: p50, p99, max;
4. DynamoDB calls per second the server makes meanwhile (GET /metrics): per process, not per stream;
5. 100 sessions logged out one after the other (`POST /session/logout`); for each, the time from
   its logout's start to its stream's `session_revoked` (all must be told within 2 s);
6. close every stream.
Writes bench/results/streams.json with goal rows in bench/publish.py's shape
(`bench/publish.py --from bench/results/streams.json --name streams`)."""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.metrics_text import dynamodb_calls_from_text  # noqa: E402
from bench.servers import LOCALHOST_ONLY, METRICS_TOKEN, VENV_BIN, run_init  # noqa: E402
from citylogin.app import create_app  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal, free_port  # noqa: E402
from common.database import dynamo  # noqa: E402
from sessions import service as sessions_service  # noqa: E402
from sessions.models import PresenceEntry  # noqa: E402
from tests.support.seats import open_session  # noqa: E402

DEVICES_PER_USER = 5
BATCH = 500
SAMPLE = 100
TOLD_WITHIN = 2.0
HEALTHZ_P99_GOAL_MS = 50.0
REVOKED = b"event: session_revoked"


def settings(endpoint: str, data_dir: str, prefix: str) -> dict[str, str]:
    return {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": endpoint, "CITYLOGIN_DATA_DIR": data_dir,
            "CITYLOGIN_TABLE_PREFIX": prefix, "CITYLOGIN_PUBLIC_URL": "http://127.0.0.1",
            "CITYLOGIN_LOG_LEVEL": "WARNING", "CITYLOGIN_MAX_CONCURRENT_DEVICES": "0",
            "CITYLOGIN_METRICS_TOKEN": METRICS_TOKEN}


@contextmanager
def shipped_server(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, int]]:
    """gunicorn -c deploy/gunicorn.conf.py on a free port; yields (base URL, master pid)."""
    port = free_port()
    metrics = workdir / "metrics"
    metrics.mkdir()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    full_env.update(env, **LOCALHOST_ONLY, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    log = open(workdir / "gunicorn.log", "wb")
    process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                "-b", f"127.0.0.1:{port}", "citylogin.app:create_app()"],
                               env=full_env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError((workdir / "gunicorn.log").read_text()[-3000:])
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def worker_rss_kib(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    return total


class Streams:
    """Raw sockets, each a GET /session/events; a reader thread drains them all and notes when
    each first carried `session_revoked`."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.socks: dict[int, socket.socket] = {}
        self.heads: dict[int, bytes] = {}
        self.revoked_at: dict[int, float] = {}
        self.heartbeats = 0
        self._poller = select.poll()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    def open(self, tokens: list[str]) -> list[int]:
        """Open one stream per token, BATCH at a time; the fds, in the tokens' order."""
        fds = []
        for start in range(0, len(tokens), BATCH):
            batch = [self._connect(token) for token in tokens[start:start + BATCH]]
            self._await_heads(batch)
            fds += batch
        return fds

    def _connect(self, token: str) -> int:
        sock = socket.create_connection(self.address, timeout=30)
        sock.sendall(f"GET /session/events HTTP/1.1\r\nHost: {self.address[0]}\r\nAuthorization: Bearer {token}"
                     "\r\nAccept: text/event-stream\r\n\r\n".encode())
        sock.setblocking(False)
        self.socks[sock.fileno()] = sock
        self.heads[sock.fileno()] = b""
        return sock.fileno()

    def _await_heads(self, fds: list[int]) -> None:
        waiting, poller = set(fds), select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + 120
        while waiting and time.monotonic() < deadline:
            for fd, _ in poller.poll(500):
                data = os.read(fd, 65536)
                self.heads[fd] += data
                if b"retry: 3000" in self.heads[fd] or not data:
                    waiting.discard(fd)
                    poller.unregister(fd)
        refused = [fd for fd in fds if not self.heads[fd].startswith(b"HTTP/1.1 200")]
        if waiting or refused:
            sample = self.heads[(refused or list(waiting))[0]][:300]
            at = [fds.index(fd) for fd in refused[:10]]
            raise RuntimeError(f"{len(waiting)} streams unanswered, {len(refused)} refused (at {at} of this "
                               f"batch): {sample!r}")

    def start_reading(self) -> None:
        for fd in self.socks:
            self._poller.register(fd, select.POLLIN)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for fd, _ in self._poller.poll(100):
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                now = time.monotonic()
                if REVOKED in data:
                    with self._lock:
                        self.revoked_at.setdefault(fd, now)
                self.heartbeats += data.count(b": keep-alive\n")
                if not data:
                    self._poller.unregister(fd)

    def close(self) -> None:
        self._stop.set()
        if self._reader:
            self._reader.join()
        for sock in self.socks.values():
            sock.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def healthz_latencies(url: str, seconds: float) -> list[float]:
    samples = []
    with requests.Session() as http:
        http.trust_env = False
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            http.get(url + "/healthz", timeout=10).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    return samples


def dynamodb_calls(url: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    return dict(dynamodb_calls_from_text(text, requests_only=False))  # the host's every call, pollers too


def one_run(url: str, master: int, tokens: list[str], sample_tokens: list[str], window: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    streams = Streams((host, int(port)))
    try:
        rss_before = worker_rss_kib(master)
        opened_at = time.monotonic()
        fds = streams.open(tokens + sample_tokens)
        open_seconds = time.monotonic() - opened_at
        time.sleep(2)
        rss_after = worker_rss_kib(master)
        streams.start_reading()
        calls_before = dynamodb_calls(url)
        healthz = healthz_latencies(url, window)
        calls_after = dynamodb_calls(url)
        told = revoke_sample(url, streams, fds[len(tokens):], sample_tokens)
        return {
            "streams": len(fds), "open_seconds": round(open_seconds, 1),
            "memory_kib_per_stream": round((rss_after - rss_before) / len(fds), 2),
            "workers_rss_mib": [round(rss_before / 1024, 1), round(rss_after / 1024, 1)],
            "healthz_ms": {"n": len(healthz), "p50": round(statistics.median(healthz), 2),
                           "p99": round(percentile(healthz, 0.99), 2), "max": round(max(healthz), 2)},
            "heartbeats_heard": streams.heartbeats,
            "dynamodb_calls_per_s": {op: round((calls_after.get(op, 0) - calls_before.get(op, 0)) / window, 2)
                                     for op in sorted(calls_after)
                                     if calls_after.get(op, 0) != calls_before.get(op, 0)},
            "told_seconds": told,
        }
    finally:
        streams.close()


def revoke_sample(url: str, streams: Streams, fds: list[int], tokens: list[str]) -> dict:
    started: dict[int, float] = {}
    with requests.Session() as http:
        http.trust_env = False
        for fd, token in zip(fds, tokens, strict=True):
            started[fd] = time.monotonic()
            http.post(url + "/session/logout", headers={"Authorization": f"Bearer {token}"},
                      timeout=10).raise_for_status()
    deadline = time.monotonic() + 10
    while len(streams.revoked_at) < len(fds) and time.monotonic() < deadline:
        time.sleep(0.05)
    delays = [streams.revoked_at[fd] - started[fd] for fd in fds if fd in streams.revoked_at]
    return {"sample": len(fds), "told": len(delays),
            "within_2s": sum(1 for d in delays if d <= TOLD_WITHIN),
            "p50": round(statistics.median(delays), 3) if delays else None,
            "max": round(max(delays), 3) if delays else None}


def seeded_sessions(ctx, count: int) -> list[str]:
    """`count` live sessions written straight into the tables (25 items per BatchWriteItem) as the
    login's write leaves them: each session, and per user one presence record listing its devices'
    sessions (a request that records activity checks it); their access tokens."""
    now = int(ctx.now().timestamp())
    tokens, sessions = [], []
    users: dict[str, dict[str, dict]] = {}
    for index in range(count):
        user = f"bench-seeded-{index // DEVICES_PER_USER}"
        session = sessions_service._new_session(
            ctx, user_uuid=user, device_id=str(uuid.uuid4()), device_name=f"s{index}", device_class="other",
            ip=None, user_agent=None, now=now, jkt=None, amr=("hwk", "pwd"))
        sessions.append({"PutRequest": {"Item": dynamo.to_item(asdict(session))}})
        users.setdefault(user, {})[session.device_id] = asdict(PresenceEntry(
            device_id=session.device_id, session_id=session.session_id, device_name=session.device_name,
            login_epoch=now, last_seen_epoch=now, expires_epoch=session.expires_epoch))
        tokens.append(sessions_service._token_pair(ctx, session, generation=1, issued_epoch=now,
                                                   refresh_kid=session.refresh_kid).access_token)
    presence = [{"PutRequest": {"Item": dynamo.to_item({"user_uuid": user, "version": 1, "entries": entries})}}
                for user, entries in users.items()]
    chunks = [(table, requests_[start:start + 500]) for table, requests_ in
              ((ctx.tables.sessions, sessions), (ctx.tables.presence, presence))
              for start in range(0, len(requests_), 500)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda chunk: dynamo.batch_write(ctx.dynamodb, *chunk), chunks))
    return tokens


def open_sessions(ctx, count: int) -> list[str]:
    """`count` sessions opened the way the login's write opens them (presence and all), so that a
    logout ends them as it ends any other; their access tokens."""
    def one(index: int) -> str:
        user = f"bench-user-{index // DEVICES_PER_USER}"
        return open_session(ctx, user_uuid=user, device_id=str(uuid.uuid4()),
                            device_name=f"d{index}").tokens.access_token
    with ThreadPoolExecutor(8) as pool:
        # one user's devices in one thread, so that their presence is not contended
        users = range(0, count, DEVICES_PER_USER)
        chunks = pool.map(lambda first: [one(i) for i in range(first, min(first + DEVICES_PER_USER, count))], users)
        return [token for chunk in chunks for token in chunk]


def goals(runs: list[dict], target: int) -> list[dict]:
    """Goal rows (bench/publish.py's shape): the value is the median over the runs; a goal is MET
    only if every run met it."""
    opened = [r["streams"] for r in runs]
    p99 = [r["healthz_ms"]["p99"] for r in runs]
    told = [r["told_seconds"]["within_2s"] for r in runs]
    slowest = [r["told_seconds"]["max"] for r in runs]
    memory = [r["memory_kib_per_stream"] for r in runs]
    calls = [round(sum(r["dynamodb_calls_per_s"].values()), 2) for r in runs]
    return [
        {"figure": "open event streams held by one host (shipped gunicorn settings)",
         "value": statistics.median(opened), "unit": "streams", "goal": f">= {target:,}", "runs": opened,
         "status": "MET" if min(opened) >= target else "MISSED"},
        {"figure": "GET /healthz p99 while they are open", "value": statistics.median(p99), "unit": "ms",
         "goal": f"< {HEALTHZ_P99_GOAL_MS:g}", "runs": p99,
         "status": "MET" if max(p99) < HEALTHZ_P99_GOAL_MS else "MISSED"},
        {"figure": f"of {SAMPLE} sessions logged out, streams told within {TOLD_WITHIN:g} s",
         "value": statistics.median(told), "unit": "streams", "goal": f"= {SAMPLE}", "runs": told,
         "status": "MET" if min(told) == SAMPLE else "MISSED"},
        {"figure": "slowest of them told", "value": statistics.median(s for s in slowest if s is not None),
         "unit": "s", "goal": "info", "runs": slowest, "status": "info"},
        # a later run reuses the memory the earlier one's streams freed: the first run's growth is the figure
        {"figure": "memory per open stream (the workers' growth in the first run)", "value": memory[0],
         "unit": "KiB", "goal": "info", "runs": memory, "status": "info"},
        {"figure": "DynamoDB calls/s of the host with them open", "value": statistics.median(calls),
         "unit": "calls/s", "goal": "info (per process, not per stream)", "runs": calls, "status": "info"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "streams.json"))
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    background = args.streams - SAMPLE
    load_start = os.getloadavg()
    results = []
    with DynamoDBLocal() as local, tempfile.TemporaryDirectory() as data:
        env = settings(local.endpoint_url, data, f"s{uuid.uuid4().hex[:6]}_")
        run_init({**{k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}, **env, **LOCALHOST_ONLY})
        app = create_app({key.removeprefix("CITYLOGIN_").lower(): value for key, value in env.items()})
        ctx = app.extensions["citylogin"]
        started = time.monotonic()
        tokens = seeded_sessions(ctx, background) + open_sessions(ctx, SAMPLE * args.runs)
        print(f"opened {len(tokens)} sessions in {time.monotonic() - started:.0f}s", flush=True)
        with shipped_server(env, Path(data)) as (url, master):
            for run in range(args.runs):
                sample = tokens[background + run * SAMPLE: background + (run + 1) * SAMPLE]
                result = one_run(url, master, tokens[:background], sample, args.window)
                print(json.dumps(result), flush=True)
                results.append(result)
                time.sleep(3)  # the closed streams leave the pump at their next heartbeat or sooner
    command = "bench/streams.py " + " ".join(sys.argv[1:])
    report = {"source": "bench/streams.py", "command": command.strip(),
              "when": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "mode": "full", "runs": args.runs,
              "machine": {"cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
              "config": vars(args), "measured": results, "goals": goals(results, args.streams)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("\n| figure | value | goal | runs | status |\n|---|---|---|---|---|")
    for row in report["goals"]:
        print(f"| {row['figure']} | {row['value']} {row['unit']} | {row['goal']} | "
              f"{', '.join(map(str, row['runs']))} | {row['status']} |")


if __name__ == "__main__":
    main()
