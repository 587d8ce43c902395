"""A randomized soak on two server processes sharing one DynamoDB Local: several users and
devices log in, confirm, refresh, log out, unbind, pair and relabel device classes in random
order, some devices only refresh (as an open web tab does). Then an invariant checker reads
DynamoDB (SPEC §5): at no moment more live sessions per user than the limit, nor of one class
than the class's limit, nor two on one device, every session the
presence lists is live and every live one is listed, and no request was served for a session
that was over (issue 8, defect 1)."""
from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field

import boto3
import pytest

from citylogin.client import CityloginError, Client, ConcurrentLoginRequired
from common import dynamo
from common.timefmt import parse_iso
from session_manager.models import Liveness
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.support.class_limits import class_violations
from tests.support.live import PASSWORD
from tests.support.services import running_service

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "95"))
USERS, DEVICES_PER_USER, WORKERS = 4, 4, 8
STAMP_SLACK = 3  # seconds
SETTINGS = {"session_idle_timeout": 60, "access_token_ttl": 30, "max_concurrent_devices": 1,
            "concurrency_policy": "ask", "refresh_reuse_grace": 10, "max_registered_devices": 8,
            "pairing_tokens_per_hour": 1000, "login_max_failures": 100000,
            "login_max_failures_per_ip": 100000, "challenges_per_minute_per_ip": 100000, "log_level": "ERROR"}

# Per-class limits (issue 16, item 8): half the users get a wider total (an operator's per-user
# limit), so that the class limits, not the total, are what binds them; devices get relabelled.
CLASS_LIMITS = {"mobile": 1, "desktop": 1}
WIDE_LIMIT = 3
RELABEL_TO = ["mobile", "desktop", "tablet", "other"]


@dataclass
class Device:
    client: Client
    refresh_only: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_refresh: float = 0.0


@dataclass
class User:
    username: str
    devices: list[Device]
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the list of devices


class Soak:
    def __init__(self, urls: list[str], seed: int) -> None:
        self.urls, self.random = urls, random.Random(seed)
        self.users: list[User] = []
        self.served: list[tuple[str, float, float]] = []  # (session_id, sent, answered) of 200s
        self.ops: Counter = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()

    # --- set-up ------------------------------------------------------------------------------

    def client(self, key_file=None) -> Client:
        return Client(self.random.choice(self.urls), key_file=key_file, timeout=30)

    def create_users(self) -> None:
        for _ in range(USERS):
            name = unique_name("soak")
            first = self.client()
            first.register(username=name, email=f"{name}@example.com", password=PASSWORD)
            user = User(name, [Device(first, refresh_only=True)])
            first.login(PASSWORD, force=True)
            for _ in range(DEVICES_PER_USER - 1):
                user.devices.append(Device(self.pair(first, name)))
            self.users.append(user)

    def pair(self, holder: Client, username: str) -> Client:
        payload = self.on_any(holder).request_pairing()["qr_code"]
        device = self.client()
        device.pair(payload, username=username, password=PASSWORD)
        return device

    def on_any(self, client: Client) -> Client:
        """The same device talking to a randomly chosen server this time."""
        client.base_url = self.random.choice(self.urls)
        return client

    # --- operations ------------------------------------------------------------------------

    def served_ok(self, client: Client, sent: float) -> None:
        with self._lock:
            self.served.append((client.session_id, sent, time.time()))

    def refresh(self, device: Device) -> None:
        client = self.on_any(device.client)
        if not client.refresh_token:
            return self.login(device, force=True)
        sent = time.time()
        try:
            client.refresh()
            self.served_ok(client, sent)
        except CityloginError:
            client.access_token = client.refresh_token = None

    def me(self, device: Device) -> None:
        client = self.on_any(device.client)
        if not client.access_token:
            return
        sent = time.time()
        response = client._send_authenticated("GET", "/session/me")
        if response.status_code == 200:
            self.served_ok(client, sent)
        elif response.status_code == 401 and response.json().get("code") == "session_revoked":
            client.access_token = client.refresh_token = None

    def login(self, device: Device, *, force: bool = False) -> None:
        client = self.on_any(device.client)
        try:
            try:
                client.login(PASSWORD, force=force)
            except ConcurrentLoginRequired as required:
                if self.random.random() < 0.4:
                    self.ops["confirm"] += 1
                    self.on_any(client).confirm(required.body["confirm_token"])
        except CityloginError as error:
            # A device unbound by another worker meanwhile; a confirmation that came too late.
            if error.code not in ("device_revoked", "invalid_confirm_token"):
                raise
        device.next_refresh = time.time() + self.random.uniform(18, 28)

    def logout(self, device: Device) -> None:
        client = self.on_any(device.client)
        if client.access_token:
            response = client._send_authenticated("POST", self.random.choice(
                ["/session/logout", "/session/logout", "/session/logout_all"]))
            if response.status_code == 204:
                client.access_token = client.refresh_token = None

    def unbind_and_pair(self, user: User, device: Device) -> None:
        holder = device.client
        with user.lock:
            others = [d for d in user.devices if d is not device and not d.refresh_only]
            if not holder.access_token or not others or len(user.devices) < 3:
                return
            victim = self.random.choice(others)
            response = self.on_any(holder)._send_authenticated(
                "POST", "/device/unbind", json={"device_id": victim.client.key_file.device_id})
            if response.status_code != 200:
                return
            user.devices.remove(victim)
        try:
            fresh = self.pair(holder, user.username)
        except CityloginError:
            return
        with user.lock:
            user.devices.append(Device(fresh))

    def relabel(self, user: User, device: Device) -> None:
        """Change the class of one of the user's devices (often a logged-in one) from this device."""
        client = self.on_any(device.client)
        if not client.access_token:
            return
        with user.lock:
            target = self.random.choice(user.devices).client.key_file.device_id
        response = client._send_authenticated("PATCH", f"/device/{target}", json={
            "device_name": "relabelled", "device_class": self.random.choice(RELABEL_TO)})
        if response.status_code == 409:
            self.ops["relabel_refused"] += 1
        elif response.status_code == 401:
            client.access_token = client.refresh_token = None
        elif response.status_code not in (200, 404):  # 404: unbound meanwhile
            raise AssertionError(f"relabel answered {response.status_code}: {response.text[:200]}")

    def step(self) -> None:
        user = self.random.choice(self.users)
        with user.lock:
            device = self.random.choice(user.devices)
        if not device.lock.acquire(blocking=False):
            return
        try:
            if device.refresh_only:
                self.refresh_only_step(device)
                return
            kind = self.random.choices(["login", "force", "me", "refresh", "logout", "unbind", "relabel"],
                                       weights=[30, 4, 40, 12, 8, 3, 5])[0]
            self.ops[kind] += 1
            if kind == "login":
                self.login(device)
            elif kind == "force":
                self.login(device, force=True)
            elif kind == "me":
                self.me(device)
            elif kind == "refresh":
                self.refresh(device)
            elif kind == "logout":
                self.logout(device)
            elif kind == "relabel":
                self.relabel(user, device)
            else:
                self.unbind_and_pair(user, device)
        except Exception as error:  # a worker must not die silently: the test reports it
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            device.lock.release()

    def refresh_only_step(self, device: Device) -> None:
        # An open tab: it never calls the API but refreshes when its token is about to expire,
        # and logs in again (confirming) if it was logged out.
        if time.time() < device.next_refresh:
            return
        self.ops["refresh_only"] += 1
        if device.client.refresh_token:
            self.refresh(device)
            device.next_refresh = time.time() + self.random.uniform(18, 28)
        else:
            self.login(device, force=self.random.random() < 0.5)

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds

        def work(seed: int) -> None:
            while time.monotonic() < deadline:
                self.step()
                time.sleep(0.002)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


# --- the invariant checker: DynamoDB state after the run ------------------------------------

def session_intervals(items: list[dict], rule: Liveness) -> list[tuple[str, str, str, int, int]]:
    """(user, device, session, start, end) of every session: live from its creation until it was
    revoked, reached its absolute end or went idle, whichever came first (seconds)."""
    intervals = []
    for s in items:
        start = int(parse_iso(s["created_at"]).timestamp())
        ends = [s["expires_epoch"], s["last_seen_epoch"] + rule.idle_timeout + rule.touch_every]
        if s["status"] != "active":
            ends.append(int(parse_iso(s["revoked_at"]).timestamp()))
        intervals.append((s["user_uuid"], s["device_id"], s["session_id"], start, min(ends)))
    return intervals


def most_at_once(spans: list[tuple[int, int]]) -> int:
    """The largest number of half-open [start, end) spans that share a moment."""
    events = sorted([(start, 1) for start, end in spans if end > start] + [(end, -1) for start, end in spans
                                                                         if end > start],
                    key=lambda e: (e[0], e[1]))
    most = current = 0
    for _, change in events:
        current += change
        most = max(most, current)
    return most


def check_invariants(client, tables: dynamo.TableNames, *, limit: int, rule: Liveness, served,
                     user_limits: dict[str, int] | None = None) -> list[str]:
    sessions = [dynamo.from_item(i) for page in client.get_paginator("scan").paginate(
        TableName=tables.sessions, ConsistentRead=True) for i in page["Items"]]
    presence = {p["user_uuid"]: p for p in (dynamo.from_item(i) for page in client.get_paginator("scan").paginate(
        TableName=tables.presence, ConsistentRead=True) for i in page["Items"])}
    intervals = session_intervals(sessions, rule)
    violations = []
    by_user, by_device = defaultdict(list), defaultdict(list)
    for user, device, _, start, end in intervals:
        by_user[user].append((start, end))
        by_device[device].append((start, end))
    detail = {s["session_id"]: (s["device_id"][:8], s["created_at"], s["status"], s.get("revoked_reason"),
                                s.get("revoked_at"), s["last_seen_epoch"]) for s in sessions}
    for user, spans in by_user.items():
        if most_at_once(spans) > (user_limits or {}).get(user, limit):
            mine = sorted((i for i in intervals if i[0] == user), key=lambda i: i[3])
            violations.append(f"user {user}: more than {(user_limits or {}).get(user, limit)} live sessions at once: "
                              + "; ".join(f"{start}-{end} {detail[sid]}" for _, _, sid, start, end in mine))
    violations += [f"device {d}: {n} live sessions at once" for d, spans in by_device.items()
                   if (n := most_at_once(spans)) > 1]
    # A request answered 200 for a session must have been answered while that session was live.
    # Stamps are whole seconds taken just before the transaction that ends a session commits,
    # and the commit may come a moment later: hence the slack.
    span_of = {sid: (start, end) for _, _, sid, start, end in intervals}
    for sid, sent, answered in served:
        start, end = span_of[sid]
        if not (start - STAMP_SLACK <= answered and sent - STAMP_SLACK < end):
            violations.append(f"session {sid} served at {sent:.1f}-{answered:.1f} outside its life {start}-{end}")
    # At rest, the presence lists exactly the live sessions.
    now = int(time.time())
    live = {sid for _, _, sid, start, end in intervals if start <= now < end}
    listed = {e["session_id"] for p in presence.values() for e in p.get("entries", {}).values()
              if e["expires_epoch"] > now and e["last_seen_epoch"] > rule.idle_cutoff(now)}
    violations += [f"session {sid} is live but not in the presence" for sid in live - listed]
    violations += [f"session {sid} is in the presence but not live" for sid in listed - live]
    return violations


def test_unit_most_at_once():
    assert most_at_once([(0, 10), (10, 20)]) == 1
    assert most_at_once([(0, 10), (9, 20)]) == 2
    assert most_at_once([(0, 10), (5, 5), (10, 12)]) == 1


def widen_limits(client, tables: dynamo.TableNames, soak: Soak) -> dict[str, int]:
    """An operator's per-user limit of WIDE_LIMIT for every other user (as `citylogin admin
    set-limit` stores it), so that their class limits bind first; {user_uuid: limit}."""
    wide = {}
    for user in soak.users[::2]:
        user_uuid = user.devices[0].client.key_file.user_uuid
        client.update_item(TableName=tables.users, Key={"user_uuid": {"S": user_uuid}},
                           UpdateExpression="SET max_concurrent_devices = :n",
                           ExpressionAttributeValues={":n": {"N": str(WIDE_LIMIT)}})
        wide[user_uuid] = WIDE_LIMIT
    return wide


def check_class_limits(client, tables: dynamo.TableNames, *, rule: Liveness) -> list[str]:
    """At no moment more live sessions of a class than its limit, each session counting under
    the class it logged in with until its device was relabelled (tests/support/class_limits.py)."""
    sessions = {s["session_id"]: s for s in (dynamo.from_item(i) for page in client.get_paginator("scan").paginate(
        TableName=tables.sessions, ConsistentRead=True) for i in page["Items"])}
    return class_violations(sessions, session_intervals(list(sessions.values()), rule), CLASS_LIMITS)


@pytest.mark.timeout(240)
def test_randomized_soak_on_two_processes_keeps_every_invariant(dynamodb_endpoint, data_dir):
    prefix = f"soak{os.getpid()}_"
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": prefix,
                      **FAST_ARGON2, **SETTINGS,
                      "device_class_limits": ",".join(f"{c}={n}" for c, n in CLASS_LIMITS.items())})
    with ExitStack() as stack:
        urls = [stack.enter_context(running_service("citylogin", env, args=("serve",))) for _ in range(2)]
        soak = Soak(urls, seed=int(os.environ.get("SOAK_SEED", "8")))
        soak.create_users()
        client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        wide = widen_limits(client, dynamo.TableNames.with_prefix(prefix), soak)
        soak.run(SOAK_SECONDS)
    rule = Liveness(idle_timeout=SETTINGS["session_idle_timeout"])
    violations = check_invariants(client, dynamo.TableNames.with_prefix(prefix), limit=1, rule=rule,
                                  served=soak.served, user_limits=wide)
    violations += check_class_limits(client, dynamo.TableNames.with_prefix(prefix), rule=rule)
    print(f"soak: {sum(soak.ops.values())} operations {dict(soak.ops)}, {len(soak.served)} answered 200, "
          f"2 processes, {len(violations)} violations")
    assert not soak.errors, soak.errors[:5]
    assert not violations, violations[:10]
    assert soak.ops["refresh_only"] > 0 and soak.ops["confirm"] > 0 and soak.ops["unbind"] > 0
    assert soak.ops["relabel"] > 0
