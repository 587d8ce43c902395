"""How long a password reset link works, said truthfully (issue 83): RESET_TTL counted from the request,
whenever its mail arrives. A link whose mail went late works only for what is left of RESET_TTL after the
request, and the page's "mail is delayed" text, the "on its way" text and the mail itself say so, in English
and Japanese, with the code's own figure."""
from __future__ import annotations

import time

import requests

from accounts.password_service import RESET_TTL
from common import i18n
from tests.accounts.test_password_and_deletion import RESET_LINK
from tests.accounts.test_mail_delayed import Switch
from tests.support.live import FakeClock, register_device, settle_background

MINUTES = RESET_TTL // 60
# Counted from the request, never from the mail's arrival: the words each language says it with
FROM_THE_REQUEST = {
    "web.forgot.delayed": {"en": f"{MINUTES} minutes from now, counted from this request",
                           "ja": f"メールが届いた時からではなく、このリクエストの時から{MINUTES}分間"},
    "web.forgot.sent": {"en": f"{MINUTES} minutes from now", "ja": f"今から{MINUTES}分間"},
    "mail.password_reset.body": {"en": f"within {MINUTES} minutes of your request",
                                 "ja": f"リクエストから{MINUTES}分以内"},
    "mail.password_reset_by_operator.body": {"en": f"within {MINUTES} minutes of when it was made",
                                             "ja": f"作成から{MINUTES}分以内"},
}
FROM_THE_ARRIVAL = ("once it does", "once it arrives", "届いてから")


def test_the_texts_count_the_links_life_from_the_request_in_both_languages():
    for key, said in FROM_THE_REQUEST.items():
        for locale, words in said.items():
            text = i18n.text(key, locale)
            assert words in text, (key, locale, text)
            assert not [wrong for wrong in FROM_THE_ARRIVAL if wrong in text], (key, locale, text)


def _request_while_mail_is_down(url: str, ctx, mail: Switch, email: str) -> None:
    mail.up = False
    answer = requests.post(url + "/account/password_reset", json={"email": email}, timeout=30)
    assert answer.status_code == 202, answer.text
    settle_background(ctx)  # its first try failed: the mail waits in the outbox
    assert not [m for m in mail.sent if m.event == "password_reset"]


def _mail_arrives(ctx, mail: Switch, email: str) -> str:
    """The outbox's next run with the mail service back (its backoff passed): the link the mail holds."""
    outbox = ctx.notifier.outbox
    mail.up = True
    outbox.clock = lambda: time.time() + 24 * 3600
    for mail_id in outbox.due_ids(50):
        entry = outbox.claim(mail_id)
        if entry is not None:
            ctx.notifier.deliver(entry, attempts=1)
    outbox.clock = time.time
    [message] = [m for m in mail.sent if m.event == "password_reset" and m.email == email]
    mail.sent.remove(message)
    found = RESET_LINK.search(message.body)
    assert found, message.body
    return found.group(2)


def _confirm(url: str, token: str) -> requests.Response:
    return requests.post(url + "/account/password_reset/confirm",
                         json={"token": token, "new_password": f"a new password {time.monotonic_ns()}"}, timeout=30)


def test_a_link_mailed_late_works_until_reset_ttl_after_the_request_not_after_the_mail(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = mail = Switch()
    mail.up = True
    person = register_device(url)
    email = f"{person.require_key_file().username}@example.com"
    settle_background(ctx)
    assert ctx.notifier.outbox is not None
    ctx.clock = clock = FakeClock()
    # A mail late by all but a minute of the link's life: the link still works, for that minute
    _request_while_mail_is_down(url, ctx, mail, email)
    clock.advance(RESET_TTL - 60)
    assert _confirm(url, _mail_arrives(ctx, mail, email)).status_code == 204

    # A mail later than the link's life: it arrives with a link that no longer works
    _request_while_mail_is_down(url, ctx, mail, email)
    clock.advance(RESET_TTL + 1)
    late = _confirm(url, _mail_arrives(ctx, mail, email))
    assert late.status_code == 400 and late.json()["code"] == "invalid_reset_token", late.text
