"""Limits per kind of device (SPEC §5): every device has a class, CITYLOGIN_DEVICE_CLASS_LIMITS
caps live sessions per class on top of the total, the policy and the eviction order apply within
the full class, and the invariant holds under parallel logins on DynamoDB Local."""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict

import pytest
import requests

from citylogin.client.api import Client, ConcurrentLoginRequired
from pydantic import TypeAdapter, ValidationError

from common.config import ConcurrencyPolicy, ConfigError, EvictionOrder, load_settings, parse_class_limits
from devices.concurrency_policy import ConcurrentLoginRejected, ConfirmationRequired, choose_evictions
from devices import service as devices
from devices.models import DeviceClass
from sessions import service as sessions
from sessions.models import PresenceEntry
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, register_device
from tests.conftest import unique_name


def entry(device_id: str, device_class: str, login_epoch: int) -> PresenceEntry:
    return PresenceEntry(device_id=device_id, session_id="s" + device_id, device_name=device_id,
                         login_epoch=login_epoch, last_seen_epoch=login_epoch, expires_epoch=10 ** 10,
                         device_class=device_class)


PHONE, LAPTOP, OLD_PHONE = entry("phone", "mobile", 2), entry("laptop", "desktop", 3), entry("old", "mobile", 1)
LIMITS = {"mobile": 1, "desktop": 1}


def choose(others, *, device_class="mobile", limit=0, policy=ConcurrencyPolicy.FORCE, force=False):
    return choose_evictions(policy=policy, limit=limit, order=EvictionOrder.OLDEST_LOGIN, others=others,
                            force=force, device_class=device_class, class_limits=LIMITS)


def test_a_full_class_evicts_within_that_class_only():
    assert choose([PHONE, LAPTOP]) == [PHONE]                               # a second phone: the phone goes
    assert choose([LAPTOP], device_class="mobile") == []                   # a first phone beside a laptop
    assert choose([PHONE, LAPTOP], device_class="tablet") == []            # no tablet limit, no total
    assert choose([PHONE, LAPTOP], device_class="tablet", limit=2) == [PHONE]  # the total, oldest first


def test_the_total_still_counts_after_the_class():
    # Two phones live (left from before a class limit was set): the class needs two to go.
    assert choose([OLD_PHONE, PHONE, LAPTOP]) == [OLD_PHONE, PHONE]
    assert choose([OLD_PHONE, LAPTOP], limit=2) == [OLD_PHONE]             # one eviction serves both


def test_ask_and_reject_apply_to_the_full_class():
    with pytest.raises(ConfirmationRequired) as asked:
        choose([PHONE, LAPTOP], policy=ConcurrencyPolicy.ASK)
    assert asked.value.active == [PHONE]                                   # the 409 lists that class only
    assert choose([PHONE, LAPTOP], policy=ConcurrencyPolicy.ASK, force=True) == [PHONE]
    with pytest.raises(ConcurrentLoginRejected):
        choose([PHONE, LAPTOP], policy=ConcurrencyPolicy.REJECT)
    assert choose([PHONE], device_class="desktop", policy=ConcurrencyPolicy.REJECT) == []


def test_tv_is_a_class_a_limit_may_cap_and_no_registered_device_takes():
    """A device-flow app's screens count under "tv" (issue 63): CITYLOGIN_DEVICE_CLASS_LIMITS=tv=1 starts,
    an unknown class still stops the start; a registered device keeps the four (DeviceClass)."""
    assert load_settings(environ={"CITYLOGIN_DEVICE_CLASS_LIMITS": "tv=1"}).class_limits == {"tv": 1}
    assert parse_class_limits("mobile=1, tv=2") == {"mobile": 1, "tv": 2}
    for bad in ("watch=1", "TV=1", "tv=0", "tv=1,tv=2"):
        with pytest.raises(ValueError):
            parse_class_limits(bad)
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"CITYLOGIN_DEVICE_CLASS_LIMITS": "watch=1"})
    assert "CITYLOGIN_DEVICE_CLASS_LIMITS" in str(refused.value) and "'watch'" in str(refused.value)
    tv = entry("tv", "tv", 1)
    assert choose([tv, LAPTOP], device_class="tv", policy=ConcurrencyPolicy.FORCE) == []   # no tv limit here
    assert choose_evictions(policy=ConcurrencyPolicy.FORCE, limit=0, order=EvictionOrder.OLDEST_LOGIN,
                            others=[tv, LAPTOP], force=False, device_class="tv", class_limits={"tv": 1}) == [tv]
    with pytest.raises(ValidationError):
        TypeAdapter(DeviceClass).validate_python("tv")


def test_the_python_client_says_it_is_a_computer():
    from citylogin.client.api import guess_device_class
    assert guess_device_class() == "desktop"


def test_the_class_is_given_at_registration_shown_and_changed(make_server):
    url, _ = make_server()
    client = Client(url)
    client.register(username=unique_name(), email=f"{unique_name()}@example.com", password=PASSWORD,
                    device_class="mobile")
    client.login(PASSWORD)
    [device] = client.get_json("/device/list")["devices"]
    assert device["device_class"] == "mobile"
    renamed = client.request("PATCH", f"/device/{device['device_id']}",
                             json={"device_name": "tablet now", "device_class": "tablet"})
    assert renamed.json() == {"device_id": device["device_id"], "device_name": "tablet now", "device_class": "tablet"}
    assert client.get_json("/device/list")["devices"][0]["device_class"] == "tablet"
    for bad_class in ("phone", "tv"):  # tv: a device-flow screen's class, never a registered device's
        bad = client.request("PATCH", f"/device/{device['device_id']}", json={"device_name": "x",
                                                                               "device_class": bad_class})
        assert problem(bad)[:2] == (400, "invalid_field")
    refused = requests.post(f"{url}/registration/", json={"username": unique_name(), "email": "a@example.com",
                                                          "password": PASSWORD, "device_class": "watch"}, timeout=30)
    assert problem(refused)[:2] == (400, "invalid_field")


def test_ask_lists_only_the_full_class(make_server):
    url, ctx = make_server(max_concurrent_devices=0, device_class_limits="mobile=1,desktop=1")
    laptop = register_device(url)  # the Python client guesses "desktop" for itself
    phone = add_device(ctx, laptop, name="phone", device_class="mobile")
    tablet = add_device(ctx, laptop, name="tablet", device_class="tablet")
    second_phone = add_device(ctx, laptop, name="second phone", device_class="mobile")
    laptop.login(PASSWORD)
    phone.login(PASSWORD)
    tablet.login(PASSWORD)                        # other classes, no total: no question
    with pytest.raises(ConcurrentLoginRequired) as asked:
        second_phone.login(PASSWORD)
    assert [d["device_name"] for d in asked.value.active_devices] == ["phone"]
    second_phone.confirm(asked.value.confirm_token)
    assert problem(phone.request("GET", "/session/me"))[1:] == ("session_revoked", "displaced")
    for still_live in (laptop, tablet, second_phone):
        assert still_live.request("GET", "/session/me").status_code == 200


def test_parallel_logins_never_leave_two_live_sessions_of_one_class(make_server):
    # Ten phones and ten laptops of one user log in at once, from two apps on one DynamoDB Local,
    # under the force policy (every login displaces within its class): at the end, and in what
    # /session/me answers, at most one session of each class is live.
    url, ctx = make_server(max_concurrent_devices=0, device_class_limits="mobile=1,desktop=1",
                           concurrency_policy="force", max_registered_devices=30)
    second_url, _ = make_server(max_concurrent_devices=0, device_class_limits="mobile=1,desktop=1",
                                concurrency_policy="force", max_registered_devices=30)
    owner = register_device(url)
    devices = [(add_device(ctx, owner, name=f"{cls}{i}", device_class=cls), cls)
               for cls in ("mobile", "desktop") for i in range(10)]
    start, answers = threading.Barrier(len(devices)), []

    def log_in(index: int, client: Client) -> None:
        client.base_url = (url, second_url)[index % 2]
        start.wait(30)
        try:
            client.login(PASSWORD)
            answers.append("ok")
        except Exception as failure:  # a 503 after too many retries is allowed; a second live session is not
            answers.append(type(failure).__name__)

    threads = [threading.Thread(target=log_in, args=(i, c)) for i, (c, _) in enumerate(devices)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answers.count("ok") >= 2, answers
    live = Counter(cls for client, cls in devices
                   if client.access_token and client.request("GET", "/session/me").status_code == 200)
    assert live["mobile"] <= 1 and live["desktop"] <= 1, live
    entries = sessions.live_devices(ctx, user_uuid=owner.key_file.user_uuid)
    by_class = Counter(e.device_class for e in entries)
    assert by_class["mobile"] <= 1 and by_class["desktop"] <= 1, by_class
    assert by_class == live, (by_class, live)


# --- relabelling a logged-in device (issue 16, item 8) ----------------------------------------

def relabel(client: Client, device_id: str, device_class: str) -> requests.Response:
    return client.request("PATCH", f"/device/{device_id}", json={"device_name": f"now {device_class}",
                                                                 "device_class": device_class})


def test_a_logged_in_device_is_not_relabelled_into_a_full_class(make_server):
    # A phone and a laptop are logged in (mobile=1, desktop=1): calling the phone a computer now
    # would make two live desktop sessions, so it is refused and nothing changes.
    url, ctx = make_server(max_concurrent_devices=0, device_class_limits="mobile=1,desktop=1")
    laptop = register_device(url)
    phone = add_device(ctx, laptop, name="phone", device_class="mobile")
    laptop.login(PASSWORD)
    phone.login(PASSWORD)
    refused = relabel(laptop, phone.key_file.device_id, "desktop")
    assert problem(refused)[:2] == (409, "device_class_full")
    listed = {d["device_name"]: d for d in laptop.get_json("/device/list")["devices"]}
    assert listed["phone"]["device_class"] == "mobile" and listed["phone"]["active"]
    live = Counter(d["device_class"] for d in laptop.get_json("/device/list")["devices"] if d["active"])
    assert live == {"desktop": 1, "mobile": 1}


def test_a_relabelled_logged_in_device_counts_under_its_new_class_at_once(make_server):
    url, ctx = make_server(max_concurrent_devices=0, device_class_limits="mobile=1,desktop=1")
    laptop = register_device(url)
    phone = add_device(ctx, laptop, name="phone", device_class="mobile")
    second_phone = add_device(ctx, laptop, name="second phone", device_class="mobile")
    laptop.login(PASSWORD)
    phone.login(PASSWORD)
    assert relabel(phone, phone.key_file.device_id, "tablet").status_code == 200
    second_phone.login(PASSWORD)                 # the mobile class is free now: no question asked
    assert phone.request("GET", "/session/me").status_code == 200
    entries = {e.device_id: e.device_class for e in sessions.live_devices(ctx, user_uuid=laptop.key_file.user_uuid)}
    assert entries[phone.key_file.device_id] == "tablet"
    # Relabelled back into the class that is now full: refused while it is logged in ...
    assert problem(relabel(phone, phone.key_file.device_id, "mobile"))[:2] == (409, "device_class_full")
    phone.request("POST", "/session/logout")
    # ... and allowed once it is not; it then counts as a phone at its next login.
    assert relabel(laptop, phone.key_file.device_id, "mobile").status_code == 200
    with pytest.raises(ConcurrentLoginRequired) as asked:
        phone.login(PASSWORD)
    assert [d["device_name"] for d in asked.value.active_devices] == ["second phone"]


def test_relabelling_while_logging_in_never_exceeds_a_class_limit(make_server):
    # Four devices of one user log in (force: each login displaces within its class) while other
    # threads keep relabelling them between phone, computer and tablet, on two apps sharing one
    # DynamoDB Local. The session records then show, at no moment, two live sessions of a limited
    # class, nor does any snapshot taken meanwhile; and every live session counts under the class
    # its device has.
    from sessions.models import Liveness
    from tests.services.test_soak import session_intervals
    from tests.support.class_limits import class_violations

    settings = {"max_concurrent_devices": 0, "device_class_limits": "mobile=1,desktop=1",
                "concurrency_policy": "force", "session_idle_timeout": 600,
                "challenges_per_minute_per_ip": 10**6}  # as many logins as the machine can make
    url, ctx = make_server(**settings)
    second_url, _ = make_server(**settings)
    owner = register_device(url)
    clients = [add_device(ctx, owner, name=f"device {i}", device_class="mobile") for i in range(4)]
    ids = [c.key_file.device_id for c in clients]
    owner.login(PASSWORD)  # the owner relabels; a tablet, it is never displaced
    assert relabel(owner, owner.key_file.device_id, "tablet").status_code == 200
    owner.login(PASSWORD)
    deadline = time.monotonic() + 15
    counts: Counter = Counter()
    failures: list[str] = []

    def log_in(index: int) -> None:
        rng = random.Random(index)
        # This thread's own clients of the four devices: a Client is not shared between threads (one
        # that another thread points at the other app meanwhile sends a proof for the wrong URL).
        own = [Client(url, key_file=c.key_file) for c in clients]
        while time.monotonic() < deadline:
            client = own[rng.randrange(len(own))]
            client.base_url = rng.choice((url, second_url))
            try:
                client.login(PASSWORD)
                counts["login"] += 1
            except Exception as failure:  # noqa: BLE001 - a 503 after many retries is allowed
                failures.append(f"login {type(failure).__name__}: {failure}")

    def relabel_some(index: int) -> None:
        rng = random.Random(100 + index)
        admin = Client(rng.choice((url, second_url)), key_file=owner.key_file)
        admin.use_tokens(owner.tokens())  # the owner's bound session (token_type DPoP), from another app
        while time.monotonic() < deadline:
            answer = relabel(admin, rng.choice(ids), rng.choice(["mobile", "desktop"] * 2 + ["tablet"]))
            counts[answer.status_code] += 1
            if answer.status_code not in (200, 409):
                failures.append(f"relabel {answer.status_code} {answer.text[:200]}")

    snapshots: list[Counter] = []

    def snapshot() -> None:
        # The live devices by the class their device records have, read between two reads of the
        # presence with the same version (nothing that changes a class or a login came between).
        store = devices.device_store(ctx)
        while time.monotonic() < deadline:
            before = sessions.read_presence(ctx, user_uuid=owner.key_file.user_uuid)
            device_class = {d.device_id: d.device_class for d in store.list_for_user(owner.key_file.user_uuid)}
            if sessions.read_presence(ctx, user_uuid=owner.key_file.user_uuid).version == before.version:
                live = before.live(now=int(time.time()), liveness=sessions.liveness(ctx.settings))
                snapshots.append(Counter(device_class[e.device_id] for e in live))
            time.sleep(0.05)

    threads = [threading.Thread(target=log_in, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=relabel_some, args=(i,)) for i in range(2)]
    threads.append(threading.Thread(target=snapshot))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    user_uuid = owner.key_file.user_uuid
    records = sessions.list_user_sessions(ctx, user_uuid=user_uuid)
    by_id = {r.session_id: asdict(r) for r in records}
    intervals = session_intervals(list(by_id.values()), Liveness(idle_timeout=600))
    print(f"relabel race: {dict(counts)}, {len(records)} sessions, {len(snapshots)} snapshots")
    assert not [f for f in failures if "ServiceUnavailable" not in f], failures[:5]
    over = [c for c in snapshots if c["mobile"] > 1 or c["desktop"] > 1]
    assert not over, (len(over), over[:3])
    assert not class_violations(by_id, intervals, {"mobile": 1, "desktop": 1})
    device_class = {d.device_id: d.device_class for d in devices.device_store(ctx).list_for_user(user_uuid)}
    for entry in sessions.live_devices(ctx, user_uuid=user_uuid):
        assert entry.device_class == device_class[entry.device_id], entry
    assert counts["login"] >= 5 and counts[200] >= 3 and snapshots, counts  # (409s: as the load allows)
