"""DynamoDB calls per request, from the server's own counter `citylogin_dynamodb_calls_total`
(GET /metrics, Bearer METRICS_TOKEN): read it, make N sequential requests of one kind, wait for
the writes made after the response (e.g. a login-history row), read it again, divide. Only the
requests' calls count (source="request"): the process's own pollers (key ring, app registry every
0.5 s, feeds) are labelled source="scheduled" and left out; an older server without the label: all."""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

import flows
from citylogin.client.api import Client
from loadgen import local_session
from metrics_text import dynamodb_calls_from_text
from servers import METRICS_TOKEN

SETTLE_SECONDS = 0.5  # background writes after the response must land before the second read


def dynamodb_calls(base_url: str, http, *, requests_only: bool = True) -> Counter:
    """operation -> calls so far, summed over the workers (prometheus multiprocess directory); the
    requests' own only, unless `requests_only` is False (see bench/metrics_text.py)."""
    response = http.get(base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    response.raise_for_status()
    return dynamodb_calls_from_text(response.text, requests_only=requests_only)


def calls_per_request(base_url: str, make_request: Callable[[], object], n: int) -> dict:
    """Calls per request of one kind: total and by operation name."""
    http = local_session()
    time.sleep(SETTLE_SECONDS)  # the previous step's background writes
    before = dynamodb_calls(base_url, http)
    for _ in range(n):
        make_request()
    time.sleep(SETTLE_SECONDS)
    delta = dynamodb_calls(base_url, http) - before
    return {"n": n, "per_request": sum(delta.values()) / n,
            "by_operation": {op: count / n for op, count in sorted(delta.items())}}


def measure_all(base_url: str, *, user: Client, pairing_user: Client, n: int) -> dict[str, dict]:
    """Challenge, POST /login/, pairing token, QR redemption, refresh and /session/me, each alone.
    `user` logs in n times, then refreshes and reads /session/me with its newest tokens;
    `pairing_user` gains n devices."""
    http = local_session()
    out = {"idle": calls_per_request(base_url, lambda: None, 1)}  # nothing but the scrapes: ~0
    challenges: list[str] = []
    out["challenge"] = calls_per_request(base_url, lambda: challenges.append(flows.challenge(user, http)), n)
    pending = iter(challenges)
    out["login_post"] = calls_per_request(base_url, lambda: flows.post_login(user, http, next(pending)), n)
    out["login_total"] = _sum_of(out["challenge"], out["login_post"])
    qrs: list[str] = []
    out["pairing_token"] = calls_per_request(
        base_url, lambda: qrs.append(flows.request_pairing_qr(pairing_user, http)), n)
    qr_payloads = iter(qrs)
    out["qr_redemption"] = calls_per_request(
        base_url, lambda: flows.redeem_pairing_qr(pairing_user, next(qr_payloads)), n)
    out["refresh"] = calls_per_request(base_url, lambda: _require(flows.refresh(user, http), "refresh"), n)
    out["me"] = calls_per_request(base_url, lambda: _require(
        http.get(base_url + "/session/me", headers=flows.auth_headers(user), timeout=10).ok, "/session/me"), n)
    return out


def _sum_of(*parts: dict) -> dict:
    by_operation: Counter = Counter()
    for part in parts:
        by_operation.update(part["by_operation"])
    return {"n": min(p["n"] for p in parts), "per_request": sum(p["per_request"] for p in parts),
            "by_operation": dict(sorted(by_operation.items()))}


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} failed while counting DynamoDB calls")
