"""Delivery recovers at once (SPEC §11 push, §14 Back-Channel Logout): an app that was down for longer
than the backoff's longest step hears a new logout, on both channels, within a second of the ending
answer once it answers again, after the events it missed, all of them and in the stream's order; and an
app that never answers does not hold up another app's delivery. Each app's receiver is a process of
its own (tests.support.push_receiver), stopped and started again on the same port."""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import NamedTuple

import jwt
import pytest

from relying_parties import service as apps
from relying_parties import push
from relying_parties.models import OidcClient
from relying_parties.security_events import SESSION_REVOKED
from oidc.logout.backchannel import BACKCHANNEL_LOGOUT_EVENT
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens
from tests.support.ports import free_port
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

REDIRECT = "https://app.example/callback"
CHANNELS = (push.SetPush.name, "backchannel-logout")
BACKOFF_MAX = 2.0  # the longest step (2.4 s with its jitter), so that an outage longer than it is short
DOWN_FOR = 5.0


def _app(ctx, sink: str):
    """One app on both channels: CAEP push to /push, logout tokens to /backchannel."""
    return apps.add_app(ctx, name="Notes", push_url=sink + "/push", oidc=OidcClient(
        redirect_uris=(REDIRECT,), backchannel_logout_uri=sink + "/backchannel"))


def _signed_in(url: str, credentials, device) -> str:
    """A new session of the device in which the app signed the person in (so both channels tell it)."""
    device.login(PASSWORD)
    signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)
    return device.session_id


def _heard(sink: str) -> dict[str, list[tuple[str, float]]]:
    """Per channel, the (session id, arrival) of each thing the receiver kept, in arrival order."""
    heard: dict[str, list[tuple[str, float]]] = {name: [] for name in CHANNELS}
    got = received(sink)
    for token, at in zip(got["sets"], got["at"], strict=True):
        claims = jwt.decode(token, options={"verify_signature": False})
        if BACKCHANNEL_LOGOUT_EVENT in claims["events"]:
            heard["backchannel-logout"].append((claims["sid"], at))
        else:
            heard[push.SetPush.name].append((claims["events"][SESSION_REVOKED]["subject"]["session"]["id"], at))
    return heard


def _first_heard(entries: list[tuple[str, float]]) -> list[str]:
    """The sessions in the order first heard (a push is at least once: a repeat is allowed)."""
    order: list[str] = []
    for session_id, _ in entries:
        if session_id not in order:
            order.append(session_id)
    return order


def _target(ctx, channel: str, client_id: str):
    pusher = push.running_pusher(ctx, channel)
    return pusher and pusher._targets.get(client_id)


def _holds_both_leases(ctx, client_id: str) -> bool:
    return all((target := _target(ctx, name, client_id)) and target.lease_until for name in CHANNELS)


def _backed_off_to_the_longest_step(ctx, client_id: str) -> bool:
    # 1 s, then 2 s: from the second failure in a row on, each wait is the longest step; a third
    # failure came after one such wait.
    return all(_target(ctx, name, client_id).failures >= 3 for name in CHANNELS)


class Outage(NamedTuple):
    ctx: object
    client_id: str
    port: int           # the receiver's, free while it is down
    ended: list[str]    # the sessions that ended while it was down, in order
    device: object      # signed in, in session `last`, which the app holds an ID token of
    last: str


def _outage(make_server, missed: int) -> Outage:
    """An app down past the backoff's longest step while `missed` sessions end, and a session it
    signed in to, waiting to end."""
    url, ctx = make_server(host_name="127.0.0.1", ssf_push_interval=1.0, ssf_push_backoff_max=BACKOFF_MAX)
    port = free_port()
    with receiver(port=port) as sink:
        credentials = _app(ctx, sink)
        wait_until(lambda: _holds_both_leases(ctx, credentials.app.client_id) or None, timeout=20,
                   what="both pushers holding the new app's lease")
    down_since, device, ended = time.monotonic(), register_device(url), []   # the receiver is down from here
    for _ in range(missed):
        ended.append(_signed_in(url, credentials, device))
        device.logout()
    wait_until(lambda: (time.monotonic() - down_since > DOWN_FOR
                        and _backed_off_to_the_longest_step(ctx, credentials.app.client_id)) or None,
               timeout=30, what="an outage longer than the longest step, backed off to it")
    return Outage(ctx, credentials.app.client_id, port, ended, device, _signed_in(url, credentials, device))


def _new_logout_heard(sink: str, last: str) -> dict | None:
    heard = _heard(sink)
    return heard if all(last in dict(heard[name]) for name in CHANNELS) else None


def test_an_app_back_from_an_outage_hears_a_new_logout_within_a_second(make_server):
    """SPEC §14's bound after an outage: from the logout's answer to the app's receipt, on each channel."""
    outage = _outage(make_server, missed=1)
    with receiver(port=outage.port) as sink:
        outage.device.logout()
        answered = time.time()
        heard = wait_until(lambda: _new_logout_heard(sink, outage.last), timeout=15,
                           what="the new logout on both channels")
    for name in CHANNELS:
        arrived = dict(heard[name])[outage.last]
        assert arrived - answered <= 1.0, f"{name}: the new logout took {arrived - answered:.3f} s"
        assert _first_heard(heard[name]) == [*outage.ended, outage.last], name


def test_the_backlog_follows_complete_and_in_order(make_server):
    outage = _outage(make_server, missed=4)
    with receiver(port=outage.port) as sink:
        outage.device.logout()
        heard = wait_until(lambda: _new_logout_heard(sink, outage.last), timeout=30,
                           what="the new logout on both channels")
        for name in CHANNELS:
            assert _first_heard(heard[name]) == [*outage.ended, outage.last], name
        # Delivered, then acknowledged: both pushers back to their first step, nothing left to send.
        wait_until(lambda: all(_target(outage.ctx, name, outage.client_id).failures == 0 for name in CHANNELS)
                   or None, timeout=15, what="the backoff reset")


@pytest.fixture
def hung_app():
    """An app that takes connections and never answers (a frozen process): a listening socket that
    never accepts (the kernel completes each connection into its queue). Closed at the end, which
    resets the connections still waiting."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def _queued_connections(port: int) -> int:
    """How many connections wait in the accept queue of the listener on `port` (Linux: a listening
    socket's rx_queue in /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":   # local address, LISTEN
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no listener on port {port}")


def test_an_app_that_never_answers_does_not_hold_up_another_apps_pushes(make_server, monkeypatch, hung_app):
    # Each push to the hung app waits a minute for its answer: were the others behind it, the
    # healthy app would hear nothing more for a minute.
    monkeypatch.setattr(push, "PUSH_DEADLINE", 60.0)
    url, ctx = make_server(ssf_push_interval=0.2)
    with receiver() as sink:
        hung = apps.add_app(ctx, name="hung", push_url=f"http://127.0.0.1:{hung_app}/push")
        healthy = apps.add_app(ctx, name="healthy", push_url=sink + "/push")
        wait_until(lambda: all(_target(ctx, push.SetPush.name, c.app.client_id) for c in (hung, healthy)) or None,
                   timeout=20, what="the pusher listing both apps")
        device, ended = register_device(url), []
        for count in range(1, 4):
            device.login(PASSWORD)
            ended.append(device.session_id)
            device.logout()
            wait_until(lambda n=count: len(_heard(sink)[push.SetPush.name]) >= n or None, timeout=20,
                       what=f"end {count} at the healthy app")
        assert _first_heard(_heard(sink)[push.SetPush.name]) == ended
        # What the hung app costs: one try at a time, however many events came.
        assert _target(ctx, push.SetPush.name, hung.app.client_id).busy
        assert _queued_connections(hung_app) == 1
