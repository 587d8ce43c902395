"""bench/server_choice.py's pure parts (issue 87): the issue's rule (a candidate wins with more than 15% less
citylogin CPU per request than gunicorn on both userinfo and refresh AND every protection kept), the tables,
and the split candidate's nginx configuration (the shipped template, with the event streams and held polls
routed to a second upstream)."""
from __future__ import annotations

from pathlib import Path

from bench.nginx_front import STREAM_LOCATIONS, Tls, nginx_conf
from bench.server_choice import decide, render_protections, render_rows
from bench.server_protections import PROTECTIONS


def side(cpu: float) -> dict:
    return {"citylogin_cpu_ms": cpu, "nginx_cpu_ms": 0.1, "p50_ms": 2.0, "errors": 0}


def rows(userinfo: float, refresh: float) -> dict:
    return {"userinfo": {"gunicorn": side(1.0), "granian": side(userinfo)},
            "refresh": {"gunicorn": side(2.0), "granian": side(refresh)}}


def kept(*lost: str) -> dict:
    return {"gunicorn": {p: {"passed": True, "detail": "ok"} for p in PROTECTIONS},
            "granian": {p: {"passed": p not in lost, "detail": "seen"} for p in PROTECTIONS}}


def test_a_candidate_wins_with_more_than_fifteen_percent_less_cpu_on_both_rows_and_every_protection():
    decision = decide(rows(0.80, 1.60), kept())
    assert decision["winner"] == "granian"
    assert decision["candidates"]["granian"] == {"cpu_win": True, "protections_lost": [], "wins": True}


def test_fifteen_percent_exactly_or_one_row_alone_is_no_win():
    assert decide(rows(0.85, 1.0), kept())["winner"] is None  # userinfo at exactly 0.85
    assert decide(rows(0.50, 1.80), kept())["winner"] is None  # refresh only 10% less


def test_a_lost_protection_is_no_win_whatever_the_cpu_and_is_named():
    decision = decide(rows(0.5, 1.0), kept("open streams", "bad setting at start"))
    assert decision["winner"] is None
    assert decision["candidates"]["granian"]["protections_lost"] == ["bad setting at start", "open streams"]


def test_unchecked_protections_are_no_win():
    decision = decide(rows(0.5, 1.0), None)
    assert decision["winner"] is None and decision["candidates"]["granian"]["protections_lost"] is None


def test_the_tables_name_each_ratio_and_each_protections_test():
    table = render_rows(rows(0.8, 1.6))
    assert "| userinfo | granian | 0.800 | 0.100 | 2.00 | 0 | 0.80 |" in table
    protections = render_protections(kept("slow body"))
    assert "**lost**: seen" in protections
    assert all(f"`{test}`" in protections for _, test in PROTECTIONS.values())
    assert all(Path(test.split("::")[0]).exists() for _, test in PROTECTIONS.values())


def test_the_split_configuration_routes_streams_and_polls_to_the_second_upstream(tmp_path):
    tls = Tls.make(tmp_path)
    conf = nginx_conf(port=1, tls=tls, client_ca=tls.ca, crl=tls.ca, upstream="http://127.0.0.1:2",
                      streams="http://127.0.0.1:3", access_log=tmp_path / "access.log")
    assert "upstream citylogin_streams {\n    server 127.0.0.1:3;\n    keepalive 32;\n}" in conf
    for path in STREAM_LOCATIONS:
        assert f"location {path} {{\n        proxy_pass http://citylogin_streams;" in conf
    assert conf.index("location /session/events") < conf.index("location / {")
    assert "server 127.0.0.1:2;" in conf and "proxy_buffering    off;" in conf
    alone = nginx_conf(port=1, tls=tls, client_ca=tls.ca, crl=tls.ca, upstream="http://127.0.0.1:2", streams=None,
                       access_log=tmp_path / "access.log")
    assert "citylogin_streams" not in alone


def test_protections_alone_decide_no_win_but_name_what_each_lost():
    decision = decide({}, kept("held poll at stop"))
    assert decision["winner"] is None
    assert decision["candidates"]["granian"] == {"cpu_win": False, "protections_lost": ["held poll at stop"],
                                                 "wins": False}
