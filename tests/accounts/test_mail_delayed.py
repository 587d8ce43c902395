"""Whether the mail is delayed, as POST /account/password_reset and /account/verify_email/resend say it
(issue 65 item 2): from the outbox's health, never from one address's mail, so the reset's answer is the
same for an address an account has and one none has (SPEC §4). Late: this process's last try failed, or
(seen from any process) a mail has waited in the outbox over a minute."""
from __future__ import annotations

import time

import requests

from tests.support.live import PASSWORD, register_device, settle_background


class Switch:
    """A mail service that is down until `up` is set."""

    def __init__(self) -> None:
        self.up, self.sent = False, []

    def send(self, message) -> None:
        if not self.up:
            raise ConnectionRefusedError(111, "Connection refused")
        self.sent.append(message)


def reset(url: str, email: str) -> dict:
    answer = requests.post(url + "/account/password_reset", json={"email": email}, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_the_reset_answer_says_the_mail_is_delayed_alike_for_every_address(make_server):
    url, ctx = make_server()
    other_url, other = make_server()  # another process on the same tables: its own tries all went
    ctx.notifier.backend = mail = Switch()
    assert ctx.notifier.outbox is not None
    written = time.time()
    ctx.notifier.outbox.clock = lambda: written  # this process's view: its mails have waited no time, however slow
    mail.up = True
    person = register_device(url)
    person.login(PASSWORD)
    email = f"{person.require_key_file().username}@example.com"
    assert reset(url, "nobody-at-all@example.com") == reset(url, email)
    assert reset(url, email)["mail_delayed"] is False

    settle_background(ctx)
    mail.up = False
    assert person.request("POST", "/account/verify_email/resend").status_code == 202  # its try fails: mail is late
    known, unknown = reset(url, email), reset(url, "nobody-at-all@example.com")
    assert known == unknown and known["mail_delayed"] is True
    assert person.request("POST", "/account/verify_email/resend").json()["mail_delayed"] is True

    # Another process, whose own tries went, hears of it once a mail has waited over a minute.
    assert reset(other_url, "nobody-at-all@example.com")["mail_delayed"] is False
    assert other.notifier.outbox is not None
    other.notifier.outbox.clock = lambda: time.time() + 61
    assert reset(other_url, "nobody-at-all@example.com")["mail_delayed"] is True

    settle_background(ctx)  # the reset links' tries, refused too
    mail.up = True  # back: the next mail goes, and the page says "on its way" again
    person.request("POST", "/account/verify_email/resend")
    assert reset(url, email)["mail_delayed"] is False
