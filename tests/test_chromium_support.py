"""tests/support/chromium.py's filter on asyncio's log: it drops only the word on a task of Playwright's
own that the garbage collector found pending, never another task's, nor another line of asyncio's."""
from __future__ import annotations

import logging

from tests.support.chromium import PlaywrightTaskNoise

PENDING = "Task was destroyed but it is pending!\ntask: <Task pending name='Task-3206' coro=<{} running at {}>>"


def record(message: str, name: str = "asyncio") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, None)


def test_only_a_pending_playwright_task_is_dropped():
    noise = PlaywrightTaskNoise()
    assert not noise.filter(record(PENDING.format("Page._on_route()", "/v/site-packages/playwright/_impl/page.py:348")))
    assert noise.filter(record(PENDING.format("watch()", "/app/relying_parties/registry.py:170")))
    assert noise.filter(record("Exception in callback Protocol.data_received() at /v/playwright/_impl/x.py"))
    assert noise.filter(record("Unclosed client session"))
