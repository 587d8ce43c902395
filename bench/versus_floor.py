"""citylogin against its floor (bench/floor_app.py: the same DynamoDB requests and the same
unavoidable crypto, nothing else), one request at a time, in rounds ABBA so that the machine's
drift falls on both alike: POST /login/ (its challenge fetched first, untimed), POST
/session/refresh and GET /session/me. The ratio of the p50s is citylogin's overhead."""
from __future__ import annotations

import time

import flows
from citylogin.client.api import Client
from loadgen import local_session, summarize

ABBA = ("A", "B", "B", "A")


def _timed_post_login(client: Client, http) -> float:
    return flows.post_login(client, http, flows.challenge(client, http))


OPERATIONS = {"login": _timed_post_login, "refresh": flows.timed_refresh, "me": flows.timed_me}


def floor_users(citylogin_url: str, floor_url: str, run: str) -> tuple[Client, Client]:
    """One user on each app (both registered by citylogin; the second handed to the floor), logged in."""
    mine = flows.register(citylogin_url, f"b{run}_vsfloor")
    flows.login_with_retry(mine)
    floor = flows.hand_to_floor(flows.register(citylogin_url, f"b{run}_floor"), floor_url)
    flows.login_with_retry(floor)
    return mine, floor


def bench_versus_floor(mine: Client, floor: Client, *, rounds: int, per_round: int,
                       max_seconds: float = 300) -> dict[str, dict]:
    """rounds × ABBA, each letter `per_round` requests of each operation; p50s and their ratio."""
    http = {"citylogin": local_session(), "floor": local_session()}
    clients = {"citylogin": mine, "floor": floor}
    samples: dict[str, dict[str, list[float]]] = {op: {"citylogin": [], "floor": []} for op in OPERATIONS}
    for name, client in clients.items():  # warm-up: connections, code paths, the key ring
        for measure in OPERATIONS.values():
            for _ in range(3):
                measure(client, http[name])
    deadline = time.monotonic() + max_seconds
    for letter in ABBA * rounds:
        name = "citylogin" if letter == "A" else "floor"
        for op, measure in OPERATIONS.items():
            samples[op][name] += [measure(clients[name], http[name]) for _ in range(per_round)]
        if time.monotonic() > deadline:
            break
    out = {}
    for op, by_app in samples.items():
        mine_s, floor_s = summarize(by_app["citylogin"]), summarize(by_app["floor"])
        out[op] = {"citylogin": mine_s, "floor": floor_s,
                   "ratio_p50": mine_s["p50"] / floor_s["p50"] if floor_s.get("p50") else None}
    return out
