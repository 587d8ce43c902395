"""The operators' figures of issue 44, measured by run_bench.py on its own citylogin server, with
bench/admin_bench.py's set-up: an operator made with `citylogin admin grant USER support`, a person
with two devices, ended sessions and history. An account's page (GET /admin/accounts/<user_uuid>)
and GET /session/me of the same operator (the floor of one request here) one at a time,
interleaved, each request prepared (its DPoP proof made) before its clock starts; their p50 ratio;
the DynamoDB calls of one page (source="request")."""
from __future__ import annotations

import time

import flows
from admin_bench import grant
from citylogin.client.api import Client
from dynamo_calls import calls_per_request
from loadgen import local_session, summarize

ROLE_DEADLINE_S = 30  # a role granted through the CLI may reach a running server only after its cache bound


def set_up(base_url: str, env: dict[str, str], run: str) -> tuple[Client, Client]:
    """The operator (signed in after the grant) and the person whose page is read."""
    operator = flows.register(base_url, f"b{run}_op")
    grant(env, operator.key_file.username, "support")
    operator.login(flows.PASSWORD, force=True)
    person = flows.register(base_url, f"b{run}_pp")
    person.login(flows.PASSWORD, force=True)
    second = flows.new_client(base_url)
    second.pair(person.request_pairing()["qr_code"], username=person.key_file.username, password=flows.PASSWORD)
    second.login(flows.PASSWORD, force=True)
    for _ in range(3):
        person.login(flows.PASSWORD, force=True)  # ended sessions and history rows on the page
    return operator, person


class Reader:
    """The operator's GETs over one keep-alive session; latency (s), raising unless 200."""

    def __init__(self, operator: Client) -> None:
        self.operator, self.http = operator, local_session()

    def get(self, path: str) -> float:
        url = self.operator.base_url + path
        headers = self.operator.auth_headers("GET", url)
        started = time.perf_counter()
        answer = self.http.get(url, headers=headers, timeout=30)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
        return elapsed


def wait_for_role(reader: Reader, page: str) -> None:
    deadline = time.monotonic() + ROLE_DEADLINE_S
    while True:
        try:
            reader.get(page)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def bench_account_page(base_url: str, env: dict[str, str], *, run: str, n: int, calls_n: int) -> dict:
    operator, person = set_up(base_url, env, run)
    reader = Reader(operator)
    page = f"/admin/accounts/{person.key_file.user_uuid}"
    wait_for_role(reader, page)
    for _ in range(5):  # warm both paths
        reader.get(page)
        reader.get("/session/me")
    pages, floor = [], []
    deadline = time.monotonic() + 180
    for _ in range(n):
        pages.append(reader.get(page))
        floor.append(reader.get("/session/me"))
        if time.monotonic() > deadline:
            break
    page_stats, floor_stats = summarize(pages), summarize(floor)
    return {"admin_account_page": {
        "page": page_stats, "floor_me": floor_stats, "ratio_p50": page_stats["p50"] / floor_stats["p50"],
        "dynamodb_calls_per_page": calls_per_request(base_url, lambda: reader.get(page), calls_n),
        "dynamodb_calls_floor": calls_per_request(base_url, lambda: reader.get("/session/me"), calls_n)}}
