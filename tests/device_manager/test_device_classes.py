"""Limits per kind of device (SPEC §5): every device has a class, CITYLOGIN_DEVICE_CLASS_LIMITS
caps live sessions per class on top of the total, the policy and the eviction order apply within
the full class, and the invariant holds under parallel logins on DynamoDB Local."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests

from citylogin.client import Client, ConcurrentLoginRequired
from common.config import ConcurrencyPolicy, EvictionOrder
from device_manager.concurrency_policy import ConcurrentLoginRejected, ConfirmationRequired, choose_evictions
from session_manager import service as sessions
from session_manager.models import PresenceEntry
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


def test_the_python_client_says_it_is_a_computer():
    from citylogin.client import guess_device_class
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
    bad = client.request("PATCH", f"/device/{device['device_id']}", json={"device_name": "x", "device_class": "phone"})
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
