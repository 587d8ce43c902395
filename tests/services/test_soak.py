"""A randomized soak on two server processes sharing one DynamoDB Local: several users and
devices log in, confirm, refresh, log out, unbind, pair and relabel device classes in random
order, some devices only refresh (as an open web tab does). Every session is bound to its device
key (DPoP, SPEC §12) and half the requests are replayed, proof and all, to either process: none may
be accepted twice. Now and then a device deletes its
account while other threads pair, recover, renew and log in on it, and a new user takes its place
(issue 16). Then an invariant checker reads DynamoDB (SPEC §5): at no moment more live sessions per
user than the limit, nor of one class than the class's limit, nor two on one device, every session
the presence lists is live and every live one is listed, and no request was served for a session
that was over (issue 8, defect 1); and nothing of a deleted account is left, every certificate it
was issued being in the CRL (SPEC §4); and every session that ended has its session-revoked event in
the feed, delivered at least once to an app that polls and to one that is pushed to (SPEC §11),
each checked by its jti-deduplicated log against DynamoDB. Every account has a synced passkey, and
half the logins use it in place of the password (issue 21): the limit counts devices, not passkeys.
The devices also sign in to OpenID Connect apps, added as the soak runs, whose refresh tokens are retried
and raced and whose codes are replayed (tests/support/soak_apps.py, SPEC §14): no session ends by a refresh
race inside the grace, no Back-Channel Logout is lost, and no request is answered with a server error.
It runs for SOAK_SECONDS (95 by default) at any length: its time limit grows with it."""
from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field

import boto3
import jwt
import pytest
import requests

from citylogin.client.api import CityloginError, Client, ConcurrentLoginRequired
from common.timefmt import parse_iso
from common.database import dynamo
from sessions.models import Liveness
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.class_limits import class_violations
from tests.support.deletion_check import Deleted, leftovers_of, missing_from_crl, serial_of
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.services import running_process, running_service
from tests.support.soak_apps import AppTraffic, add_app, received_logouts
from tests.support.soak_requests import RequestLedger, server_log
from tests.support.soft_authenticator import SoftAuthenticator

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "95"))
PUBLIC_URL = "https://soak.example"  # both processes' CITYLOGIN_PUBLIC_URL
USERS, DEVICES_PER_USER, WORKERS = 4, 4, 8
STAMP_SLACK = 3  # seconds
SETTINGS = {"session_idle_timeout": 60, "access_token_ttl": 30, "max_concurrent_devices": 1,
            "concurrency_policy": "ask", "refresh_reuse_grace": 10, "max_registered_devices": 8,
            "pairing_tokens_per_hour": 1000, "login_max_failures": 100000,
            "login_max_failures_per_ip": 100000, "challenges_per_minute_per_ip": 100000, "log_level": "ERROR"}
# Deletions are swept every second and closed 10 s after they finish, so the check finds nothing left. The
# sweepers finish a deletion begun that long ago whose request did not; with 2 s both processes' sweepers
# repeated every deletion alongside its own request while it ran, tripling its writes (issue 82, item 10).
DELETION_SETTINGS = {"deletion_sweep_interval": 1, "deletion_settle_seconds": 10}
# The servers' access lines (INFO), each with its X-Request-ID: a request that got no answer is reported with
# the server's own line for it (tests/support/soak_requests.py).
ACCESS_LINES = {"log_level": "INFO"}

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
    recovery_codes: list[str] = field(default_factory=list)
    issued: set[int] = field(default_factory=set)  # serials of every certificate handed out
    user_uuid: str = ""


@dataclass
class DeletedUser:
    username: str
    user_uuid: str
    issued: set[int]
    asked_at: float  # when DELETE /account was sent


class Soak:
    def __init__(self, urls: list[str], seed: int, ledger: RequestLedger | None = None) -> None:
        self.urls, self.random = urls, random.Random(seed)
        self.ledger = ledger or RequestLedger({})  # names each request by the step that sends it
        self.users: list[User] = []
        self.served: list[tuple[str, float, float]] = []  # (session_id, sent, answered) of 200s
        self.ops: Counter = Counter()
        self.errors: list[str] = []
        self.deleted: list[DeletedUser] = []
        self.deleted_names: set[str] = set()
        self.passkeys: dict[str, SoftAuthenticator] = {}  # each account's one synced passkey, by user_uuid
        self._lock = threading.Lock()
        self.apps = AppTraffic(urls, self.random, grace=SETTINGS["refresh_reuse_grace"], ops=self.ops,
                               errors=self.errors, lock=self._lock)

    # --- set-up ------------------------------------------------------------------------------

    def client(self, key_file=None) -> Client:
        return Client(self.random.choice(self.urls), key_file=key_file, timeout=30)

    def create_users(self) -> None:
        for _ in range(USERS):
            self.users.append(self.new_user())

    def new_user(self) -> User:
        name = unique_name("soak")
        first = self.client()
        first.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        user = User(name, [Device(first, refresh_only=True)], recovery_codes=list(first.recovery_codes),
                    user_uuid=first.key_file.user_uuid)
        self.note_certificate(user, first)
        first.login(PASSWORD, force=True)
        self.add_passkey(first)
        for _ in range(DEVICES_PER_USER - 1):
            device = self.pair(first, name)
            self.note_certificate(user, device)
            user.devices.append(Device(device))
        return user

    def add_passkey(self, client: Client) -> None:
        """A passkey synced to every device of the account (its counter stays 0, as synced ones do)."""
        authenticator = SoftAuthenticator(PUBLIC_URL, backup_eligible=True, backed_up=True, counter_step=0)
        options = client._call("POST", "/account/passkeys/options", {"password": PASSWORD})
        client._call("POST", "/account/passkeys", {"credential": authenticator.create(options)})
        with self._lock:
            self.passkeys[client.key_file.user_uuid] = authenticator

    def log_in(self, client: Client, *, force: bool) -> None:
        """With the password, or half the time with the account's passkey in its place."""
        authenticator = self.passkeys.get(client.key_file.user_uuid)
        if authenticator is None or self.random.random() < 0.5:
            client.login(PASSWORD, force=force)
            return
        with self._lock:
            self.ops["passkey_login"] += 1
        options = client.passkey_options(username=client.key_file.username if self.random.random() < 0.5 else None)
        client.login(passkey=authenticator.get(options), force=force)

    def note_certificate(self, user: User, client: Client) -> None:
        with self._lock:
            user.issued.add(serial_of(client.key_file.client_cert_pem))

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
        # Over the address both processes answer to, so that the proof is good on either (SPEC §12).
        headers = client.auth_headers("GET", PUBLIC_URL + "/session/me")
        response = requests.get(client.base_url + "/session/me", headers=headers, timeout=30)
        if response.status_code == 200:
            self.served_ok(client, sent)
            self.replay(headers)
        elif response.status_code == 401 and response.json().get("code") == "session_revoked":
            client.access_token = client.refresh_token = None

    def replay(self, headers: dict[str, str]) -> None:
        """An attacker who saw the request sends it again, to either process: the proof counts once."""
        if "DPoP" not in headers or self.random.random() < 0.5:
            return
        with self._lock:
            self.ops["proof_replay"] += 1
        again = requests.get(self.random.choice(self.urls) + "/session/me", headers=headers, timeout=30)
        if again.status_code == 200:
            with self._lock:
                self.errors.append(f"a DPoP proof was accepted twice: {again.status_code}")

    def login(self, device: Device, *, force: bool = False) -> None:
        client = self.on_any(device.client)
        try:
            try:
                self.log_in(client, force=force)
            except ConcurrentLoginRequired as required:
                if self.random.random() < 0.4:
                    self.ops["confirm"] += 1
                    self.on_any(client).confirm(required.body["confirm_token"])
        except CityloginError as error:
            # A device unbound by another worker meanwhile; a confirmation that came too late.
            if error.code not in ("device_revoked", "invalid_confirm_token") and not self.was_deleted(client):
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
        self.note_certificate(user, fresh)
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
        with self._lock:
            if not self.users:  # every user is being deleted and replaced right now
                return
            user = self.random.choice(self.users)
        with user.lock:
            device = self.random.choice(user.devices)
        if not device.lock.acquire(blocking=False):
            return
        kind = "refresh_only" if device.refresh_only else self.random.choices(
            ["login", "force", "me", "refresh", "logout", "unbind", "relabel", "renew", "delete", "app"],
            weights=[30, 4, 40, 12, 8, 3, 5, 2, 1, 20])[0]
        try:
            with self.ledger.doing(f"{kind} step of device {device.client.key_file.device_id[:8]}"):
                self.one_step(kind, user, device)
        except Exception as error:  # a worker must not die silently: the test reports it
            self.errors.append(f"{kind} step: {type(error).__name__}: {error}")
        finally:
            device.lock.release()

    def one_step(self, kind: str, user: User, device: Device) -> None:
        if kind == "refresh_only":
            return self.refresh_only_step(device)
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
        elif kind == "renew":
            self.renew(user, device)
        elif kind == "delete":
            self.delete_during_pairing(user, device)
        elif kind == "relabel":
            self.relabel(user, device)
        elif kind == "app":
            self.apps.step(self.on_any(device.client))
        else:
            self.unbind_and_pair(user, device)

    # --- deletions, and what races them (issue 16) ---------------------------------------------

    def was_deleted(self, client: Client) -> bool:
        return client.key_file.username in self.deleted_names

    def renew(self, user: User, device: Device) -> None:
        client = self.on_any(device.client)
        if not client.access_token:
            return
        try:
            client.renew(new_key=self.random.random() < 0.5)
        except CityloginError:
            return  # the session ended meanwhile, or the account is being deleted
        self.note_certificate(user, client)

    def delete_during_pairing(self, user: User, device: Device) -> None:
        """Delete the account from `device` while other threads redeem pairing codes, recover a
        device and renew and log in the others; then a new user takes its place."""
        holder = self.on_any(device.client)
        with self._lock:
            if user not in self.users or len(self.users) < USERS - 1 or not holder.access_token:
                return  # at most two deletions at once: the others keep the usual load going
            self.users.remove(user)  # no new step picks it; steps under way race the deletion
        try:
            with self.ledger.doing("two pairing codes"):
                payloads = [self.on_any(holder).request_pairing()["qr_code"] for _ in range(2)]
        except CityloginError:
            payloads = []
        step = self.ledger.now_doing()
        racers = [self.racer(step, "racing pairing", self.race_pairing, user, p) for p in payloads]
        racers.append(self.racer(step, "racing recovery", self.race_recovery, user))
        racers += [self.racer(step, f"racing renewal and login of device {d.client.key_file.device_id[:8]}",
                              self.race_device, user, d) for d in user.devices if d is not device]
        for racer in racers:
            racer.start()
        time.sleep(self.random.uniform(0, 0.3))
        self.deleted_names.add(user.username)
        asked_at = time.time()
        with self.ledger.doing("DELETE /account by the holder"):
            response = self.delete_account(holder)
        for racer in racers:
            racer.join(timeout=60)
        if response.status_code != 204:
            self.errors.append(f"DELETE /account answered {response.status_code}: {response.text[:200]}")
        with self._lock:
            self.deleted.append(DeletedUser(user.username, user.user_uuid, user.issued, asked_at))
        with self.ledger.doing("the new user in its place"):
            replacement = self.new_user()
        with self._lock:
            self.users.append(replacement)

    def racer(self, step: str, part: str, race, *args) -> threading.Thread:
        """A thread running `race(*args)` as `part` of `step`; what it raises is the soak's error."""
        def run() -> None:
            with self.ledger.doing(step), self.ledger.doing(part):
                try:
                    race(*args)
                except Exception as error:
                    self.errors.append(f"{self.ledger.now_doing()}: {type(error).__name__}: {error}")
        return threading.Thread(target=run)

    def delete_account(self, holder: Client):
        """DELETE /account; a racing login may displace the holder first (limit 1): log in again."""
        for _ in range(5):
            response = self.on_any(holder)._send_authenticated("DELETE", "/account", json={"password": PASSWORD})
            if response.status_code != 401 or response.json().get("reason") == "account_deleted":
                return response
            holder.login(PASSWORD, force=True)
        return response

    def race_pairing(self, user: User, payload: str) -> None:
        self.ops["race_pair"] += 1
        device = self.client()
        try:
            device.pair(payload, username=user.username, password=PASSWORD)
        except CityloginError:
            return
        self.note_certificate(user, device)

    def race_recovery(self, user: User) -> None:
        with self._lock:
            code = user.recovery_codes.pop() if user.recovery_codes else None
        if code is None:
            return
        self.ops["race_recover"] += 1
        device = self.client()
        try:
            device.recover(code, username=user.username, password=PASSWORD)
        except CityloginError:
            return
        self.note_certificate(user, device)

    def race_device(self, user: User, device: Device) -> None:
        if not device.lock.acquire(timeout=5):
            return
        try:
            self.ops["race_renew_login"] += 1
            self.renew(user, device)
            self.login(device, force=True)
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


def deletion_leftovers(client, tables: dynamo.TableNames, deleted: list[DeletedUser], crl_pem: bytes) -> list[str]:
    """What is left of each deleted account, and its certificates missing from the CRL."""
    left = leftovers_of(client, tables, [Deleted(gone.user_uuid, gone.username, f"{gone.username}@example.com",
                                                 gone.asked_at) for gone in deleted])
    found = []
    for gone in deleted:
        found += [f"{gone.username}: {line}" for line in left[gone.user_uuid]]
        found += [f"{gone.username}: certificate {serial:x} not in the CRL"
                  for serial in missing_from_crl(crl_pem, gone.issued)]
    return found


def wait_for_the_sweeper(client, tables: dynamo.TableNames, deleted: list[DeletedUser]) -> None:
    """Until every deleted account's tombstone is gone (the sweeper's last pass), and the CRL
    cache of each process (15 s) has passed since the last deletion."""
    deadline = time.monotonic() + 60
    while deleted and time.monotonic() < deadline:
        keys = [{"user_uuid": {"S": gone.user_uuid}} for gone in deleted]
        left = [k for i in range(0, len(keys), 100) for k in client.batch_get_item(RequestItems={tables.users: {
            "Keys": keys[i:i + 100], "ConsistentRead": True}})["Responses"][tables.users]]
        if not left:
            break
        time.sleep(1)
    time.sleep(max(0.0, 16 - (time.time() - max((g.asked_at for g in deleted), default=0))))


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


SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def ended_sessions_with_events(client, tables: dynamo.TableNames) -> tuple[set[str], Counter]:
    """(the sessions whose record says they ended by a write, the feed's session-ended events per session)."""
    def scan(table):
        pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        return [dynamo.from_item(i) for page in pages for i in page["Items"]]
    ended = {s["session_id"] for s in scan(tables.sessions) if s["status"] == "revoked"}
    # An app's grant ended alone (a late refresh reuse, a replayed code) has a row naming the app: not a session's end.
    return ended, Counter(row["session_id"] for row in scan(tables.security_events) if "client_id" not in row)


def session_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["events"][SESSION_REVOKED]["subject"]["session"]["id"]


def drain_poll(url: str, app: dict[str, str]) -> dict[str, str]:
    """Every event the app's stream holds, acknowledged as received: {jti: session_id}."""
    got, acks = {}, []
    for _ in range(1000):
        body = requests.post(url + "/ssf/poll", json={"returnImmediately": True, "maxEvents": 200, "ack": acks},
                             auth=(app["client_id"], app["client_secret"]), timeout=30).json()
        acks = list(body["sets"])
        got.update({jti: session_of(token) for jti, token in body["sets"].items()})
        if not acks:
            return got
    raise AssertionError("the poll never ran dry")


def count_server_errors(monkeypatch) -> list[str]:
    """Every answer of 500 or above that any request of this process meets, as "METHOD path status"."""
    from requests.adapters import HTTPAdapter
    seen: list[str] = []
    send = HTTPAdapter.send

    def counting(self, request, *args, **kwargs):
        response = send(self, request, *args, **kwargs)
        if response.status_code >= 500:
            seen.append(f"{request.method} {request.path_url.split('?')[0]} {response.status_code}")
        return response
    monkeypatch.setattr(HTTPAdapter, "send", counting)
    return seen


def wait_for(check, *, seconds: float) -> None:
    """Until check() is true, or `seconds` passed (the assertions after it say what is missing)."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(1)


# The checks after a run, the sweeper's last pass and the pushers' backoff included, take about a minute.
CHECK_SECONDS = 240


@pytest.mark.timeout(SOAK_SECONDS + 120 + CHECK_SECONDS)
def test_randomized_soak_on_two_processes_keeps_every_invariant(dynamodb_endpoint, data_dir, monkeypatch, tmp_path):
    prefix = f"soak{os.getpid()}_"
    tables = dynamo.TableNames.with_prefix(prefix)
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": prefix,
                      **FAST_ARGON2, **RAISED_LIMITS, **SETTINGS, **DELETION_SETTINGS, **ACCESS_LINES,
                      "public_url": PUBLIC_URL,
                      "device_class_limits": ",".join(f"{c}={n}" for c, n in CLASS_LIMITS.items())})
    server_errors = count_server_errors(monkeypatch)
    with ExitStack() as stack:
        logs = [server_log(tmp_path, i) for i in range(2)]
        urls = [stack.enter_context(running_service("citylogin", env, args=("serve",), log_path=log)) for log in logs]
        ledger = RequestLedger(dict(zip(urls, logs, strict=True)))
        ledger.install(monkeypatch)
        stack.callback(ledger.stop)
        receiver, backchannel = (stack.enter_context(running_process(
            [sys.executable, "-m", "tests.support.push_receiver", str(port)], port=port, env={}))
            for port in (free_port(), free_port()))
        polled = add_app(env, "soak-poll")
        add_app(env, "soak-push", "--push-url", receiver + "/push")
        soak = Soak(urls, seed=int(os.environ.get("SOAK_SEED", "8")), ledger=ledger)
        soak.apps.add(env, backchannel)
        soak.create_users()
        client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        wide = widen_limits(client, tables, soak)
        until = time.monotonic() + SOAK_SECONDS
        steady = soak.client()  # an account of its own whose session lives through the run
        steady.register(username=unique_name("steady"), email=f"{unique_name('steady')}@example.com", password=PASSWORD)
        steady.login(PASSWORD)
        background = [soak.apps.keep_adding(env, backchannel, every=max(10.0, SOAK_SECONDS / 4), until=until),
                      soak.apps.keep_reusing_late(steady, until=until)]
        soak.run(SOAK_SECONDS)
        for thread in background:
            thread.join()
        wait_for_the_sweeper(client, tables, soak.deleted)
        crl_pem = requests.get(urls[0] + "/device/crl.pem", timeout=30).content
        ended, events = ended_sessions_with_events(client, tables)
        polled_events = drain_poll(urls[1], polled)
        owed = soak.apps.owed(ended)
        # The pushers' lease and backoff (1, 2, 4 ... s after a failed push).
        wait_for(lambda: ended <= {session_of(t) for t in requests.get(receiver + "/received", timeout=10).json()[
            "sets"]} and owed <= received_logouts(backchannel), seconds=120)
        pushed_sets = requests.get(receiver + "/received", timeout=10).json()["sets"]
        logouts = received_logouts(backchannel)
    pushed_events = {session_of(token) for token in pushed_sets}  # deduplicated, as a receiver does by jti
    left_of_deleted = deletion_leftovers(client, tables, soak.deleted, crl_pem)
    rule = Liveness(idle_timeout=SETTINGS["session_idle_timeout"])
    violations = check_invariants(client, tables, limit=1, rule=rule, served=soak.served, user_limits=wide)
    violations += check_class_limits(client, tables, rule=rule)
    reused = reuse_endings(client, tables)
    print(f"soak: {SOAK_SECONDS:.0f} s, {sum(soak.ops.values())} operations {dict(soak.ops)}, {len(soak.served)} "
          f"answered 200, 2 processes, {len(violations)} violations; {len(soak.deleted)} accounts deleted, "
          f"{sum(len(g.issued) for g in soak.deleted)} of their certificates, {len(left_of_deleted)} left behind")
    print(f"soak apps: {len(soak.apps.apps)} OIDC apps, {len(soak.apps.issued)} grants given, "
          f"{len(soak.apps.revoked)} revoked by a replay or a late reuse, {len(owed)} back-channel logouts owed, "
          f"{len(owed & logouts)} received, {len(owed - logouts)} lost; {len(reused)} sessions ended by a refresh "
          f"reuse; {len(server_errors)} server errors")
    print(f"soak requests: {ledger.latencies()}; {len(ledger.unanswered)} unanswered")
    assert not ledger.unanswered, "\n".join(ledger.report()[:5])
    assert not soak.errors, soak.errors[:5]
    assert not server_errors, server_errors[:10]
    assert not violations, violations[:10]
    assert not left_of_deleted, left_of_deleted[:10]
    assert not reused, "no session ends by a refresh race (the devices never reuse theirs; apps' reuses end grants)"
    assert soak.deleted and soak.ops["race_pair"] > 0
    assert soak.ops["refresh_only"] > 0 and soak.ops["confirm"] > 0 and soak.ops["unbind"] > 0
    assert soak.ops["relabel"] > 0
    assert soak.ops["proof_replay"] > 0  # and none accepted (soak.errors)
    assert soak.ops["passkey_login"] > 0
    assert soak.ops["app_added"] > 1 and soak.ops["code_replay"] > 0 and soak.ops["app_refresh_race"] > 0
    assert soak.ops["app_refresh_retry"] > 0 and soak.ops["app_late_reuse"] > 0
    print(f"soak events: {len(ended)} sessions ended by a write, {sum(events.values())} events in the feed, "
          f"{len(set(polled_events.values()))} delivered by poll, {len(pushed_events)} by push "
          f"({len(pushed_sets)} pushes with duplicates)")
    assert ended and set(events) == ended, "every session ended by a write has its event, and no other"
    assert ended <= set(polled_events.values()), sorted(ended - set(polled_events.values()))[:5]
    assert ended <= pushed_events, sorted(ended - pushed_events)[:5]
    assert owed and owed <= logouts, sorted(owed - logouts)[:5]


def reuse_endings(client, tables: dynamo.TableNames) -> list[str]:
    """The sessions whose record says a refresh-token reuse ended them."""
    pages = client.get_paginator("scan").paginate(TableName=tables.sessions, ConsistentRead=True)
    return [s["session_id"] for page in pages for s in map(dynamo.from_item, page["Items"])
            if s.get("revoked_reason") == "refresh_reuse"]
