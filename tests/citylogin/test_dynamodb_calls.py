"""DynamoDB calls per endpoint, counted with a botocore event hook on the app's own client.

Budgets (SPEC §4, the issue): a protected request is one GetItem; login within 8 calls;
refresh within 2; the challenge one PutItem; no request path ever calls Scan."""
from __future__ import annotations

from collections import Counter

import pytest

from citylogin.app import create_app
from tests.support.live import PASSWORD, register_device, serving

LOGIN_BUDGET = 8


class CallCounter:
    """Counts API calls by operation name, and by (operation, table) in `by_table`."""

    def __init__(self, client) -> None:
        self.calls: Counter = Counter()
        self.by_table: Counter = Counter()
        client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model, params, **_):
        self.calls[model.name] += 1
        self.by_table[(model.name, params.get("TableName"))] += 1

    def take(self) -> Counter:
        taken, self.calls, self.by_table = self.calls, Counter(), Counter()
        return taken


@pytest.fixture
def counted(base_config):
    app = create_app(base_config)
    ctx = app.extensions["citylogin"]
    counter = CallCounter(ctx.dynamodb)
    with serving(app) as url:
        yield url, counter


def test_protected_request_is_exactly_one_get_item(counted):
    url, counter = counted
    client = register_device(url)
    client.login(PASSWORD)
    counter.take()
    for path in ("/session/me", "/session/me", "/session/me"):
        assert client.request("GET", path).status_code == 200
        assert counter.take() == Counter({"GetItem": 1})


def test_login_refresh_and_challenge_budgets(counted):
    url, counter = counted
    client = register_device(url)
    counter.take()
    client.login(PASSWORD)
    calls = counter.take()
    assert calls["PutItem"] == 1  # the challenge
    assert sum(calls.values()) - 1 <= LOGIN_BUDGET, calls
    assert calls["TransactWriteItems"] == 1
    client.refresh()
    assert sum(counter.take().values()) <= 2


def test_no_endpoint_calls_scan(counted):
    url, counter = counted
    a = register_device(url)
    a.login(PASSWORD)
    for method, path in [("GET", "/session/me"), ("GET", "/session/list"), ("GET", "/session/history"),
                         ("GET", "/device/list"), ("GET", "/readyz")]:
        a.request(method, path)
    a.refresh()
    a.logout()
    assert "Scan" not in counter.take()
