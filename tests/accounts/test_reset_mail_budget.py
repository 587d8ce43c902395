"""A stranger cannot keep the owner from a working password-reset link (SPEC §4 POST
/account/password_reset): the per-address budget caps the mails (5 an hour), never the answer;
once it is spent the newest link mailed keeps working, across the hour's end too; only the
asking client's own allowance answers 429.

The apps run on a FakeClock set just after the start of a budget window; each request comes
from its own client address (X-Forwarded-For through one trusted proxy), so that a stranger's
many requests are not stopped by the per-IP limit and the owner's is their own."""
from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import datetime, timezone
from itertools import count

import pytest
import requests

from accounts import password_service
from accounts import user_service as users
from tests.accounts.test_password_and_deletion import RESET_LINK, Recorder, change, confirm
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device, settle_background
from common.web.log_setup import AUDIT_LOGGER

HOUR, LINK_LIFE = password_service.RESET_WINDOW, password_service.RESET_TTL
BUDGET = password_service.RESETS_PER_ADDRESS


class Owner:
    """The account's owner, the app, its clock and the owner's inbox."""

    def __init__(self, make_server) -> None:
        self.url, self.ctx = make_server(trusted_proxies=1)
        self.ctx.notifier.backend = self.inbox = Recorder()
        self.client = register_device(self.url)
        self.email = f"{self.client.require_key_file().username}@example.com"
        self.ctx.clock = self.clock = FakeClock()
        # Each test's own client addresses: the module's tests share the rate-limit table.
        self._net, self._hosts = uuid.uuid4().int % 65536, count(1)
        self.start = (int(datetime.now(timezone.utc).timestamp()) // HOUR + 1) * HOUR  # the next window
        self.at(5)

    def at(self, seconds: int) -> None:
        """Settle what earlier requests left running, then set the clock to `seconds` after the start."""
        settle_background(self.ctx)
        self.clock.moment = datetime.fromtimestamp(self.start + seconds, timezone.utc)

    def ask(self, *, ip: str | None = None, email: str | None = None) -> requests.Response:
        return requests.post(self.url + "/account/password_reset", json={"email": email or self.email},
                             headers={"X-Forwarded-For": ip or self._new_ip()}, timeout=30)

    def _new_ip(self) -> str:
        return f"10.{self._net >> 8}.{self._net & 255}.{next(self._hosts)}"  # a test asks fewer than 255 times

    def stranger_asks(self, times: int) -> None:
        """`times` requests for the owner's address, each from another address; all answered 202."""
        answers = [self.ask() for _ in range(times)]
        assert [a.status_code for a in answers] == [202] * times
        settle_background(self.ctx)

    def links(self) -> list[str]:
        settle_background(self.ctx)
        return [token_in(m.body) for m in self.inbox.messages if m.event == "password_reset"]


def token_in(body: str) -> str:
    found = RESET_LINK.search(body)
    assert found, body
    return found.group(2)


@pytest.fixture
def owner(make_server) -> Owner:
    return Owner(make_server)


@pytest.fixture
def audit_lines(caplog):
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    return lambda: [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]


def reset_with(owner: Owner, token: str) -> int:
    return confirm(owner.url, token).status_code


def test_fifty_requests_in_an_hour_are_all_answered_alike_and_mail_at_most_five_links(owner, audit_lines):
    unknown = owner.ask(email=f"nobody-{uuid.uuid4().hex}@example.com")
    assert unknown.status_code == 202
    for burst in range(10):
        owner.at(5 + burst * 360)  # ten bursts over the hour, all in one budget window
        answers = [owner.ask() for _ in range(5)]  # their mails race each other off the request path
        assert [(a.status_code, a.json()) for a in answers] == [(202, unknown.json())] * 5
    assert len(owner.links()) == BUDGET
    withheld = [line for line in audit_lines() if line["event"] == "password_reset_mail_withheld"]
    assert len(withheld) == 50 - BUDGET and all(line["link_kept"] for line in withheld)
    text = json.dumps(withheld)
    assert owner.email not in text and not re.search(r"[0-9a-f]{64}", text)
    assert not any(token in text for token in owner.links())


def test_the_owner_asking_after_a_stranger_spent_the_budget_holds_a_working_link(owner):
    owner.stranger_asks(BUDGET + 10)
    mailed = owner.links()
    assert len(mailed) == BUDGET
    owner.at(40 * 60)  # the first links' 30 minutes are over
    assert owner.ask(ip="192.0.2.1").status_code == 202
    assert owner.links() == mailed  # no new mail
    assert problem(confirm(owner.url, mailed[0]))[:2] == (400, "invalid_reset_token")  # its 30 minutes are over
    owner.at(40 * 60 + LINK_LIFE - 60)  # in the next window, 29 minutes after asking
    assert reset_with(owner, mailed[-1]) == 204  # the newest link mailed
    assert problem(confirm(owner.url, mailed[-1]))[:2] == (400, "invalid_reset_token")  # used up


def test_a_link_held_at_the_end_of_the_hour_works_after_a_stranger_spends_the_next_hours_budget(owner):
    owner.stranger_asks(BUDGET)
    held = owner.links()[-1]
    owner.at(HOUR - 2)
    assert owner.ask(ip="192.0.2.1").status_code == 202  # the budget is spent: no mail, the newest link kept
    owner.at(HOUR + 1)
    owner.stranger_asks(BUDGET + 3)  # the next window's budget, spent at its start
    assert len(owner.links()) == 2 * BUDGET
    owner.at(HOUR + LINK_LIFE - 5)  # 30 minutes after the owner asked, an hour and a half after the mail
    assert reset_with(owner, held) == 204


def test_the_owner_asking_long_after_a_stranger_spent_the_budget_at_the_windows_start_holds_a_working_link(owner):
    owner.at(HOUR + 1)
    owner.stranger_asks(BUDGET)  # exactly the budget, at the start: nothing asked later in the window
    newest = owner.links()[-1]
    owner.at(HOUR + 50 * 60)  # the mails are 50 minutes old
    assert owner.ask(ip="192.0.2.1").status_code == 202
    assert len(owner.links()) == BUDGET
    owner.at(HOUR + 50 * 60 + LINK_LIFE - 5)  # in the window after, 30 minutes after asking
    assert reset_with(owner, newest) == 204


def test_a_used_link_is_never_revived(owner, audit_lines):
    owner.stranger_asks(BUDGET)
    mailed = owner.links()
    assert reset_with(owner, mailed[-1]) == 204
    owner.at(60)
    assert owner.ask(ip="192.0.2.1").status_code == 202
    assert owner.links() == mailed
    for token in mailed:
        assert problem(confirm(owner.url, token))[:2] == (400, "invalid_reset_token")
    [withheld] = [line for line in audit_lines() if line["event"] == "password_reset_mail_withheld"]
    assert withheld["link_kept"] is False


def test_a_link_voided_by_a_password_change_is_never_revived(owner, audit_lines):
    owner.stranger_asks(BUDGET)
    mailed = owner.links()
    on_clock(owner.clock, owner.client)
    owner.client.login(PASSWORD)
    assert change(owner.client, PASSWORD).status_code == 204
    owner.at(60)
    assert owner.ask(ip="192.0.2.1").status_code == 202
    assert owner.links() == mailed
    assert problem(confirm(owner.url, mailed[-1]))[:2] == (400, "invalid_reset_token")
    [withheld] = [line for line in audit_lines() if line["event"] == "password_reset_mail_withheld"]
    assert withheld["link_kept"] is False
    owner.at(HOUR + 5)  # the next window: a new mail goes, and works
    owner.stranger_asks(1)
    assert reset_with(owner, owner.links()[-1]) == 204


def test_an_operators_link_goes_beyond_the_budget_and_is_the_one_kept(owner):
    owner.stranger_asks(BUDGET)
    user = users.get_user(owner.ctx, user_uuid=owner.client.require_key_file().user_uuid)
    password_service.mail_reset_link(owner.ctx, user=user)
    mailed = owner.links()
    assert len(mailed) == BUDGET + 1
    owner.at(45 * 60)
    owner.stranger_asks(1)
    assert len(owner.links()) == BUDGET + 1
    owner.at(45 * 60 + LINK_LIFE - 5)
    assert reset_with(owner, mailed[-1]) == 204


def test_the_per_ip_limit_still_answers_429_with_retry_after(owner):
    ip = "192.0.2.77"
    for _ in range(password_service.RESETS_PER_IP):
        assert owner.ask(ip=ip, email=f"nobody-{uuid.uuid4().hex}@example.com").status_code == 202
    limited = owner.ask(ip=ip)
    assert problem(limited)[:2] == (429, "too_many_attempts")
    assert 0 < int(limited.headers["Retry-After"]) <= HOUR
    assert owner.ask().status_code == 202  # another client's allowance


def test_the_accounts_deletion_removes_its_mail_window(owner):
    owner.stranger_asks(BUDGET + 1)
    user_uuid = owner.client.require_key_file().user_uuid
    on_clock(owner.clock, owner.client)
    owner.client.login(PASSWORD)
    assert owner.client.request("DELETE", "/account", json={"password": PASSWORD}).status_code == 204
    left = owner.ctx.dynamodb.scan(TableName=owner.ctx.tables.one_time_tokens, FilterExpression="user_uuid = :u",
                                   ExpressionAttributeValues={":u": {"S": user_uuid}}, ConsistentRead=True)["Items"]
    assert left == []
