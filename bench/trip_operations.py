"""The requests whose round trips bench/network.py estimates on the server behind the delaying proxy,
each an Operation: what a batch of them needs is made first (`prepare`, untimed), then each request is
timed alone (`timed`, its latency in seconds), so that only the request itself meets the delay.

- the session's: POST /session/refresh, POST /registration/request_pairing_token, a login (its
  challenge and POST /login/, both timed), GET /session/me, each user its own;
- the OpenID Provider's: the token step (POST /oidc/token redeeming a code, each code made beforehand
  by a device of its own: a device's next sign-in replaces its grant, so no code waits on another's
  redemption) and GET /oidc/userinfo (one access token of a device of its own);
- the console's: an account's page (GET /admin/accounts/<uuid>) and GET /session/me of the same
  operator, its session read (bench/admin_figures.py's set-up).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import admin_figures
import flows
from citylogin.client.api import Client
from loadgen import local_session
from oidc_figures import CodeFlow, signed_in_device

SESSION_REQUESTS = {"refresh": flows.timed_refresh, "pairing": flows.timed_pairing, "login": flows.timed_login,
                    "me": flows.timed_me}


@dataclass(frozen=True)
class Operation:
    """`prepare(n)`: what n requests need, made untimed (None: nothing); `timed(item)`: one request
    with one of those items, its latency (s), raising unless it was answered as expected."""
    timed: Callable[[Any], float]
    prepare: Callable[[int], list] | None = None

    def items(self, n: int) -> list:
        return self.prepare(n) if self.prepare else [None] * n


def session_users(base_url: str, run: str) -> dict[str, Client]:
    """One user per session request (the pairing user gains a token per request)."""
    return {op: flows.register(base_url, f"b{run}_net_{op}") for op in SESSION_REQUESTS}


def session_operations(users: dict[str, Client]) -> dict[str, Operation]:
    """Each user logged in again first: the access tokens of a previous run have expired."""
    http = local_session()
    for user in users.values():
        flows.login_with_retry(user)
    return {op: Operation(timed=lambda _, measure=measure, user=users[op]: measure(user, http))
            for op, measure in SESSION_REQUESTS.items()}


def oidc_operations(base_url: str, app: dict[str, str], *, run: str, devices: int) -> dict[str, Operation]:
    """The token step with `devices` signed-in devices (a batch is at most that many codes, one each)
    and userinfo with one more device's access token."""
    redeemers = [CodeFlow(base_url, app, signed_in_device(base_url, f"b{run}_nt{i}")) for i in range(devices)]
    reader = CodeFlow(base_url, app, signed_in_device(base_url, f"b{run}_nu"))
    access_token = reader.whole()["access_token"]

    def codes(n: int) -> list[tuple[CodeFlow, str, str]]:
        if n > len(redeemers):
            raise ValueError(f"{n} codes, {len(redeemers)} devices: a device's second code would wait on its first")
        made = []
        for flow in redeemers[:n]:
            request_id, verifier, _ = flow.authorize()
            made.append((flow, flow.complete(request_id)[0], verifier))
        return made

    return {"token": Operation(timed=lambda made: made[0].token(made[1], made[2])[1], prepare=codes),
            "userinfo": Operation(timed=lambda _: reader.userinfo(access_token))}


def console_operations(base_url: str, env: dict[str, str], *, run: str) -> dict[str, Operation]:
    """An account's page and the same operator's GET /session/me, once the role answers."""
    operator, person = admin_figures.set_up(base_url, env, run)
    reader = admin_figures.Reader(operator)
    page = f"/admin/accounts/{person.key_file.user_uuid}"
    admin_figures.wait_for_role(reader, page)
    return {"admin_page": Operation(timed=lambda _: reader.get(page)),
            "admin_me": Operation(timed=lambda _: reader.get("/session/me"))}
