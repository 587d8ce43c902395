"""The measurements table (every latency summary of the run) and the machine description."""
from __future__ import annotations

import os
import platform
from importlib import metadata

ROW_LABELS = {
    "argon2_hash": "Argon2id hash (in-process)", "argon2_verify": "Argon2id verify (in-process)",
    "certificate_issue": "certificate issue (in-process)", "registration": "POST /registration/ (client)",
    "login_full": "login: challenge + POST", "login_post": "login: POST /login/ alone",
    "argon2_verify_login_window": "Argon2id verify (during logins)",
    "login_post_minus_verify_paired": "login: POST - verify (paired)",
    "seq_floor": "seq GET /healthz (floor)", "seq_me": "seq GET /session/me",
    "seq_getitem": "seq DynamoDB GetItem (boto3)", "load_floor": "load GET /healthz (floor)",
    "load_me": "load GET /session/me",
    "saturation_login": "saturation: login (challenge + POST)", "saturation_refresh": "saturation: refresh",
}
TWO_PROCESS_LABELS = {"me_1_worker": "load /session/me, 1 worker", "me_2_workers": "load /session/me, 2 workers"}
HEADER = f"{'measurement':38} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'req/s':>8} {'err':>5}"


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _line(label: str, s: dict) -> str:
    return (f"{label:38} {s.get('n', 0):>6} {_fmt(s.get('p50')):>9} {_fmt(s.get('p95')):>9} "
            f"{_fmt(s.get('p99')):>9} {_fmt(s.get('rps'), '.0f'):>8} {_fmt(s.get('errors'), 'd'):>5}")


def _scale_lines(scale: dict) -> list[str]:
    lines = []
    for size, at in scale.get("sizes", {}).items():
        seeding = at["seeding"]
        lines.append(f"{'  seeded to ' + f'{int(size):,}' + ' users':38} {seeding['items']:>6} items in "
                     f"{seeding['seconds']:.1f}s ({_fmt(seeding['items_per_second'], '.0f')} items/s)")
        for key, label in (("me", "/session/me"), ("login_post", "POST /login/"),
                           ("login_post_minus_verify_paired", "POST /login/ - verify")):
            if key in at:
                lines.append(_line(f"  {int(size):,} users: {label}", at[key]))
    return lines


def _cpu_lines(results: dict) -> list[str]:
    lines = [f"{'CPU ms per request under load':38} {'server':>9} {'dynamodb':>9} {'loadgen':>9} {'total':>8}",
             "-" * 84]
    for key in ("load_floor", "load_me"):
        cpu = results.get(key, {}).get("cpu_ms_per_request", {})
        parts = [cpu.get(k) for k in ("server", "dynamodb", "loadgen")]
        total = sum(parts) if None not in parts else None
        lines.append(f"{ROW_LABELS[key]:38} " + " ".join(f"{_fmt(v):>9}" for v in parts) + f" {_fmt(total):>8}")
    for key in ("saturation_login", "saturation_refresh"):
        s = results.get(key)
        if s:
            lines.append(f"{ROW_LABELS[key]:38} cores used: server {s['server_cores_used']:.2f}, "
                         f"dynamodb {s['dynamodb_cores_used']:.2f}, loadgen {s['loadgen_cores_used']:.2f}")
    return lines


def _floor_lines(versus: dict) -> list[str]:
    """Each latency beside its floor's (bench/floor_app.py), measured interleaved (ABBA)."""
    if not versus:
        return []
    lines = ["", f"{'vs the floor (one at a time, ABBA)':38} {'n':>6} {'p50 ms':>9} {'floor p50':>9} {'ratio':>8}",
             "-" * 84]
    for op, label in (("login", "POST /login/"), ("refresh", "POST /session/refresh"), ("me", "GET /session/me")):
        at = versus.get(op)
        if at:
            lines.append(f"{label:38} {at['citylogin'].get('n', 0):>6} {_fmt(at['citylogin'].get('p50')):>9} "
                         f"{_fmt(at['floor'].get('p50')):>9} {_fmt(at.get('ratio_p50')):>8}")
    return lines


def _floor_login_lines(versus: dict) -> list[str]:
    """Logins per server CPU second of citylogin and the floor, DynamoDB behind the delaying proxy."""
    if not versus:
        return []
    title = f"logins, ABBA, DynamoDB {versus['delay_ms']:g} ms away"
    lines = ["", f"{title:38} {'n':>6} {'p50 ms':>9} {'/srv CPU s':>10} {'srv cores':>9} {'db cores':>8} {'err':>5}",
             "-" * 92]
    for side in ("citylogin", "floor"):
        at = versus[side]
        lines.append(f"{side:38} {at.get('completed', 0):>6} {_fmt(at.get('p50')):>9} "
                     f"{_fmt(at.get('per_server_core')):>10} {_fmt(at.get('server_cores_used')):>9} "
                     f"{_fmt(at.get('dynamodb_cores_used')):>8} {at.get('errors', 0):>5}")
    lines.append(f"{'citylogin / the floor':38} {_fmt(versus.get('ratio'))}")
    return lines


def _network_lines(network: dict) -> list[str]:
    """p50 without and with the proxy's delay, the round trips they imply, the requests it saw."""
    if not network:
        return []
    delay = network["delay_ms"]
    lines = ["", f"{f'round trips ({delay:g} ms each way)':38} {'p50 0ms':>9} {f'p50 {delay:g}ms':>9} "
                 f"{'trips':>6} {'requests':>8}  by request", "-" * 84]
    for op, at in network.get("operations", {}).items():
        detail = ", ".join(f"{k} x{v:.2f}" for k, v in at.get("by_request", {}).items())
        lines.append(f"{op:38} {_fmt(at['without_delay'].get('p50')):>9} {_fmt(at['with_delay'].get('p50')):>9} "
                     f"{_fmt(at.get('round_trips')):>6} {_fmt(at.get('dynamodb_requests')):>8}  {detail}")
    return lines


def _oidc_lines(results: dict) -> list[str]:
    """The code flow's steps beside GET /session/me, the refresh kinds per server CPU second."""
    flow, refresh = results.get("oidc_code_flow"), results.get("refresh_per_server_cpu")
    lines = []
    if flow:
        lines += ["", f"{'OIDC code flow (one at a time)':38} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} "
                      f"{'/ me p50':>8}", "-" * 84]
        for step, stats in flow["steps"].items():
            lines.append(f"{step:38} {stats.get('n', 0):>6} {_fmt(stats.get('p50')):>9} {_fmt(stats.get('p95')):>9} "
                         f"{_fmt(stats.get('p99')):>9} {_fmt(flow['ratio_p50'].get(step)):>8}")
        lines.append(_line("GET /session/me (the device, interleaved)", flow["floor_me"]))
        calls = flow["dynamodb_calls_per_flow"]
        lines.append(f"{'DynamoDB calls per flow':38} {_fmt(calls['per_request'])}  "
                     + ", ".join(f"{op} x{n:.2f}" for op, n in calls["by_operation"].items()))
    if refresh:
        lines += ["", f"{'refreshes, ABBA, ' + str(refresh['threads']) + ' threads':38} {'n':>6} {'p50 ms':>9} "
                      f"{'req/s':>8} {'/srv CPU s':>10} {'srv ms/req':>10} {'loadgen cores':>13}", "-" * 100]
        kinds = (("oidc_refresh_grant", "/oidc/token refresh grant"), ("session_refresh", "POST /session/refresh"))
        for key, label in kinds:
            at = refresh[key]
            figures = (_fmt(at.get("p50")), _fmt(at.get("rps"), ".0f"), _fmt(at.get("per_server_cpu_second"), ".0f"),
                       _fmt(at.get("server_cpu_ms_per_request")), _fmt(at.get("loadgen_cores_used")))
            lines.append(f"{label:38} {at.get('completed', 0):>6} {figures[0]:>9} {figures[1]:>8} {figures[2]:>10} "
                         f"{figures[3]:>10} {figures[4]:>13}")
    return lines


def _admin_and_argon2_lines(results: dict) -> list[str]:
    lines = []
    page = results.get("admin_account_page")
    if page:
        lines += ["", _line("admin account page", page["page"]), _line("GET /session/me (operator, interleaved)",
                                                                       page["floor_me"])]
        calls = page["dynamodb_calls_per_page"]
        lines.append(f"{'DynamoDB calls per page':38} {_fmt(calls['per_request'])}  "
                     + ", ".join(f"{op} x{n:.2f}" for op, n in calls["by_operation"].items()))
    bare, login = results.get("argon2_bare"), results.get("saturation_login", {})
    if bare:
        lines.append(f"{'bare Argon2id verifies per core':38} {_fmt(bare.get('per_core'))} ({bare['processes']} "
                     f"processes, rounds {bare.get('rounds_per_core')}); logins per server core "
                     f"{_fmt(login.get('per_server_core'))}, ratio "
                     f"{_fmt(login.get('per_server_core_over_bare_argon2'))}")
    return lines


def render_measurements(results: dict, info: dict) -> str:
    a2 = info["argon2_params"]
    lines = [f"cpus {info['cpus_usable']}/{info['cpu_count']}, Python {info['python']}, Argon2id t={a2['time_cost']} "
             f"m={a2['memory_cost']} KiB p={a2['parallelism']}, load average at start "
             f"{info['loadavg_start'][0]:.2f}, at end {info['loadavg_end'][0]:.2f}"
             + (f"; this run from {results['loadavg_start'][0]:.2f} to {results['loadavg_end'][0]:.2f}"
                if "loadavg_end" in results else ""), "", HEADER, "-" * 84]
    lines += [_line(label, results[key]) for key, label in ROW_LABELS.items() if key in results]
    lines += [_line(label, results["two_processes"][key]) for key, label in TWO_PROCESS_LABELS.items()
              if key in results.get("two_processes", {})]
    lines += _scale_lines(results.get("scale", {}))
    lines += _floor_lines(results.get("versus_floor", {})) + _floor_login_lines(results.get("logins_versus_floor", {}))
    lines += _network_lines(results.get("network", {}))
    lines += _oidc_lines(results) + _admin_and_argon2_lines(results)
    lines += ["", *_cpu_lines(results)]
    for name, error in results.get("errors", {}).items():
        lines.append(f"ERROR in {name}: {error}")
    return "\n".join(lines)


def machine_info(argon2_params: dict) -> dict:
    versions = {}
    for package in ("argon2-cffi", "argon2-cffi-bindings", "gunicorn", "flask", "boto3", "cryptography", "requests"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "loadavg_start": os.getloadavg(),
            "argon2_params": argon2_params, "versions": versions}
