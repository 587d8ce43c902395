"""SPEC §5's eviction order as people meet it, on two `citylogin serve` processes over one set of
tables: ten accounts each log in on device A, then B, then C (then D), back to back and on
alternating processes, a fraction of a second apart; the device displaced is always the one that
logged in first. For the force policy (limit 2, and an operator's limit of 3), for `ask` (the 409
lists the devices in that order, and a confirm displaces the first), for a class limit, for
least_recently_used, and with DynamoDB throttling and failing under the two processes.

Whole seconds cannot order logins a fraction of a second apart: before the sequence, a third of
such accounts displaced B and kept A."""
from __future__ import annotations

import base64
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable

import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client, CityloginError, ConcurrentLoginRequired
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.fixtures import problem
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.services import running_process

ACCOUNTS = 10
RETRIES = 40  # 503s a login may meet under the faults before the test gives up on it


@dataclass(frozen=True)
class Deployment:
    hosts: tuple[str, str]
    env: dict[str, str]
    faults: DynamoFaults


@pytest.fixture(scope="module", params=[("force", "oldest_login"), ("ask", "oldest_login"),
                                        ("force", "least_recently_used")], ids=lambda p: "-".join(p))
def deployment(request, dynamodb_endpoint, tmp_path_factory):
    policy, evict = request.param
    with ExitStack() as stack:
        faults = stack.enter_context(DynamoFaults(dynamodb_endpoint, seed=62))
        env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("evict") + "_",
                             "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                             "max_concurrent_devices": 2, "concurrency_policy": policy, "evict": evict,
                             "device_class_limits": "mobile=2", "password_hash_queue": 64,
                             "challenges_per_minute_per_ip": 10**6,
                             **FAST_ARGON2, **RAISED_LIMITS}),
               "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
        init = CliRunner().invoke(main, ["init"], env=env)
        assert init.exit_code == 0, init.output
        # Both processes reach DynamoDB Local through the proxy, which forwards everything until told.
        hosts = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin", "serve"], port=port, timeout=60,
            env={**env, "CITYLOGIN_DYNAMODB_ENDPOINT_URL": faults.url, "CITYLOGIN_HOST": "127.0.0.1",
                 "CITYLOGIN_PORT": str(port)})) for port in (free_port(), free_port()))
        yield Deployment(hosts=hosts, env=env, faults=faults)


@dataclass
class Account:
    devices: list[Client]   # in the order they log in; each on its own process, alternating

    @property
    def username(self) -> str:
        return self.devices[0].require_key_file().username


def new_account(deployment: Deployment, *, devices: int, classes: tuple[str, ...] = ()) -> Account:
    """An account with `devices` devices (the first registered, the rest paired from it), all logged out."""
    classes = classes or ("other",) * devices
    first = Client(deployment.hosts[0])
    name = unique_name()
    first.register(username=name, email=f"{name}@example.com", password=PASSWORD, device_name="A",
                   device_class=classes[0])
    first.login(PASSWORD, force=True)
    paired = []
    for index in range(1, devices):
        device = Client(deployment.hosts[index % 2])
        device.pair(first.request_pairing()["qr_code"], username=name, password=PASSWORD,
                    device_name="ABCDE"[index], device_class=classes[index])
        paired.append(device)
    first.logout()
    return Account(devices=[first, *paired])


def set_limit(deployment: Deployment, account: Account, limit: int) -> None:
    result = CliRunner().invoke(main, ["admin", "set-limit", account.username, str(limit), "--reason", "test"],
                                env=deployment.env)
    assert result.exit_code == 0, result.output


def log_in(device: Client, *, confirm_first: list[str] | None = None) -> list[str]:
    """Log `device` in and return the devices its login displaced. Under `ask`, the 409's devices
    are appended to `confirm_first` (in the order the 409 lists them) and the login is confirmed.
    A 503 (DynamoDB throttling or failing under the faults) is sent again, as a client would; a
    write that committed before its 503 was its last word is seen as such: a confirm already used
    starts over with a login, which replaces the device's own session."""
    displaced: list[str] = []
    for _ in range(RETRIES):
        try:
            try:
                answer = device.login(PASSWORD)
            except ConcurrentLoginRequired as asked:
                if confirm_first is None:
                    raise
                confirm_first.extend(d["device_id"] for d in asked.active_devices)
                answer = _confirmed(device, asked.confirm_token)
                if answer is None:
                    continue
        except CityloginError as error:
            if error.status != 503:
                raise
            continue
        return displaced + [e["device_id"] for e in answer["evicted"]]
    raise AssertionError(f"still 503 after {RETRIES} tries")


def _confirmed(device: Client, confirm_token: str) -> dict | None:
    """The confirm's answer; None once its token is found used by a confirm that answered 503."""
    for attempt in range(RETRIES):
        try:
            return device.confirm(confirm_token)
        except CityloginError as error:
            if attempt and error.code == "invalid_confirm_token":
                return None
            if error.status != 503:
                raise
    raise AssertionError(f"still 503 after {RETRIES} tries")


def me(device: Client) -> requests.Response:
    return device.request("GET", "/session/me")


def device_id(device: Client) -> str:
    return device.require_key_file().device_id


def assert_first_displaced(deployment: Deployment, account: Account, *, first: int = 0) -> None:
    """Log the account's devices in one after the other (from index `first` on): the last login
    displaces the one at `first` alone, and every other device stays in."""
    asked: list[str] = []
    logins = account.devices[first:]
    for device in logins[:-1]:
        assert log_in(device) == []
    displaced = logins[0]
    assert log_in(logins[-1], confirm_first=asked) == [device_id(displaced)]
    if asked:  # ask: the 409 listed the devices in the order a confirm displaces them
        assert asked == [device_id(d) for d in logins[:-1]]
    assert problem(me(displaced))[1:] == ("session_revoked", "displaced")
    for device in [*account.devices[:first], *logins[1:]]:
        assert me(device).status_code == 200, device.require_key_file().device_name


def accounts(deployment: Deployment, *, limit: int | None = None, **shape) -> list[Account]:
    """ACCOUNTS new accounts, made at once; each with an operator's `limit` if given. The limits are
    set one after the other: the CLI runs in this process, and click's CliRunner swaps os.environ and
    the standard streams while it runs, which threads must not do at once."""
    with ThreadPoolExecutor(ACCOUNTS) as pool:
        made = list(pool.map(lambda _: new_account(deployment, **shape), range(ACCOUNTS)))
    for account in made if limit is not None else ():
        set_limit(deployment, account, limit)
    return made


def for_each(made: list[Account], run: Callable[[Account], None]) -> None:
    with ThreadPoolExecutor(len(made)) as pool:
        list(pool.map(run, made))


def test_c_displaces_a_under_a_limit_of_two(deployment):
    for_each(accounts(deployment, devices=3), lambda account: assert_first_displaced(deployment, account))


def test_d_displaces_a_under_an_operators_limit_of_three(deployment):
    for_each(accounts(deployment, devices=4, limit=3), lambda account: assert_first_displaced(deployment, account))


def test_a_full_class_displaces_its_first_phone_not_the_older_laptop(deployment):
    def run(account: Account) -> None:
        log_in(account.devices[0])  # the laptop logs in first; then three phones
        assert_first_displaced(deployment, account, first=1)

    # mobile=2 and no total limit
    for_each(accounts(deployment, devices=4, limit=0, classes=("desktop", "mobile", "mobile", "mobile")), run)


def test_with_dynamodb_throttling_and_failing_the_first_login_is_still_the_one_displaced(deployment):
    made = accounts(deployment, devices=3)
    faults = deployment.faults
    faults.fail(Shape.THROTTLING, fraction=0.15)
    faults.fail(Shape.INTERNAL_SERVER_ERROR, fraction=0.1)
    # A committed login whose answer is damaged on its way: retried, and answered as the same transaction.
    faults.fail(Shape.CRC32_MISMATCH, operations={"TransactWriteItems"}, fraction=0.2)
    try:
        with ThreadPoolExecutor(ACCOUNTS) as pool:
            answers = list(pool.map(_abc, made))
    finally:
        faults.clear()
    assert sum(faults.answered.values()) > 0
    for account, evicted in zip(made, answers, strict=True):
        a, b, c = account.devices
        assert set(evicted) <= {device_id(a)}  # [] when C's login committed, answered 503, and was sent again
        assert problem(me(a))[1:] == ("session_revoked", "displaced")
        assert me(b).status_code == 200 and me(c).status_code == 200


def _abc(account: Account) -> list[str]:
    """A, B, C logged in one after the other: whom each login displaced, together."""
    a, b, c = account.devices
    return [*log_in(a), *log_in(b), *log_in(c, confirm_first=[])]
