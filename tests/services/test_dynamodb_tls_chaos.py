"""The fault soak over TLS: two `citylogin serve` processes reach DynamoDB Local through a TCP line
(FaultyProxy, which passes TLS through) and nginx terminating TLS with a private CA, which they
trust through AWS_CA_BUNDLE. While devices of a few users (limit 1, policy "ask") log in, with and
without force, refresh and read /session/me on either process, the line goes slow (beyond the read
timeout), then silent, then is cut and restarted, then is healthy again. No answer is a 500: every
failure is a 503 service_unavailable with Retry-After, or an ordinary 4xx; both processes serve
again afterwards; and the invariant checker of the soak (SPEC §5) finds at no moment more live
sessions per user than the limit, and no refresh token was redeemed for two different successors."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field

import boto3
import pytest
import requests

from citylogin.client.api import CityloginError, Client
from common.database import dynamo
from sessions.models import Liveness
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.services.test_soak import check_invariants
from tests.support.dynamodb_tls import dynamodb_behind_tls
from tests.support.live import PASSWORD
from tests.support.nginx import require_nginx
from tests.support.services import running_service
from tests.support.tcp_faults import FaultyProxy
from tests.support.waiting import wait_until

USERS, DEVICES_PER_USER = 3, 2
SETTINGS = {"max_concurrent_devices": 1, "concurrency_policy": "ask", "session_idle_timeout": 60,
            "dynamodb_connect_timeout": 1, "dynamodb_read_timeout": 1.5, "dynamodb_max_attempts": 2,
            "challenges_per_minute_per_ip": 100000, "login_max_failures": 100000,
            "login_max_failures_per_ip": 100000, "log_level": "ERROR"}
# (phase, seconds, the line's delay per chunk: None cuts it and restarts it at the phase's end)
PHASES = [("healthy", 4, 0.0), ("slow", 5, 2.5), ("black hole", 4, 3600.0), ("cut", 3, None), ("healthy again", 6, 0.0)]


@dataclass(frozen=True)
class Answer:
    phase: str
    server: str
    path: str
    status: int
    code: str | None
    retry_after: str | None


@dataclass
class Chaos:
    """The devices' work and what it saw: every answer, the 200s per session, each refresh's successor."""
    urls: list[str]
    phase: str = "set-up"
    answers: list[Answer] = field(default_factory=list)
    served: list[tuple[str, float, float]] = field(default_factory=list)  # (session, sent, answered)
    successors: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    replays_served: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def device(self, url: str) -> Client:
        client = Client(url, auto_renew=False, timeout=30)
        client.http.hooks["response"].append(self.note)
        return client

    def note(self, response: requests.Response, *args, **kwargs) -> None:
        body = response.json() if response.headers.get("Content-Type", "").endswith("json") else {}
        server = next(url for url in self.urls if response.url.startswith(url))
        with self.lock:
            self.answers.append(Answer(self.phase, server, response.request.path_url, response.status_code,
                                       body.get("code") if isinstance(body, dict) else None,
                                       response.headers.get("Retry-After")))

    def work(self, client: Client, seed: int, until: threading.Event) -> None:
        rng = random.Random(seed)
        while not until.is_set():
            client.base_url = rng.choice(self.urls)
            try:
                if not client.access_token:
                    client.login(PASSWORD, force=rng.random() < 0.5)
                elif (kind := rng.random()) < 0.3:
                    self.refresh(client, rng)
                elif kind < 0.85:
                    self.me(client)
                else:
                    client.login(PASSWORD, force=rng.random() < 0.5)
            except CityloginError as error:
                if error.status == 401:  # displaced, or its refresh token was reused: log in again
                    client.access_token = client.refresh_token = None
            except Exception as error:  # a worker must not die silently: the test reports it
                with self.lock:
                    self.errors.append(f"{type(error).__name__}: {error}")
            time.sleep(rng.uniform(0.02, 0.1))

    def refresh(self, client: Client, rng: random.Random) -> None:
        """Refresh; half the time send the spent token again to either process, as a device that
        lost the answer would: within the grace window it gets the same successor, never another."""
        presented, session, sent = client.refresh_token, client.session_id, time.time()
        if presented is None or session is None:
            return
        successor = client.refresh()["refresh_token"]
        with self.lock:
            self.served.append((session, sent, time.time()))
            self.successors[presented].add(successor)
        if rng.random() < 0.5:
            client.base_url = rng.choice(self.urls)
            again = client._send("POST", "/session/refresh", json={"refresh_token": presented}, bind=True)
            if again.status_code == 200:
                with self.lock:
                    self.successors[presented].add(again.json()["refresh_token"])
                    self.replays_served += 1

    def me(self, client: Client) -> None:
        session, sent = client.session_id, time.time()
        response = client.request("GET", "/session/me")
        if response.status_code == 200 and session is not None:
            with self.lock:
                self.served.append((session, sent, time.time()))
        elif response.status_code == 401:
            client.access_token = client.refresh_token = None


def make_devices(chaos: Chaos) -> list[Client]:
    """USERS users with DEVICES_PER_USER devices each (the first registers and pairs the others)."""
    devices = []
    for _ in range(USERS):
        name = unique_name("tls")
        first = chaos.device(chaos.urls[0])
        first.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        first.login(PASSWORD, force=True)
        devices.append(first)
        for _ in range(DEVICES_PER_USER - 1):
            device = chaos.device(chaos.urls[1])
            device.pair(first.request_pairing()["qr_code"], username=name, password=PASSWORD)
            devices.append(device)
    return devices


def serves_again(url: str, device: Client) -> bool:
    """Ready within 20 s, then a login and a read on it succeed."""
    wait_until(lambda: requests.get(url + "/readyz", timeout=10).status_code == 200, timeout=20,
               what=f"{url} ready again")
    device.base_url = url
    device.login(PASSWORD, force=True)
    return device.request("GET", "/session/me").status_code == 200


def is_sound(answer: Answer) -> bool:
    """A success, an ordinary refusal, or DynamoDB's outage as the 503 a client retries after."""
    if answer.status == 503:
        return answer.code == "service_unavailable" and int(answer.retry_after or 0) > 0
    return answer.status < 500 and (answer.status < 400 or answer.code is not None)


@pytest.mark.timeout(180)
def test_slow_silent_and_cut_dynamodb_over_tls_never_answers_500_nor_breaks_the_limit(dynamodb_endpoint, data_dir,
                                                                                      tmp_path):
    require_nginx()
    prefix = unique_name("tlschaos") + "_"
    tables = dynamo.TableNames.with_prefix(prefix)
    plain = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1",
                         aws_access_key_id="local", aws_secret_access_key="local")
    dynamo.ensure_tables(plain, tables)  # over plain HTTP: the processes' start is then short
    with ExitStack() as stack:
        tls = stack.enter_context(dynamodb_behind_tls(dynamodb_endpoint, tmp_path / "tls"))
        line = FaultyProxy(f"http://127.0.0.1:{tls.port}")  # TCP: the TLS goes through it untouched
        stack.callback(lambda: line.close())
        env = {**config_env({"dynamodb_endpoint_url": f"https://127.0.0.1:{line.port}", "data_dir": data_dir,
                             "table_prefix": prefix, **FAST_ARGON2, **RAISED_LIMITS, **SETTINGS}),
               "AWS_CA_BUNDLE": str(tls.ca_file)}
        urls = [stack.enter_context(running_service("citylogin", env, args=("serve",))) for _ in range(2)]
        chaos = Chaos(urls)
        devices = make_devices(chaos)

        stop = threading.Event()
        workers = [threading.Thread(target=chaos.work, args=(device, seed, stop))
                   for seed, device in enumerate(devices)]
        for worker in workers:
            worker.start()
        for phase, seconds, delay in PHASES:
            chaos.phase = phase
            if delay is None:
                line.close()  # refused and reset, as a killed DynamoDB
            else:
                line.delay = delay
            time.sleep(seconds)
            if delay is None:
                line.delay = 0.0
                line = line.restarted()
        stop.set()
        for worker in workers:
            worker.join(timeout=60)

        chaos.phase = "after"
        for url in urls:
            assert serves_again(url, devices[0])

    violations = check_invariants(plain, tables, limit=1, rule=Liveness(idle_timeout=SETTINGS["session_idle_timeout"]),
                                  served=chaos.served)
    forks = sum(len(successors) > 1 for successors in chaos.successors.values())
    seen = Counter((a.phase, a.status) for a in chaos.answers)
    print(f"tls chaos: {len(chaos.answers)} answers {dict(sorted(seen.items()))}, {len(chaos.served)} served 200, "
          f"{sum(len(s) for s in chaos.successors.values())} successors of {len(chaos.successors)} refresh tokens, "
          f"{chaos.replays_served} of them sent again and served")

    assert not chaos.errors, chaos.errors[:5]
    assert [a for a in chaos.answers if not is_sound(a)] == []
    assert all(seen[(phase, 503)] for phase in ("slow", "black hole", "cut")), seen  # the faults reached the apps
    assert {a.server for a in chaos.answers if a.phase == "healthy again" and a.status == 200} == set(urls)
    assert not violations, violations[:10]
    assert chaos.replays_served and not forks, f"{forks} refresh tokens redeemed for two different successors"
