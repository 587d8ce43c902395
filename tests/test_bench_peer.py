"""The peer bench (bench/peer_bench.py) measures what its rows say: against citylogin under deploy/'s
gunicorn and node-oidc-provider (bench/peer/server.mjs) on its memory store and on DynamoDB Local
(bench/peer/dynamodb_adapter.mjs), one call of each row, made by the bench's own client code, gets the
answer the row counts (a whole flow down to userinfo, a rotated refresh token with an ID token, a redeemed
code, an active token at introspection), and an answer that is not one is not counted. The provider floor
(bench/peer_floor.py, under gunicorn and under granian) is held to the same answers, and every side to the
same refusals a provider owes: a code used twice, a refresh token two rotations old, a wrong client
secret, a wrong PKCE verifier. node on DynamoDB keeps its tokens in its table, of the design of
node-oidc-provider's DynamoDB example, and counts its calls. The latency under load (bench/peer_latency.py)
measures its rows at each side, every answer checked. Slow: it starts the five servers; it times nothing."""
from __future__ import annotations

import argparse
import uuid
from contextlib import ExitStack
from dataclasses import replace

import jwt
import pytest
import requests

from bench import goals, peer_bench, peer_latency, served_costs
from bench.peer_client import OidcClient
from common.database import dynamo

pytestmark = pytest.mark.slow
SIDES = ("citylogin", *peer_bench.NODES, *peer_bench.FLOORS)


@pytest.fixture(scope="module")
def sides(dynamodb_endpoint, tmp_path_factory):
    with ExitStack() as stack:
        yield peer_bench.start_sides(stack, dynamodb_endpoint, tmp_path_factory.mktemp("peer"),
                                     {"threads": 1, "codes_per_batch": 2}, run=uuid.uuid4().hex[:6], floor=True)


def answers_of(client: OidcClient) -> list[requests.Response]:
    """Every answer `client` gets from now on (a hook on its session, so the bench's code is unchanged)."""
    seen: list[requests.Response] = []
    client.http.hooks["response"].append(lambda answer, *args, **kwargs: seen.append(answer))
    return seen


@pytest.mark.parametrize("name", SIDES)
def test_a_whole_flow_goes_from_the_authorization_request_to_userinfo(sides, name):
    client = sides[name].flow[0]
    seen = answers_of(client)
    assert client.flow_call()() is not None
    assert seen[0].status_code in (302, 303)                      # the authorization request
    token, userinfo = seen[-2], seen[-1]
    assert token.status_code == 200 and {"access_token", "id_token"} <= token.json().keys()
    assert userinfo.status_code == 200 and userinfo.json()["sub"]


@pytest.mark.parametrize("name", SIDES)
def test_a_refresh_answers_an_id_token_and_a_new_refresh_token_that_works(sides, name):
    sides[name].new_grants()
    client, call = sides[name].refresh[0], sides[name].grants[0]
    seen = answers_of(client)
    assert call() is not None
    first = seen[-1].json()
    assert seen[-1].status_code == 200 and first["id_token"] and first["refresh_token"]
    assert call() is not None                                      # with the rotated refresh token
    assert seen[-1].json()["refresh_token"] != first["refresh_token"]
    assert client.refresh_call("not-a-refresh-token")() is None


def test_the_devices_own_refresh_beside_an_apps_rotates_its_bearer_session(sides):
    """bench/served_costs.py --session-refresh: each call is a POST /session/refresh that answered a new pair,
    kept for the next call; a refusal is not counted."""
    client = served_costs.bearer_session(sides["citylogin"].running.side.base_url)
    call, first = served_costs.session_refresh_call(client), client.refresh_token
    assert call() is not None and call() is not None               # the second with the rotated token
    assert client.refresh_token != first and client.token_type == "Bearer"
    client.refresh_token = "not-a-refresh-token"
    assert call() is None


@pytest.mark.parametrize("name", SIDES)
def test_codes_made_beforehand_are_redeemed_with_their_verifiers(sides, name):
    client = sides[name].code[0][0]
    call = client.code_call(client.codes(2))
    seen = answers_of(client)
    assert call() is not None and call() is not None
    assert [answer.status_code for answer in seen] == [200, 200]
    assert all("id_token" in answer.json() for answer in seen)


@pytest.mark.parametrize("name", SIDES)
def test_userinfo_introspection_and_discovery_answer_what_their_rows_count(sides, name):
    access_token = sides[name].token.tokens()["access_token"]
    reader = sides[name].readers[0]
    seen = answers_of(reader)
    assert reader.userinfo_call(access_token)() is not None
    assert seen[-1].status_code == 200 and seen[-1].json()["sub"]
    assert reader.introspection_call(access_token)() is not None
    assert seen[-1].status_code == 200 and seen[-1].json()["active"] is True
    assert reader.discovery_call()() is not None
    assert seen[-1].status_code == 200 and seen[-1].json()["token_endpoint"]
    assert reader.introspection_call("not-a-token")() is None      # inactive: not what the row counts
    assert reader.userinfo_call("not-a-token")() is None


@pytest.mark.parametrize("name", SIDES)
def test_a_threads_codes_are_made_by_its_people_in_turn_and_all_redeemed(sides, name):
    (call,) = peer_bench._code_calls(sides[name], 4)
    seen = answers_of(sides[name].code[0][0])
    assert all(call() is not None for _ in range(4))
    subjects = [jwt.decode(answer.json()["id_token"], options={"verify_signature": False})["sub"] for answer in seen]
    assert len(subjects) == 4 and subjects[:2] == subjects[2:] and subjects[0] != subjects[1]


@pytest.mark.parametrize("name", SIDES)
def test_a_code_or_a_refresh_token_used_twice_is_refused_and_so_are_wrong_credentials(sides, name):
    client = sides[name].code[0][0]
    (code, pkce), (other, _), (third, third_pkce) = client.codes(3)
    assert client.code_call([(code, pkce)])() is not None
    assert client.code_call([(code, pkce)])() is None                # spent
    assert client.code_call([(other, pkce)])() is None               # another code's verifier
    refresh_token = client.redeem(third, third_pkce)["refresh_token"]
    rotating = client.refresh_call(refresh_token)
    assert rotating() is not None and rotating() is not None         # two rotations
    assert client.refresh_call(refresh_token)() is None              # rotated away (past citylogin's retry grace)
    wrong = OidcClient(replace(client.side, client_secret=client.side.client_secret + "x"))
    assert wrong.introspection_call(sides[name].token.tokens()["access_token"])() is None


def test_a_row_mirrors_the_servers_blocks_and_pools_each_side(sides):
    cfg = {**peer_bench.QUICK, "rounds": 1, "block_s": 0.2, "warmup_s": 0.1, "settle_s": 0.0, "count_n": 2}
    row = peer_bench.measure_row("discovery", sides, cfg)
    assert set(row) == {*SIDES, "ratio", "citylogin_over", "floor_ratios", "citylogin_over_floor"}
    assert set(row["citylogin_over"]) == set(SIDES) - {"citylogin"}
    assert row["ratio"] == row["citylogin_over"]["node"]
    assert set(row["floor_ratios"]) == set(peer_bench.FLOORS)
    for name in SIDES:
        assert row[name]["completed"] > 0 and row[name]["errors"] == 0
        assert len(row[name]["blocks_per_server_cpu_second"]) == 2    # A B C D E E D C B A: two blocks each
    assert {name for name in SIDES if "dynamodb_calls" in row[name]} == {"citylogin", "node-dynamodb"}
    assert row["node-dynamodb"]["dynamodb_calls"]["per_request"] == 0   # discovery reads nothing


def test_node_on_dynamodb_keeps_its_tokens_in_its_table_of_the_example_s_design(sides, dynamodb_endpoint):
    node, db = sides["node-dynamodb"], dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint)
    table = node.running.about["table"]
    described = db.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "modelId", "KeyType": "HASH"}]
    assert {index["IndexName"] for index in described["GlobalSecondaryIndexes"]} == {
        "uidIndex", "grantIdIndex", "userCodeIndex"}
    refresh_token = node.refresh[0].tokens()["refresh_token"]
    stored = db.get_item(TableName=table, Key={"modelId": {"S": f"RefreshToken-{refresh_token}"}})
    assert stored["Item"]["payload"]["M"]["grantId"]["S"] == stored["Item"]["grantId"]["S"]


def test_node_on_dynamodb_counts_its_calls_per_request_and_node_on_memory_makes_none(sides):
    counted = peer_bench.count_calls("refresh", sides["node-dynamodb"], 2)
    assert counted is not None and counted["answered"] == 2
    assert counted["by_operation"]["UpdateItem RefreshToken"] >= 1      # the rotated refresh token, written
    assert counted["per_request"] == sum(counted["by_operation"].values())
    assert peer_bench.count_calls("refresh", sides["node"], 2) is None


def test_chosen_rows_are_measured_on_chosen_sides_alone(sides):
    """--rows and --sides: a row measured on citylogin and the floor alone (no node), and no other row."""
    chosen = {name: sides[name] for name in ("citylogin", "floor-gunicorn")}
    cfg = {**peer_bench.QUICK, "rounds": 1, "block_s": 0.2, "warmup_s": 0.1, "settle_s": 0.0, "count_n": 2}
    measured = peer_bench.measure(chosen, cfg, fresh=True, rows_measured=("discovery",))
    rows = measured["peer"]["rows"]
    assert list(rows) == ["discovery"]
    assert set(rows["discovery"]["citylogin_over"]) == {"floor-gunicorn"}
    assert rows["discovery"]["citylogin_over_floor"] == rows["discovery"]["citylogin_over"]["floor-gunicorn"]
    assert measured["peer"]["method"]["node_sides"] == []
    assert "node-oidc-provider" not in peer_bench.render_peer(measured["peer"])


def test_row_and_side_names_are_parsed_in_order_and_unknown_ones_refused():
    rows = peer_bench._names(peer_bench.ROWS)
    assert rows("flow, userinfo,flow") == ("flow", "userinfo")
    for wrong in ("flows", "flow,nope", "", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            rows(wrong)
    with pytest.raises(SystemExit):
        peer_bench.main(["--sides", "citylogin,node-memory"])


def test_the_latency_under_load_measures_each_latency_row_at_every_side_and_keeps_its_shape(sides):
    cfg = {"latency_max_threads": 2, "latency_max_s": 0.3, "latency_threads": 3, "latency_s": 0.3,
           "latency_load": 0.8}
    chosen = {name: sides[name] for name in ("citylogin", "node-dynamodb")}
    latency = peer_latency.measure_latency(chosen, cfg, ("discovery", "userinfo", "refresh"), log=lambda _: None)
    assert latency["method"] == cfg
    assert list(latency["rows"]) == ["userinfo", "refresh"] and all(set(at) == set(chosen)
                                                                   for at in latency["rows"].values())
    for at in latency["rows"].values():
        for figures in at.values():
            assert figures["max_rps"] > 0 and figures["target_rps"] == pytest.approx(0.8 * figures["max_rps"])
            assert figures["errors"] == figures["max_errors"] == 0
            assert figures["samples"] == figures["due"] > 0
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert "node-dynamodb" in peer_latency.render_latency(latency)
    rows = {row["figure"]: row for row in goals.peer_rows({"peer": {"rows": {}, "latency": latency}})}
    assert rows[goals.PEER_LATENCY_RATIO_FIGURE.format(row="refresh")]["status"] == "info"
