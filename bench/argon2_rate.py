"""Bare Argon2id verifies per CPU second: a closed loop of PasswordHasher.verify at the server's
parameters (common.config.Settings defaults) in as many processes as the server has workers, each
loop for a given time; verifies / the CPU seconds of those processes (time.process_time in each).
The processes are this file run as a script, started once and kept for every round: each reads a
number of seconds per line on stdin and answers "verifies cpu_seconds" on stdout.

    .venv/bin/python bench/argon2_rate.py   # a worker (run_bench.py starts them)
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

PASSWORD = "bare-argon2id-verify"


def _serve() -> None:
    """The worker: hash once, then per line of stdin loop verify for that many seconds."""
    from common.config import Settings
    from common.crypto.passwords import PasswordHasher
    defaults = Settings()
    hasher = PasswordHasher(time_cost=defaults.argon2_time_cost, memory_cost=defaults.argon2_memory_cost,
                            parallelism=defaults.argon2_parallelism)
    stored = hasher.hash(PASSWORD)
    print("ready", flush=True)
    for line in sys.stdin:
        started_cpu, stop_at, done = time.process_time(), time.monotonic() + float(line), 0
        while time.monotonic() < stop_at and done < 1_000_000:
            hasher.verify(stored, PASSWORD)
            done += 1
        print(done, time.process_time() - started_cpu, flush=True)


class BareVerifiers:
    """`processes` worker processes; run(seconds) loops verify in all of them at once."""

    def __init__(self, processes: int) -> None:
        self.workers = [subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
                        for _ in range(processes)]
        if not all(worker.stdout and worker.stdout.readline().strip() == "ready" for worker in self.workers):
            self.__exit__()
            raise RuntimeError("an Argon2id worker did not start")

    def __enter__(self) -> BareVerifiers:
        return self

    def __exit__(self, *_) -> None:
        for worker in self.workers:
            if worker.stdin:
                worker.stdin.close()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)

    def run(self, seconds: float) -> dict:
        started = time.monotonic()
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(f"{seconds}\n")
            worker.stdin.flush()
        answers = []
        for worker in self.workers:
            assert worker.stdout is not None
            verifies, cpu = worker.stdout.readline().split()
            answers.append((int(verifies), float(cpu)))
        return {"verifies": sum(n for n, _ in answers), "cpu_seconds": sum(cpu for _, cpu in answers),
                "seconds": time.monotonic() - started}


def pooled(rounds: list[dict], processes: int) -> dict:
    verifies, cpu = sum(r["verifies"] for r in rounds), sum(r["cpu_seconds"] for r in rounds)
    return {"processes": processes, "rounds": len(rounds), "verifies": verifies, "cpu_seconds": cpu,
            "per_core": verifies / cpu if cpu else None,
            "rounds_per_core": [round(r["verifies"] / r["cpu_seconds"], 2) for r in rounds if r["cpu_seconds"]]}


if __name__ == "__main__":
    _serve()
