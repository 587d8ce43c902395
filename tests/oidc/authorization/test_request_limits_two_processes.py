"""The per-address limits of authorization requests and PARs (SPEC §14) hold across two `citylogin serve`
processes over one set of tables: the count is in DynamoDB, so an address that spread its requests over
both hosts is refused past the limit on either, while another address signs in on both."""
from __future__ import annotations

import base64
import os
import sys
import time
from contextlib import ExitStack
from itertools import cycle
from typing import Callable, TypeVar

import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.oidc.authorization.test_request_limits import an_address
from tests.support.notes import add_app
from tests.support.oidc import authorize_url, pkce_pair, query_of
from tests.support.ports import free_port
from tests.support.services import running_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # two server processes

REDIRECT = "https://app.example/callback"
LIMIT = 4
T = TypeVar("T")


@pytest.fixture(scope="module")
def hosts(dynamodb_endpoint, tmp_path_factory):
    """Two processes behind one trusted proxy each (the address is X-Forwarded-For's), LIMIT authorization
    requests and LIMIT pushed requests per address a minute, and an app."""
    ports = free_port(), free_port()
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("limits2p") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         "trusted_proxies": 1, "authorization_requests_per_minute_per_ip": LIMIT,
                         "pushed_requests_per_minute_per_ip": LIMIT, **FAST_ARGON2}),
           "CITYLOGIN_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
        app = add_app(env, "notes", redirect_uris=(REDIRECT,))
        urls = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin", "serve"], port=port, timeout=60,
            env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)})) for port in ports)
        yield urls, app


def _params(client_id: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
            "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}


def _authorize(host: str, address: str, client_id: str) -> str:
    """Where /oidc/authorize sent the browser: "kept" (the sign-in page) or the app's error."""
    answer = requests.get(authorize_url(host, **_params(client_id)), headers={"X-Forwarded-For": address},
                          allow_redirects=False, timeout=20)
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    return "kept" if "#oidc=" in location else query_of(location)["error"]


def _push(host: str, address: str, app: dict) -> int:
    return requests.post(host + "/oidc/par", data=_params(app["client_id"]), headers={"X-Forwarded-For": address},
                         auth=(app["client_id"], app["client_secret"]), timeout=20).status_code


def _in_one_minute(requests_of: Callable[[str, str], T]) -> T:
    """requests_of(busy, other), two fresh addresses, all made within one of the fixed minutes of the hosts'
    clock (this machine's) that the limits count in: started where at least 30 s of one are left, and made
    again on fresh addresses if a busy machine still took them past its end."""
    for _ in range(3):
        wait_until(lambda: time.time() % 60 < 30, timeout=35, interval=0.2, what="a minute with 30 s left")
        minute = time.time() // 60
        made = requests_of(an_address(), an_address())
        if time.time() // 60 == minute:
            return made
    raise AssertionError("three rounds of requests each ran over the end of a minute")


def test_an_address_spread_over_two_processes_is_held_to_one_limit(hosts):
    urls, app = hosts

    def requests_of(busy: str, other: str) -> tuple[list[str], list[str], list[int], list[int]]:
        return ([_authorize(host, busy, app["client_id"]) for host, _ in zip(cycle(urls), range(LIMIT + 2))],
                [_authorize(host, other, app["client_id"]) for host in urls],
                [_push(host, busy, app) for host, _ in zip(cycle(urls), range(LIMIT + 2))],
                [_push(host, other, app) for host in urls])
    answers, others, pushed, others_pushed = _in_one_minute(requests_of)
    assert answers == ["kept"] * LIMIT + ["temporarily_unavailable"] * 2
    assert others == ["kept", "kept"]
    assert pushed == [201] * LIMIT + [429] * 2
    assert others_pushed == [201, 201]
