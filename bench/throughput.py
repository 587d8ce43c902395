"""Throughput at saturation: password logins/s and refreshes/s per core (closed loop, one user
per thread), and /session/me with one gunicorn worker against two, both on one DynamoDB Local."""
from __future__ import annotations

import os
from typing import Callable

import flows
from citylogin.client import Client
from cpu import cpu_delta, tree_cpu_seconds
from loadgen import closed_loop_calls, local_session, summarize
from measurements import alternating_load


def _login_call(client: Client) -> Callable[[], bool]:
    http = local_session()

    def login() -> bool:
        flows.login_by_hand(client, http)  # raises RuntimeError on a non-200: counted as an error
        return True
    return login


def _refresh_call(client: Client) -> Callable[[], bool]:
    http = local_session()
    return lambda: flows.refresh(client, http)


def saturate(calls: list[Callable[[], bool]], *, seconds: float, warmup_s: float, pids: dict[str, int]) -> dict:
    """Closed loop over `calls` (one thread each); throughput per core three ways: per core the
    gunicorn tree used (its CPU seconds, from /proc: the goal's figure), per core the server and
    DynamoDB Local used together, and per core of the machine (os.cpu_count())."""
    closed_loop_calls(calls, seconds=warmup_s)
    before = tree_cpu_seconds(pids)
    result = closed_loop_calls(calls, seconds=seconds)
    used = cpu_delta(before, tree_cpu_seconds(pids))
    done, elapsed = len(result.latencies), result.elapsed
    server_cores, db_cores = used.get("server", 0.0) / elapsed, used.get("dynamodb", 0.0) / elapsed
    rps = done / elapsed
    return {**summarize(result.latencies), "threads": len(calls), "seconds": elapsed, "completed": done,
            "errors": result.errors, "rps": rps, "server_cores_used": server_cores, "dynamodb_cores_used": db_cores,
            "loadgen_cores_used": used.get("loadgen", 0.0) / elapsed,
            "per_server_core": rps / server_cores if server_cores else None,
            "per_server_and_dynamodb_core": rps / (server_cores + db_cores) if server_cores + db_cores else None,
            "per_machine_core": rps / (os.cpu_count() or 1)}


def bench_saturation(users: list[Client], cfg: dict, pids: dict[str, int]) -> dict[str, dict]:
    """Logins (challenge + POST /login/) and refreshes, each user on its own thread."""
    for user in users:
        flows.login_with_retry(user)
    logins = saturate([_login_call(u) for u in users], seconds=cfg["saturation_s"], warmup_s=cfg["warmup_s"],
                      pids=pids)
    refreshes = saturate([_refresh_call(u) for u in users], seconds=cfg["saturation_s"],
                         warmup_s=cfg["warmup_s"], pids=pids)
    return {"saturation_login": logins, "saturation_refresh": refreshes}


def bench_two_processes(one_worker_url: str, two_worker_url: str, headers: dict[str, str], cfg: dict,
                        pids: dict[str, int]) -> dict[str, dict]:
    """/session/me throughput, one gunicorn worker against two, alternating rounds (ABBAAB)."""
    targets = {"me_1_worker": (one_worker_url + "/session/me", headers),
               "me_2_workers": (two_worker_url + "/session/me", headers)}
    return alternating_load(targets, threads=cfg["threads"], warmup_s=cfg["warmup_s"],
                            load_s=cfg["scaling_s"], rounds=cfg["rounds"], pids=pids)
