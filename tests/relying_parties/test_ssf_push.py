"""RFC 8935 push (SPEC §11): each session-revoked SET is POSTed to the app's push URL; 202 means
delivered, anything else is retried with backoff; one process pushes to an app at a time, and
another takes over when it stops."""
from __future__ import annotations

import time

import jwt
import requests

from relying_parties import push
from relying_parties import service as apps
from relying_parties.security_events import SESSION_REVOKED
from tests.support.live import PASSWORD, register_device
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until


def sessions_in(sets: list[str]) -> list[str]:
    return [jwt.decode(s, options={"verify_signature": False})["events"][SESSION_REVOKED]["subject"]["session"]["id"]
            for s in sets]


def holds_a_lease(ctx) -> bool:
    pusher = push.running_pusher(ctx, push.SetPush.name)
    return bool(pusher and any(target.lease_until for target in pusher._targets.values()))


def test_a_session_end_is_pushed_once_and_acknowledged(make_server):
    with receiver() as sink:
        url, ctx = make_server(ssf_push_interval=0.2)
        credentials = apps.add_app(ctx, name="pushed", push_url=sink + "/push")
        device = register_device(url)
        device.login(PASSWORD)
        ended = device.session_id
        device.logout()
        got = wait_until(lambda: received(sink)["sets"] or None, timeout=15, what="the push")
        assert sessions_in(got) == [ended]
        claims = jwt.decode(got[0], options={"verify_signature": False})
        assert claims["aud"] == credentials.app.client_id
        # Delivered: acknowledged in the app's state, never sent again.
        auth = (credentials.app.client_id, credentials.client_secret)
        def acknowledged():  # the pusher writes the ack after the receiver's 202
            return requests.post(url + "/ssf/poll", json={"returnImmediately": True}, auth=auth,
                                 timeout=10).json()["sets"] == {} or None
        wait_until(acknowledged, timeout=10, what="the acknowledgement")
        time.sleep(1)  # a few more turns of the pusher
        assert len(received(sink)["sets"]) == 1


def test_a_failing_receiver_gets_the_event_again_with_backoff(make_server):
    with receiver(fail_first=3) as sink:
        url, ctx = make_server(ssf_push_interval=0.2)
        apps.add_app(ctx, name="flaky", push_url=sink + "/push")
        device = register_device(url)
        device.login(PASSWORD)
        ended = device.session_id
        device.logout()
        got = wait_until(lambda: received(sink)["sets"] or None, timeout=30, what="the push after failures")
        assert sessions_in(got) == [ended] and received(sink)["attempts"] == 4  # 1 s, 2 s, 4 s apart


def test_an_event_the_feed_brings_during_a_push_is_pushed_next(make_server, monkeypatch):
    # The push of the first end is held until the feed has handed the pusher a second end, which
    # the push's read came too early for: the app must stay due for it.
    heard: list[str] = []
    on_events, deliver = push.Pusher._on_events, push.SetPush.deliver
    monkeypatch.setattr(push.Pusher, "_on_events",
                        lambda self, ended: heard.extend(e.session_id for e in ended) or on_events(self, ended))
    with receiver() as sink:
        url, ctx = make_server(ssf_push_interval=0.2)
        apps.add_app(ctx, name="busy", push_url=sink + "/push")
        device = register_device(url)
        ended = []

        def deliver_after_another_end(self, event, app):
            if len(ended) == 1:
                device.login(PASSWORD)
                ended.append(device.session_id)
                device.logout()
                wait_until(lambda: ended[1] in heard, timeout=10, what="the second end, heard mid-push")
            return deliver(self, event, app)

        monkeypatch.setattr(push.SetPush, "deliver", deliver_after_another_end)
        device.login(PASSWORD)
        ended.append(device.session_id)
        device.logout()
        wait_until(lambda: len(received(sink)["sets"]) >= 2 or None, timeout=15, what="both ends")
        assert sessions_in(received(sink)["sets"]) == ended


def test_one_process_pushes_and_another_takes_over_when_it_stops(make_server, monkeypatch):
    monkeypatch.setattr(push, "LEASE_SECONDS", 3.0)
    monkeypatch.setattr(push, "RENEW_SECONDS", 1.0)
    with receiver() as sink:
        url, first = make_server(ssf_push_interval=0.2)
        _, second = make_server(ssf_push_interval=0.2)
        apps.add_app(first, name="both", push_url=sink + "/push")
        device = register_device(url)
        ended = []
        for _ in range(3):
            device.login(PASSWORD)
            ended.append(device.session_id)
            device.logout()
        wait_until(lambda: len(received(sink)["sets"]) >= 3 or None, timeout=15, what="three pushes")
        push.stop_pushers(first if holds_a_lease(first) else second)
        device.login(PASSWORD)
        ended.append(device.session_id)
        device.logout()
        wait_until(lambda: len(set(received(sink)["sets"])) >= 4 or None, timeout=20, what="the other process")
        assert set(sessions_in(received(sink)["sets"])) == set(ended)
