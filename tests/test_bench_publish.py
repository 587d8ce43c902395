"""docs/reference/performance.md's tables are bench/publish.py's rendering of the committed results in
bench/published/, never typed by hand; a published file of any bench has the shared shape; and the peer
bench's figures (bench/peer_bench.py) become a table of their own, with its method."""
from __future__ import annotations

import json

import pytest

from bench import goals, publish


def test_the_performance_page_s_tables_are_the_rendering_of_the_published_results():
    files = publish.load_published()
    assert files, "no published benchmark results in bench/published/"
    page = publish.PAGE.read_text()
    assert publish.rendered_page(page, files) == page, \
        "docs/reference/performance.md's tables are stale: run .venv/bin/python bench/publish.py --docs"


def test_every_file_becomes_one_table_with_every_goal_row(tmp_path):
    row = {"figure": "open event streams per core", "value": 5000, "unit": "streams", "goal": ">= 1000",
           "status": "MET", "runs": [4800, 5000, 5100]}
    for name in ("a_bench", "b_streams"):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"source": f"bench/{name}.py", "when": "2026-11-23T22:00:00+00:00", "runs": 3, "goals": [row]}))
    rendered = publish.render(publish.load_published(tmp_path))
    assert rendered.index("a_bench.json") < rendered.index("b_streams.json")
    assert rendered.count("| open event streams per core | 5,000 streams | 4,800 / 5,000 / 5,100 | >= 1000 | MET |") \
        == 2


def test_a_row_without_a_status_is_refused():
    with pytest.raises(ValueError):
        publish.check({"source": "bench/x.py", "when": "2026-11-23", "goals": [{"figure": "f", "value": 1}]})


def _peer_run(ratio: float, citylogin_ms: float, node_ms: float, memory_ms: float = 1.0) -> dict:
    """One run of the peer bench as run_bench.py keeps it: every row alike, node on DynamoDB taking
    `node_ms` and making 6 DynamoDB calls a request, node on memory `memory_ms`."""
    def side(ms: float, calls: float | None = None) -> dict:
        counted = {"dynamodb_calls": {"n": 10, "per_request": calls, "by_operation": {}}} if calls else {}
        return {"cpu_ms_per_request": ms, "per_server_cpu_second": 1000 / ms, "p50_ms": 2 * ms, "completed": 500,
                "errors": 0, "seconds": 4.0, **counted}
    method = {"node": "v22.20.0", "oidc_provider": "9.13.3", "citylogin_server": "gunicorn -c deploy/gunicorn.conf.py",
              "node_sides": ["node", "node-dynamodb"], "aws_sdk": "3.1169.0",
              "configuration": "one confidential client", "threads": 4, "rounds": 2, "order": "ABCCBA",
              "node_warmup_s": 6.0, "warmup_s": 1.0, "block_s": 4.0, "codes_per_batch": 100, "code_batches": 3}
    rows = {row: {"citylogin": side(citylogin_ms, 1.0), "node-dynamodb": side(node_ms, 6.0), "node": side(memory_ms),
                  "citylogin_over": {"node-dynamodb": ratio, "node": memory_ms / citylogin_ms},
                  "ratio": memory_ms / citylogin_ms} for row in goals.PEER_GOALS}
    return {"peer": {"method": method, "rows": rows}}


def _peer_results(runs: list[dict]) -> dict:
    return {"source": "bench/peer_bench.py", "command": "bench/peer_bench.py --runs 3", "mode": "full",
            "runs": len(runs), "started_at": "2026-11-26T12:00:00+00:00", "results": {"runs": runs},
            "goals": goals.merge_runs([goals.peer_rows(run) for run in runs])}


def test_the_goal_rows_and_the_peer_table_name_a_peer_row_alike():
    assert publish.PEER_FIGURE == goals.PEER_FIGURE
    assert publish.PEER_OVER_FLOOR_FIGURE == goals.PEER_OVER_FLOOR_FIGURE


def test_the_peer_table_shows_both_nodes_each_side_s_median_and_whether_every_run_met_the_goal():
    published = publish.extract(_peer_results([_peer_run(1.6, 2.0, 5.2), _peer_run(1.4, 4.0, 9.6),
                                               _peer_run(1.5, 3.0, 7.5)]), source="x", command="y")
    assert [run["refresh"]["citylogin_over"]["node-dynamodb"] for run in published["peer"]["runs"]] == [1.6, 1.4, 1.5]
    table = publish.render_peer_table("bench/published/peer.json", published)
    assert "node-oidc-provider 9.13.3 on Node v22.20.0" in table and "2 × ABCCBA" in table
    assert "on its memory store (the side `node`" in table and "AWS SDK 3.1169.0" in table
    assert "median over 3 runs" in table and "each node for 6 s a row" in table
    # citylogin 3.00, node on DynamoDB 7.50, on memory 1.00; calls 1 and 6; p50s; 1.5x MISSED (one run 1.4)
    assert "| refresh | 3.00 | 7.50 | 1.00 | 1.00 | 6.00 | 6.00 | 15.0 | 1.50× | >= 1.5 | MISSED | 0.33× |" in table
    assert "| discovery | 3.00 | 7.50 | 1.00 | 1.00 | 6.00 | 6.00 | 15.0 | 1.50× | >= 1 | MET | 0.33× |" in table


def test_issue_53_s_published_files_with_node_on_memory_alone_still_render():
    run = _peer_run(2.5, 3.0, 7.5)
    for at in run["peer"]["rows"].values():
        del at["node-dynamodb"], at["citylogin_over"]
    del run["peer"]["method"]["node_sides"]
    table = publish.render_peer_table("bench/published/peer.json", publish.extract(_peer_results([run]), source="x",
                                                                                    command="y"))
    assert "| refresh | 3.00 | – | 1.00 | 1.00 | – | 6.00 | – | – | >= 1.5 | n/a | 0.33× |" in table


def test_with_the_provider_floor_the_peer_table_is_followed_by_the_floor_s_own():
    def with_floor(run: dict, ratio: float) -> dict:
        for at in run["peer"]["rows"].values():
            at["floor-gunicorn"] = {**at["node"], "cpu_ms_per_request": 1.5}
            at["floor-granian"] = {**at["node"], "cpu_ms_per_request": 1.0}
            at["floor_ratios"] = {"floor-gunicorn": ratio, "floor-granian": 2 * ratio}
            at["citylogin_over"]["floor-gunicorn"] = at["citylogin_over_floor"] = ratio / 2
        run["peer"]["method"]["floors"] = {"floor-gunicorn": "gunicorn --worker-class w", "floor-granian": "granian"}
        return run
    runs = [with_floor(_peer_run(0.4, 3.0, 1.0), 0.6), with_floor(_peer_run(0.4, 3.0, 1.0), 1.8)]
    published = publish.extract(_peer_results(runs), source="x", command="y")
    assert published["peer"]["runs"][1]["code"]["floor-granian"]["cpu_ms_per_request"] == 1.0
    table = publish.render_peer_table("bench/published/peer.json", published)
    assert "under citylogin's worker (`gunicorn --worker-class w`)" in table
    assert "| refresh | 1.50 | 1.00 | 1.20× | 2.40× | 0.60× | >= 0.8 | MISSED |" in table  # runs 0.3 and 0.9
    figures = {row["figure"]: row for row in published["goals"]}
    floor_row = figures[goals.PEER_FLOOR_FIGURE.format(row="code", floor="floor-granian")]
    assert floor_row["status"] == "info" and floor_row["runs"] == [1.2, 3.6]


def test_the_page_gets_both_parts_and_says_so_when_no_peer_figures_are_published(tmp_path):
    page = "\n".join(["# Performance", publish.START, "old", publish.END, "## Peer", publish.PEER_START, "old",
                      publish.PEER_END, ""])
    published = publish.extract(_peer_results([_peer_run(1.0, 2.0, 2.0)]), source="x", command="y")
    (tmp_path / "peer.json").write_text(json.dumps(published))
    rendered = publish.rendered_page(page, publish.load_published(tmp_path))
    assert "old" not in rendered and "| figure | value |" in rendered and "| discovery | 2.00 | 2.00 |" in rendered
    assert "No published results" in publish.rendered_page(page, [])


def _rebased_run() -> dict:
    """One run of bench/run_bench.py with the parts behind the delaying proxy (issue 53): logins per
    server CPU second against the floor, and the round trips of the token step, userinfo and the console."""
    def side(rate: float) -> dict:
        return {"per_server_core": rate, "completed": 400, "errors": 0, "server_cores_used": 1.8,
                "loadgen_cores_used": 0.2, "p50": 90.0, "latencies_ignored": [1, 2]}

    def trips(value: float) -> dict:
        return {"without_delay": {"p50": 5.0}, "with_delay": {"p50": 5.0 + 10 * value}, "round_trips": value,
                "dynamodb_requests": 1.0, "by_request": {"GetItem sessions": 1.0}}
    operations = {"token": trips(1.1), "userinfo": trips(0.9), "admin_page": trips(2.2), "admin_me": trips(1.0)}
    return {"logins_versus_floor": {"delay_ms": 5.0, "citylogin": side(38.0), "floor": side(40.0), "ratio": 0.95},
            "network": {"delay_ms": 5.0, "operations": operations}}


def test_the_rebased_rows_are_published_with_the_figures_behind_them():
    run = _rebased_run()
    results = {"source": "bench/run_bench.py", "command": "bench/run_bench.py --quick", "mode": "quick", "runs": 1,
               "started_at": "2026-11-26T12:00:00+00:00", "results": {"runs": [run]},
               "goals": goals.merge_runs([goals.goal_rows(run)])}
    published = publish.extract(results, source="x", command="y")
    summary = published["summaries"][0]
    assert summary["logins_versus_floor"]["ratio"] == 0.95
    assert summary["logins_versus_floor"]["floor"] == {"per_server_core": 40.0, "completed": 400, "errors": 0,
                                                       "server_cores_used": 1.8, "loadgen_cores_used": 0.2,
                                                       "p50": 90.0}
    assert set(summary["network"]["operations"]) == {"token", "userinfo", "admin_page", "admin_me"}
    table = publish.render_table("bench/published/bench.json", published)
    assert ("| logins per server CPU s: citylogin / the floor (DynamoDB behind the delaying proxy, ABBA) | 0.95× "
            "|  | >= 0.95 | MET |") in table
    assert "| round trips: OIDC token step: POST /oidc/token (a code) | 1.10 trips |  | <= 1 (rounded) | MET |" in table
    assert ("| round trips: console account page beyond its session read (page - the operator's /session/me) "
            "| 1.20 trips |  | <= 1 (rounded) | MET |") in table


def _with_latency(run: dict, p99: float, *, node: bool = True) -> dict:
    """`run` with bench/peer_latency.py's figures for refresh and userinfo (node on DynamoDB: if `node`)."""
    def side(scale: float) -> dict:
        return {"max_rps": 300.0 / scale, "max_errors": 0, "target_rps": 240.0 / scale, "achieved_rps": 239.0 / scale,
                "p50_ms": p99 * scale / 4, "p95_ms": p99 * scale / 2, "p99_ms": p99 * scale, "max_ms": 99.0,
                "samples": 1400, "errors": 1, "unsent": 0, "due": 1440, "seconds": 6.0}
    sides = {"citylogin": side(1.0), **({"node-dynamodb": side(2.0)} if node else {})}
    run["peer"]["latency"] = {"method": {"latency_max_threads": 8, "latency_max_s": 4.0, "latency_threads": 16,
                                         "latency_s": 6.0, "latency_load": 0.8},
                              "rows": {"refresh": sides, "userinfo": sides}}
    return run


def test_the_latency_under_load_is_a_table_of_each_run_after_the_peer_s():
    runs = [_with_latency(_peer_run(1.6, 2.0, 5.2), 20.0), _with_latency(_peer_run(1.4, 4.0, 9.6), 40.0, node=False)]
    published = publish.extract(_peer_results(runs), source="x", command="y")
    kept = published["peer"]["latency"]["runs"][0]["refresh"]["citylogin"]
    assert set(kept) == set(publish.PEER_LATENCY_KEPT) and kept["p99_ms"] == 20.0
    table = publish.render_peer_table("bench/published/peer.json", published)
    assert table.index(publish.PEER_HEADER) < table.index(publish.PEER_LATENCY_HEADER)
    assert "closed loop of 8 threads for 4 s, then an open loop at 80% of it for 6 s" in table
    assert "| refresh | citylogin | 300 / 300 | 240 / 240 | 5.00 / 10.0 | 10.0 / 20.0 | 20.0 / 40.0 | 1 / 1 |" in table
    # the second run did not measure node on DynamoDB: its figures are –
    assert "| userinfo | node on DynamoDB | 150 / – | 120 / – | 10.0 / – | 20.0 / – | 40.0 / – | 1 / – |" in table
    goal_figures = {row["figure"] for row in published["goals"]}
    assert goals.PEER_LATENCY_RATIO_FIGURE.format(row="userinfo") in goal_figures


def test_a_peer_file_without_latency_shows_no_latency_table():
    published = publish.extract(_peer_results([_peer_run(1.6, 2.0, 5.2)]), source="x", command="y")
    assert "latency" not in published["peer"]
    assert "Latency under load" not in publish.render_peer_table("bench/published/peer.json", published)
