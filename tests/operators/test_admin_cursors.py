"""Sealed cursors over HTTP (SPEC §15, §4): an account's history and audit trail in the admin API, and the
person's own history and session list, page with cursors this server sealed for that listing of that
account. A forged one (the unsigned form of earlier releases included), an edited one, another
account's or another listing's is 400 invalid_field."""
from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Role
from tests.conftest import FAST_ARGON2, RAISED_LIMITS
from tests.support.fixtures import app_servers, problem
from tests.support.live import PASSWORD, settle_background
from tests.support.operators import operator, person

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@pytest.fixture(scope="module")
def accounts(dynamodb_endpoint, data_dir, table_prefix):
    """Two people with a few logins and operator actions each, and a viewer; one app for the module."""
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir), "table_prefix": table_prefix,
              "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS, "dynamodb_parameter_validation": True,
              "deletion_sweep_interval": 0, "ssf_push_interval": 0, "session_sweep_interval": 0,
              "max_concurrent_devices": 0}
    with app_servers(config) as start:
        url, ctx = start()
        support = operator(url, ctx, Role.SUPPORT)
        people = [person(url), person(url)]
        for target in people:
            for n in range(3):
                target.login(PASSWORD)
                answer = support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/limit",
                                         json={"reason": f"ticket {n}", "limit": n})
                assert answer.status_code == 200, answer.text
        settle_background(ctx)
        yield support, people


def page(client, path: str, cursor: str | None = None):
    return client.request("GET", path, params={"limit": 2, **({"cursor": cursor} if cursor else {})})


def admin_path(target, listing: str) -> str:
    return f"/admin/accounts/{target.key_file.user_uuid}/{listing}"


def cursor_of(client, path: str) -> str:
    first = page(client, path)
    assert first.status_code == 200 and first.json()["next_cursor"], first.text
    return first.json()["next_cursor"]


def refused(response) -> bool:
    return problem(response)[:2] == (400, "invalid_field") and response.json()["field"] == "cursor"


@pytest.mark.parametrize("listing", ["history", "audit"])
def test_the_admin_listings_page_on_their_own_cursors_only(accounts, listing):
    support, (one, two) = accounts
    cursor = cursor_of(support, admin_path(one, listing))
    rest = page(support, admin_path(one, listing), cursor)
    assert rest.status_code == 200 and rest.json()["items"]
    other_listing = "audit" if listing == "history" else "history"
    assert refused(page(support, admin_path(two, listing), cursor))            # another account's
    assert refused(page(support, admin_path(one, other_listing), cursor))      # another listing's
    assert refused(page(support, admin_path(one, listing), cursor[:-1] + ("A" if cursor[-1] != "A" else "B")))


def test_the_unsigned_cursors_of_earlier_releases_are_refused(accounts):
    support, (one, _) = accounts
    # what the history store used to hand out, around a real row's key
    unsigned = base64.urlsafe_b64encode(json.dumps({"k": "9" * 20 + "#abcdef01"}).encode()).decode().rstrip("=")
    for path in (admin_path(one, "history"), admin_path(one, "audit")):
        assert refused(page(support, path, unsigned)), path
    assert refused(page(one, "/session/history", unsigned))


def test_the_persons_own_history_and_session_list_are_sealed_too(accounts):
    _, (one, two) = accounts
    for path in ("/session/history", "/session/list?include_ended=true"):
        cursor = cursor_of(one, path)
        assert page(one, path, cursor).status_code == 200
        assert refused(page(two, path, cursor)), path                           # another person's
        assert refused(page(one, path, cursor[:-2])), path
    history = cursor_of(one, "/session/history")
    assert refused(page(one, "/session/list?include_ended=true", history))    # another listing's


@st.composite
def edits(draw, cursor: str):
    at = draw(st.integers(0, len(cursor) - 1))
    char = draw(st.sampled_from(ALPHABET))
    return draw(st.sampled_from([cursor[:at] + char + cursor[at + 1:], cursor[:at] + cursor[at + 1:],
                                 cursor[:at] + char + cursor[at:], cursor[:at]]))


def test_an_edited_audit_cursor_is_refused(accounts):
    support, (one, _) = accounts
    path = admin_path(one, "audit")
    cursor = cursor_of(support, path)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
    @given(edit=edits(cursor))
    def check(edit):
        if edit and edit != cursor:
            assert refused(page(support, path, edit)), edit
    check()
