"""The goals of issues 12, 20, 44, 53, 66 and 87 as rows: figure | value | goal | MET/MISSED (or info), each
measured in a run against that run's own baselines; merge_runs() folds the rows of several runs
into one row per figure. The row's shape is the published one (bench/publish.py)."""
from __future__ import annotations

import statistics
from typing import Callable

LOGIN_OVERHEAD_MS = 10.0
ME_OVERHEAD_MS = 1.0
FLAT = (0.8, 1.2)  # ±20 %
FLOOR_RATIO = 1.10
REFRESHES_PER_CORE = 250
# Logins per server CPU second, citylogin / the floor app, both servers' DynamoDB calls behind the
# delaying proxy (bench/throughput.py's logins_against_floor). It replaces "logins per server core /
# bare Argon2id verifies per core >= 0.9" (now information): that ratio left 2.7 ms of CPU a login for
# two HTTP requests and three DynamoDB calls, which the floor pays too.
LOGINS_OVER_FLOOR = 0.95
OIDC_FLOW_CALLS = 7
OIDC_STEP_RATIO = 1.5  # each code-flow step's p50 / GET /session/me p50
OIDC_REFRESH_RATIO = 0.8  # refresh grants / session refreshes, per server CPU second
ADMIN_PAGE_CALLS = 5
# The peer bench (bench/peer_bench.py, issues 53, 66 and 87): citylogin's requests per server CPU second over
# node-oidc-provider's on DynamoDB (the side node-dynamodb: as production runs it), per row: issue 87's goals
# (issue 66's were 2.5 and 0.6 on discovery). The figure's name is also bench/publish.py's key for its peer
# table. Over node-oidc-provider on its memory store (the side node, the storage-free ceiling, which
# node-oidc-provider calls development-only): information, as were issue 53's goals against it.
PEER_GOALS = {"refresh": 1.5, "code": 1.5, "flow": 1.5, "userinfo": 1.5, "introspection": 1.5, "discovery": 1.0}
PEER_FIGURE = "peer: {row}, citylogin / node-oidc-provider on DynamoDB, requests per server CPU s"
PEER_MEMORY_FIGURE = ("peer: {row}, citylogin / node-oidc-provider on its memory store (the storage-free ceiling), "
                      "requests per server CPU s")
PEER_FLOOR_FIGURE = ("peer: {row}, provider floor ({floor}) / node-oidc-provider on its memory store, "
                     "requests per server CPU s")
# citylogin over the provider floor under citylogin's own server (bench/peer_floor.py), per row (issue 87; issue
# 66's was 0.8 on every row).
PEER_FLOOR_GOAL = {"refresh": 0.8, "code": 0.8, "flow": 0.6, "userinfo": 0.8, "introspection": 0.8, "discovery": 0.8}
PEER_OVER_FLOOR_FIGURE = "peer: {row}, citylogin / provider floor (floor-gunicorn), requests per server CPU s"
PEER_CALLS_FIGURE = "peer: {row}, DynamoDB calls per request, {side}"
PEER_CALLS_SIDES = {"citylogin": "citylogin", "node-dynamodb": "node-oidc-provider on DynamoDB"}
# Latency under load (bench/peer_latency.py, issue 87): each side's refresh and userinfo at 80 % of its own
# closed-loop max rate, open loop, from each request's due time; information, for the sides of the goals.
PEER_LATENCY_FIGURE = "peer: {row}, latency {q} at 80 % of the max rate (open loop), {side}"
PEER_LATENCY_RATIO_FIGURE = ("peer: {row}, latency p99 at 80 % of each side's max rate, citylogin / "
                             "node-oidc-provider on DynamoDB")
ADMIN_PAGE_RATIO = 1.5
# Round trips: goal per operation (refresh, pairing request, login with its challenge, /session/me, the
# OpenID Provider's token step and userinfo). The measured figure is a ratio of medians, so it is met when
# it rounds to the goal or below.
ROUND_TRIPS = {"refresh": ("POST /session/refresh", 1), "pairing": ("POST /registration/request_pairing_token", 1),
               "login": ("login: challenge + POST /login/", 3), "me": ("GET /session/me", 1),
               "token": ("OIDC token step: POST /oidc/token (a code)", 1), "userinfo": ("GET /oidc/userinfo", 1)}
# The console's account page: its round trips beyond its session read, i.e. the page's minus the same
# operator's GET /session/me (each an information row of its own).
CONSOLE_TRIPS = {"admin_page": "console: GET /admin/accounts/<uuid>",
                 "admin_me": "console: the operator's GET /session/me"}
CONSOLE_PAGE_BEYOND_ME = 1


def _row(figure: str, value, unit: str, goal: str, met: Callable[[float], bool] | None) -> dict:
    if value is None:
        status = "n/a"
    elif met is None:
        status = "info"
    else:
        status = "MET" if met(value) else "MISSED"
    return {"figure": figure, "value": value, "unit": unit, "goal": goal, "status": status}


def _get(tree: dict, *path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _ratio(a, b):
    return a / b if a is not None and b else None


def login_rows(r: dict) -> list[dict]:
    return [_row("POST /login/ p50 - Argon2id verify (paired)", _get(r, "login_post_minus_verify_paired", "p50"),
                 "ms", f"<= {LOGIN_OVERHEAD_MS:g} ms", lambda v: v <= LOGIN_OVERHEAD_MS)]


def dynamodb_rows(r: dict) -> list[dict]:
    calls = r.get("dynamodb_calls", {})
    per = lambda kind: _get(calls, kind, "per_request")  # noqa: E731
    return [
        _row("DynamoDB calls: POST /login/challenge", per("challenge"), "calls", "(part of login)", None),
        _row("DynamoDB calls: POST /login/", per("login_post"), "calls", "(part of login)", None),
        _row("DynamoDB calls: login (challenge + POST)", per("login_total"), "calls", "<= 3", lambda v: v <= 3.0),
        _row("DynamoDB calls: request_pairing_token", per("pairing_token"), "calls", "(QR issue)", None),
        _row("DynamoDB calls: QR redemption /device/register", per("qr_redemption"), "calls", "<= 3",
             lambda v: v <= 3.0),
        _row("DynamoDB calls: POST /session/refresh", per("refresh"), "calls", "<= 2", lambda v: v <= 2.0),
        _row("DynamoDB calls: GET /session/me", per("me"), "calls", "= 1", lambda v: abs(v - 1.0) <= 0.05),
        _row("DynamoDB calls: idle (no request, 0.5 s)", per("idle"), "calls", "(info: 0)", None),
    ]


def throughput_rows(r: dict) -> list[dict]:
    login, refresh = r.get("saturation_login", {}), r.get("saturation_refresh", {})
    return [
        _row("logins/s per server core (saturation)", login.get("per_server_core"), "/s", ">= 20",
             lambda v: v >= 20),
        _row("logins/s per machine core (os.cpu_count)", login.get("per_machine_core"), "/s", "(info)", None),
        _row("logins/s per core / bare Argon2id verifies/s per core", login.get("per_server_core_over_bare_argon2"),
             "x", "(info)", None),
        _row("bare Argon2id verifies/s per core (same run, ABBA)", _get(r, "argon2_bare", "per_core"), "/s",
             "(info)", None),
        _row("refreshes/s per server core (saturation)", refresh.get("per_server_core"), "/s",
             f">= {REFRESHES_PER_CORE}", lambda v: v >= REFRESHES_PER_CORE),
        _row("refreshes/s per machine core (os.cpu_count)", refresh.get("per_machine_core"), "/s", "(info)", None),
    ]


def floor_login_rows(r: dict) -> list[dict]:
    versus = r.get("logins_versus_floor", {})
    return [
        _row("logins per server CPU s: citylogin / the floor (DynamoDB behind the delaying proxy, ABBA)",
             versus.get("ratio"), "x", f">= {LOGINS_OVER_FLOOR:g}", lambda v: v >= LOGINS_OVER_FLOOR),
        _row("logins per server CPU s, citylogin (DynamoDB behind the delaying proxy)",
             _get(versus, "citylogin", "per_server_core"), "/s", "(info)", None),
        _row("logins per server CPU s, the floor (DynamoDB behind the delaying proxy)",
             _get(versus, "floor", "per_server_core"), "/s", "(info)", None),
    ]


def protected_rows(r: dict) -> list[dict]:
    seq = [_get(r, k, "p50") for k in ("seq_me", "seq_floor", "seq_getitem")]
    overhead = seq[0] - (seq[1] + seq[2]) if None not in seq else None
    load_me = r.get("load_me", {})
    return [
        _row("seq /session/me p50 - (/healthz + GetItem)", overhead, "ms", f"<= {ME_OVERHEAD_MS:g} ms",
             lambda v: v <= ME_OVERHEAD_MS),
        _row("load /session/me p99 / p50", _ratio(load_me.get("p99"), load_me.get("p50")), "x", "<= 3",
             lambda v: v <= 3.0),
    ]


def scale_rows(r: dict) -> list[dict]:
    sizes = _get(r, "scale", "sizes") or {}
    if len(sizes) < 2:
        return [_row("latency flat across user counts", None, "x", "0.8-1.2", None)]
    (small, at_small), (large, at_large) = min(sizes.items(), key=lambda kv: int(kv[0])), \
        max(sizes.items(), key=lambda kv: int(kv[0]))
    label = f"{int(large) // 1000}k/{int(small) // 1000}k"
    seeded = sum(s["seeding"]["seconds"] for s in sizes.values())
    flat = lambda v: FLAT[0] <= v <= FLAT[1]  # noqa: E731
    return [
        _row(f"/session/me p50 {label} users", _ratio(_get(at_large, "me", "p50"), _get(at_small, "me", "p50")),
             "x", "0.8-1.2", flat),
        _row(f"POST /login/ p50 {label} users",
             _ratio(_get(at_large, "login_post", "p50"), _get(at_small, "login_post", "p50")), "x", "0.8-1.2", flat),
        _row(f"seeding {int(large) // 1000}k users (clones)", seeded, "s", "(info: a few minutes)", None),
    ]


def scaling_rows(r: dict) -> list[dict]:
    two = r.get("two_processes", {})
    ratio = _ratio(_get(two, "me_2_workers", "rps"), _get(two, "me_1_worker", "rps"))
    return [_row("/session/me req/s, 2 workers / 1 worker", ratio, "x", "(info: scales >= 1.5x?)", None)]


def floor_rows(r: dict) -> list[dict]:
    versus = r.get("versus_floor", {})
    labels = {"login": "POST /login/", "refresh": "POST /session/refresh", "me": "GET /session/me"}
    return [_row(f"{label} p50 / floor p50", _get(versus, op, "ratio_p50"), "x", f"<= {FLOOR_RATIO:.2f}",
                 lambda v: v <= FLOOR_RATIO) for op, label in labels.items()]


def round_trip_rows(r: dict) -> list[dict]:
    operations = _get(r, "network", "operations") or {}
    trips = {op: _get(operations, op, "round_trips") for op in [*ROUND_TRIPS, *CONSOLE_TRIPS]}
    rows = [_row(f"round trips: {label}", trips[op], "trips", f"<= {goal} (rounded)",
                 lambda v, goal=goal: round(v) <= goal) for op, (label, goal) in ROUND_TRIPS.items()]
    rows += [_row(f"round trips: {label}", trips[op], "trips", "(info)", None) for op, label in CONSOLE_TRIPS.items()]
    beyond = trips["admin_page"] - trips["admin_me"] if None not in (trips["admin_page"], trips["admin_me"]) else None
    rows.append(_row("round trips: console account page beyond its session read (page - the operator's /session/me)",
                     beyond, "trips", f"<= {CONSOLE_PAGE_BEYOND_ME} (rounded)",
                     lambda v: round(v) <= CONSOLE_PAGE_BEYOND_ME))
    labels = {**{op: label for op, (label, _) in ROUND_TRIPS.items()}, **CONSOLE_TRIPS}
    rows += [_row(f"DynamoDB requests (proxy): {label}", _get(operations, op, "dynamodb_requests"), "requests",
                  "(info)", None) for op, label in labels.items()]
    return rows


def oidc_rows(r: dict) -> list[dict]:
    flow, refresh = r.get("oidc_code_flow", {}), r.get("refresh_per_server_cpu", {})
    rows = [_row("OIDC code flow: DynamoDB calls per flow", _get(flow, "dynamodb_calls_per_flow", "per_request"),
                 "calls", f"<= {OIDC_FLOW_CALLS}", lambda v: v <= OIDC_FLOW_CALLS)]
    for step in ("authorize", "complete", "token", "userinfo"):
        rows.append(_row(f"OIDC {step} p50 / GET /session/me p50", _get(flow, "ratio_p50", step), "x",
                         f"<= {OIDC_STEP_RATIO:g}", lambda v: v <= OIDC_STEP_RATIO))
    rows += [
        _row("refreshes per server CPU s: /oidc/token refresh grant / POST /session/refresh", refresh.get("ratio"),
             "x", f">= {OIDC_REFRESH_RATIO:g}", lambda v: v >= OIDC_REFRESH_RATIO),
        _row("/oidc/token refresh grants per server CPU second", _get(refresh, "oidc_refresh_grant",
                                                                      "per_server_cpu_second"), "/s", "(info)", None),
        _row("POST /session/refresh per server CPU second", _get(refresh, "session_refresh", "per_server_cpu_second"),
             "/s", "(info)", None),
    ]
    return rows


def admin_rows(r: dict) -> list[dict]:
    page = r.get("admin_account_page", {})
    return [
        _row("admin account page: DynamoDB calls", _get(page, "dynamodb_calls_per_page", "per_request"), "calls",
             f"<= {ADMIN_PAGE_CALLS}", lambda v: v <= ADMIN_PAGE_CALLS),
        _row("admin account page p50 / GET /session/me p50 (same operator)", page.get("ratio_p50"), "x",
             f"<= {ADMIN_PAGE_RATIO:g}", lambda v: v <= ADMIN_PAGE_RATIO),
    ]


# The import (bench/import_bench.py, SPEC §17): several accounts per batched read and per transaction, so a
# fraction of a call per account; a rerun of the same file writes nothing.
IMPORT_CALLS_PER_ACCOUNT = 0.1
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def import_rows(r: dict) -> list[dict]:
    at = r.get("import") or {}
    count, first, rerun = at.get("count"), at.get("first") or {}, at.get("rerun") or {}
    rerun_calls = _get(rerun, "dynamodb_calls", "by_table")
    rerun_writes = None if rerun_calls is None else sum(n for key, n in rerun_calls.items()
                                                         if account_write(key))
    size = f"{count:,} accounts" if count else "accounts"
    return [
        _row(f"import of {size}: accounts per second", first.get("accounts_per_second"), "/s", "info", None),
        _row(f"import of {size}: DynamoDB calls per account", _get(first, "dynamodb_calls", "per_account"),
             "calls", f"<= {IMPORT_CALLS_PER_ACCOUNT:g}", lambda v: v <= IMPORT_CALLS_PER_ACCOUNT),
        _row(f"import of {size}: accounts stored once", at.get("stored"), "accounts", f"= {count or 'N'}",
             lambda v: v == count),
        _row(f"import of {size} again: accounts per second", rerun.get("accounts_per_second"), "/s", "info", None),
        _row(f"import of {size} again: DynamoDB writes of accounts", rerun_writes, "calls", "= 0",
             lambda v: v == 0),
    ]


def account_write(operation_and_tables: str) -> bool:
    """A write naming any table but the key ring ("TransactWriteItems claims+users"): the command's process
    writes its own key-ring records (a heartbeat) whatever the file holds."""
    operation, _, tables = operation_and_tables.partition(" ")
    return operation in WRITES and tables != "key_ring"


def _citylogin_over(at: dict | None, side: str):
    """citylogin's requests per server CPU second over `side`'s in one row; issue 53's results named
    the ratios over node and over the gunicorn floor `ratio` and `citylogin_over_floor`."""
    if not at:
        return None
    if "citylogin_over" in at:
        return at["citylogin_over"].get(side)
    return at.get({"node": "ratio", "floor-gunicorn": "citylogin_over_floor"}.get(side, ""))


def peer_rows(r: dict) -> list[dict]:
    """The goal rows, per row: citylogin over node on DynamoDB and over the provider floor under its own
    server (n/a when that side did not run: --node-store memory, no --floor); information rows: over node
    on memory, each floor's ratio to node on memory (the most citylogin could reach under that server),
    the DynamoDB calls per request of citylogin and node on DynamoDB, and the latency under load
    (peer_latency_rows)."""
    rows = _get(r, "peer", "rows") or {}
    out = [_row(PEER_FIGURE.format(row=row), _citylogin_over(rows.get(row), "node-dynamodb"), "x", f">= {goal:g}",
                lambda v, goal=goal: v >= goal) for row, goal in PEER_GOALS.items()]
    out += [_row(PEER_OVER_FLOOR_FIGURE.format(row=row), _citylogin_over(rows.get(row), "floor-gunicorn"), "x",
                 f">= {goal:g}", lambda v, goal=goal: v >= goal) for row, goal in PEER_FLOOR_GOAL.items()]
    out += [_row(PEER_MEMORY_FIGURE.format(row=row), _citylogin_over(rows.get(row), "node"), "x", "(info)", None)
            for row in PEER_GOALS]
    for row in PEER_GOALS:
        for name, ratio in (_get(rows, row, "floor_ratios") or {}).items():
            out.append(_row(PEER_FLOOR_FIGURE.format(row=row, floor=name), ratio, "x", "(info)", None))
        for side, label in PEER_CALLS_SIDES.items():
            calls = _get(rows, row, side, "dynamodb_calls", "per_request")
            if calls is not None:
                out.append(_row(PEER_CALLS_FIGURE.format(row=row, side=label), calls, "calls", "(info)", None))
    return out + peer_latency_rows(r)


def peer_latency_rows(r: dict) -> list[dict]:
    """Information rows of the latency under load (bench/peer_latency.py): p50, p95 and p99 per row at
    citylogin and at node on DynamoDB (each side that measured it), and citylogin's p99 over node's."""
    rows = _get(r, "peer", "latency", "rows") or {}
    out = []
    for row, at in rows.items():
        for side, label in PEER_CALLS_SIDES.items():
            for q in ("p50", "p95", "p99"):
                value = _get(at, side, f"{q}_ms")
                if value is not None:
                    out.append(_row(PEER_LATENCY_FIGURE.format(row=row, q=q, side=label), value, "ms", "(info)", None))
        ratio = _ratio(_get(at, "citylogin", "p99_ms"), _get(at, "node-dynamodb", "p99_ms"))
        if ratio is not None:
            out.append(_row(PEER_LATENCY_RATIO_FIGURE.format(row=row), ratio, "x", "(info)", None))
    return out


def goal_rows(results: dict) -> list[dict]:
    return (login_rows(results) + floor_rows(results) + floor_login_rows(results) + round_trip_rows(results)
            + dynamodb_rows(results) + throughput_rows(results) + oidc_rows(results) + admin_rows(results)
            + peer_rows(results) + protected_rows(results) + scale_rows(results) + scaling_rows(results)
            + import_rows(results))


def merge_runs(per_run: list[list[dict]]) -> list[dict]:
    """One row per figure: `runs` holds each run's value; `value` is their median; the status is
    MET only if every run met the goal, MISSED if any missed it or measured nothing (n/a if none
    measured it); an information row stays info."""
    merged: dict[str, dict] = {}
    for rows in per_run:
        for row in rows:
            into = merged.setdefault(row["figure"], {**row, "runs": [], "statuses": []})
            into["runs"].append(row["value"])
            into["statuses"].append(row["status"])
    out = []
    for row in merged.values():
        statuses, values = row.pop("statuses"), [v for v in row["runs"] if v is not None]
        row["value"] = statistics.median(values) if values else None
        if not values:
            row["status"] = "n/a"
        elif "info" in statuses:
            row["status"] = "info"
        elif "MISSED" in statuses or "n/a" in statuses:  # a run that measured nothing proves nothing
            row["status"] = "MISSED"
        else:
            row["status"] = "MET"
        out.append(row)
    return out


def render_goals(rows: list[dict]) -> str:
    width = max([58, *(len(row["figure"]) for row in rows)])
    lines = [f"{'figure':{width}} {'value':>9} {'runs':22} {'unit':8} {'goal':22} status", "-" * (width + 72)]
    for row in rows:
        value = "-" if row["value"] is None else f"{row['value']:.2f}"
        runs = ", ".join("-" if v is None else f"{v:.2f}" for v in row.get("runs", [row["value"]]))
        lines.append(f"{row['figure']:{width}} {value:>9} {runs:22} {row['unit']:8} {row['goal']:22} {row['status']}")
    return "\n".join(lines)
