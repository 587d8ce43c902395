"""Throughput at saturation: password logins/s and refreshes/s per core (closed loop, one user
per thread), the logins in rounds ABBA with bare Argon2id verifies (bench/argon2_rate.py) in as many
processes as the server has workers; logins per server CPU second of citylogin against its floor
(bench/floor_app.py), both reaching DynamoDB through the delaying proxy, in rounds ABBA; and
/session/me with one gunicorn worker against two, both on one DynamoDB Local."""
from __future__ import annotations

import os
from typing import Callable

import argon2_rate
import flows
from citylogin.client.api import Client
from dynamo_proxy import DelayProxy
from cpu import cpu_delta, tree_cpu_seconds
from loadgen import LoadRound, closed_loop_calls, local_session, summarize
from measurements import alternating_load

ABBA = ("A", "B", "B", "A")


def _login_call(client: Client) -> Callable[[], bool]:
    http = local_session()

    def login() -> bool:
        flows.login_by_hand(client, http)  # raises RuntimeError on a non-200: counted as an error
        return True
    return login


def _refresh_call(client: Client) -> Callable[[], bool]:
    http = local_session()
    return lambda: flows.refresh(client, http)


def _measured_round(calls: list[Callable[[], bool]], *, seconds: float, pids: dict[str, int]) -> tuple[LoadRound, dict]:
    before = tree_cpu_seconds(pids)
    result = closed_loop_calls(calls, seconds=seconds)
    return result, cpu_delta(before, tree_cpu_seconds(pids))


def _throughput(rounds: list[tuple[LoadRound, dict]], threads: int) -> dict:
    """Pooled over rounds: throughput per core three ways: per core the gunicorn tree used (its CPU
    seconds, from /proc: the goal's figure), per core the server and DynamoDB Local used together,
    and per core of the machine (os.cpu_count())."""
    latencies = [latency for result, _ in rounds for latency in result.latencies]
    elapsed = sum(result.elapsed for result, _ in rounds)
    used = {name: sum(cpu.get(name, 0.0) for _, cpu in rounds) for name in ("server", "dynamodb", "loadgen")}
    done = len(latencies)
    server_cores, db_cores = used["server"] / elapsed, used["dynamodb"] / elapsed
    rps = done / elapsed
    return {**summarize(latencies), "threads": threads, "seconds": elapsed, "completed": done,
            "errors": sum(result.errors for result, _ in rounds), "rps": rps, "rounds": len(rounds),
            "server_cores_used": server_cores, "dynamodb_cores_used": db_cores,
            "loadgen_cores_used": used["loadgen"] / elapsed,
            "per_server_core": rps / server_cores if server_cores else None,
            "per_server_and_dynamodb_core": rps / (server_cores + db_cores) if server_cores + db_cores else None,
            "per_machine_core": rps / (os.cpu_count() or 1)}


def saturate(calls: list[Callable[[], bool]], *, seconds: float, warmup_s: float, pids: dict[str, int]) -> dict:
    """Closed loop over `calls` (one thread each) after a warm-up; see _throughput."""
    closed_loop_calls(calls, seconds=warmup_s)
    return _throughput([_measured_round(calls, seconds=seconds, pids=pids)], len(calls))


def logins_beside_argon2(calls: list[Callable[[], bool]], *, cfg: dict, pids: dict[str, int],
                         processes: int) -> dict[str, dict]:
    """Rounds ABBA (x saturation_rounds) of A = the login closed loop, B = bare Argon2id verifies in
    `processes` processes, saturation_s of each in all: logins per server core, verifies per core."""
    rounds = cfg["saturation_rounds"]
    letter_s = cfg["saturation_s"] / (2 * rounds)
    closed_loop_calls(calls, seconds=cfg["warmup_s"])
    logins, verifies = [], []
    with argon2_rate.BareVerifiers(processes) as bare:
        bare.run(min(1.0, cfg["warmup_s"]))
        for letter in ABBA * rounds:
            if letter == "A":
                logins.append(_measured_round(calls, seconds=letter_s, pids=pids))
            else:
                verifies.append(bare.run(letter_s))
    login = _throughput(logins, len(calls))
    bare_verifies = argon2_rate.pooled(verifies, processes)
    login["per_server_core_over_bare_argon2"] = login["per_server_core"] / bare_verifies["per_core"] \
        if login["per_server_core"] and bare_verifies["per_core"] else None
    return {"saturation_login": login, "argon2_bare": bare_verifies}


def logins_against_floor(mine: list[Client], floor: list[Client], *, proxy: DelayProxy, delay_ms: float,
                         cfg: dict, pids: dict[str, int]) -> dict[str, dict]:
    """Rounds ABBA (x floor_logins_rounds) of A = citylogin's login closed loop, B = the floor's (one
    thread per user, the same login bodies), floor_logins_s of each in all, with every DynamoDB call of
    both servers `delay_ms` away each way (`pids`: "citylogin", "floor", "dynamodb"): logins per second
    of each server's CPU (its gunicorn tree's, around its own rounds), pooled, and their ratio."""
    rounds = cfg["floor_logins_rounds"]
    letter_s = cfg["floor_logins_s"] / (2 * rounds)
    kinds = {"A": ("citylogin", [_login_call(u) for u in mine]), "B": ("floor", [_login_call(u) for u in floor])}
    measured: dict[str, list[tuple[LoadRound, dict]]] = {"A": [], "B": []}
    proxy.delay = delay_ms / 1000
    try:
        for _, calls in kinds.values():
            closed_loop_calls(calls, seconds=cfg["warmup_s"])
        for letter in ABBA * rounds:
            server, calls = kinds[letter]
            result, used = _measured_round(calls, seconds=letter_s, pids=pids)
            measured[letter].append((result, {"server": used[server], "dynamodb": used["dynamodb"],
                                              "loadgen": used["loadgen"]}))
    finally:
        proxy.delay = 0.0
    mine_rate, floor_rate = _throughput(measured["A"], len(mine)), _throughput(measured["B"], len(floor))
    ratio = mine_rate["per_server_core"] / floor_rate["per_server_core"] \
        if mine_rate["per_server_core"] and floor_rate["per_server_core"] else None
    return {"logins_versus_floor": {"delay_ms": delay_ms, "citylogin": mine_rate, "floor": floor_rate,
                                    "ratio": ratio}}


def bench_saturation(users: list[Client], cfg: dict, pids: dict[str, int], *, workers: int) -> dict[str, dict]:
    """Logins (challenge + POST /login/, alternating with bare verifies in `workers` processes) and
    refreshes, each user on its own thread."""
    for user in users:
        flows.login_with_retry(user)
    out = logins_beside_argon2([_login_call(u) for u in users], cfg=cfg, pids=pids, processes=workers)
    out["saturation_refresh"] = saturate([_refresh_call(u) for u in users], seconds=cfg["saturation_s"],
                                         warmup_s=cfg["warmup_s"], pids=pids)
    return out


def bench_two_processes(one_worker_url: str, two_worker_url: str, headers: dict[str, str], cfg: dict,
                        pids: dict[str, int]) -> dict[str, dict]:
    """/session/me throughput, one gunicorn worker against two, alternating rounds (ABBAAB)."""
    targets = {"me_1_worker": (one_worker_url + "/session/me", headers),
               "me_2_workers": (two_worker_url + "/session/me", headers)}
    return alternating_load(targets, threads=cfg["threads"], warmup_s=cfg["warmup_s"],
                            load_s=cfg["scaling_s"], rounds=cfg["rounds"], pids=pids)
