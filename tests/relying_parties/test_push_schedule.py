"""When the pusher tries an app (relying_parties.push): a failure backs it off from 1 s doubling to the longest
step (CITYLOGIN_SSF_PUSH_BACKOFF_MAX); new events end the wait at once; one push per app at a time.
The live behaviour (an outage, a hung app) is in test_push_recovery."""
from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from relying_parties import push
from relying_parties.models import AppRecord
from common.config import ConfigError, load_settings


def _pusher(backoff_max: float | None = None) -> push.Pusher:
    ctx = SimpleNamespace(settings=load_settings({"ssf_push_backoff_max": 300.0 if backoff_max is None
                                                  else backoff_max}))
    return push.Pusher(ctx, interval=1.0, channel=push.SetPush(ctx))  # type: ignore[arg-type]


def _target() -> push._Target:
    app = AppRecord(client_id="app_x", name="x", secret_digest="d", created_at="2025-01-01T00:00:00Z",
                    created_epoch=1735689600, push_url="http://127.0.0.1:9/push")
    return push._Target(app, due=False)


def test_the_backoff_doubles_from_a_second_up_to_the_setting():
    pusher, target = _pusher(backoff_max=5.0), _target()
    waits = []
    for _ in range(6):
        before = time.monotonic()
        pusher._back_off(target, quiet=True)
        waits.append(target.retry_at - before)
    for wait, step in zip(waits, [1, 2, 4, 5, 5, 5], strict=True):
        assert 0.8 * step <= wait <= 1.2 * step + 0.05, waits   # each jittered by a fifth at most
    assert target.failures == 6 and target.due


def test_the_default_longest_step_is_five_minutes_and_the_setting_is_bounded():
    assert _pusher().backoff_max == 300.0
    for wrong in (0, 0.5, 3601):
        with pytest.raises(ConfigError):
            load_settings({"ssf_push_backoff_max": wrong})


def test_new_events_end_a_backoff_at_once_and_a_busy_app_waits_for_its_push_to_end():
    pusher, target = _pusher(), _target()
    for _ in range(10):  # backed off to the longest step: the next try minutes away
        pusher._back_off(target, quiet=True)
    assert not pusher._ready(target)
    pusher._targets = {"app_x": target}
    pusher._on_events([object()])
    assert target.fresh and pusher._ready(target)
    target.busy = True  # a worker is pushing to it: the events wait for that push, not beside it
    assert not pusher._ready(target)
    pusher._on_events([])  # a read that brought nothing changes nothing
    target.busy, target.fresh = False, False
    assert not pusher._ready(target)


def test_a_changed_record_of_a_backed_off_app_is_tried_at_once():
    pusher, target = _pusher(), _target()
    pusher._targets, pusher._listening = {"app_x": target}, True
    for _ in range(10):
        pusher._back_off(target, quiet=True)
    target.due = False
    pusher._retarget(SimpleNamespace(apps=[target.app]))  # type: ignore[arg-type]
    assert not pusher._ready(target)   # the same record: the backoff stands
    moved = replace(target.app, push_url="http://127.0.0.1:10/push")
    pusher._retarget(SimpleNamespace(apps=[moved]))  # type: ignore[arg-type]
    assert pusher._targets["app_x"] is target and target.app == moved and pusher._ready(target)
