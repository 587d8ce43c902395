"""A brand's mail (common/brand.py, common/mail/notifier.py): the subject and body in the brand's words, in
the account's language, and the sender under the brand's display name, in the console's log and in
what SES is asked to send (moto, single-threaded)."""
from __future__ import annotations

import logging
from email.header import decode_header, make_header
from email.utils import parseaddr

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from common.brand import load_brand, using
from common.mail.notifier import localized_message, make_notifier, with_display_name
from tests.common.test_brand import brand_folder


@pytest.fixture
def brand(tmp_path):
    return load_brand(brand_folder(tmp_path / "brand", settings={"name": "Acme ID", "mail_from": "Acme 株式会社"},
                                   texts={"ja": {"mail.password_changed.subject": "Acme: パスワード変更"}}))


def test_a_message_made_while_the_brand_is_in_use_is_in_its_words(brand):
    with using(brand):
        welcome = localized_message("registered", user_uuid="u-1", email="a@example.com", locale="en",
                                    username="alice", link="https://id.example.com/#verify=x").render(None)
        changed = localized_message("password_changed", user_uuid="u-1", email="a@example.com", locale="ja",
                                    time="2026-11-26 10:00 UTC").render(None)
        operator = localized_message("operator_action", user_uuid="u-1", email="a@example.com", locale="ja",
                                     what="x", time="t").render(None)
    assert welcome.subject == "Welcome to Acme ID" and "citylogin" not in welcome.body
    assert changed.subject == "Acme: パスワード変更"
    assert operator.subject.startswith("Acme ID のオペレーター") and "Acme ID" in operator.body
    plain = localized_message("registered", user_uuid="u-1", email="a@example.com", locale="en", username="a",
                              link="l").render(None)
    assert plain.subject == "Welcome to citylogin"


def test_the_console_logs_the_brands_sender(brand, caplog):
    message = localized_message("registered", user_uuid="u-1", email="a@example.com", locale="en",
                                username="alice", link="l")
    with caplog.at_level(logging.INFO, logger="citylogin.notify"), using(brand):  # rendered as it is sent
        make_notifier(backend="console", region="us-east-1", sender_name=brand.sender_name).notify(message)
    assert "From: Acme 株式会社\nSubject: Welcome to Acme ID\n" in caplog.text


def test_the_console_of_the_default_brand_logs_no_sender(caplog):
    message = localized_message("registered", user_uuid="u-1", email="a@example.com", locale="en",
                                username="alice", link="l")
    with caplog.at_level(logging.INFO, logger="citylogin.notify"):
        make_notifier(backend="console", region="us-east-1").notify(message)
    assert "From:" not in caplog.text and "Subject: Welcome to citylogin" in caplog.text


def test_ses_sends_from_the_brands_display_name_at_the_configured_address(aws, brand):
    aws.client("ses").verify_email_identity(EmailAddress="no-reply@example.com")
    notifier = make_notifier(backend="ses", region="us-east-1", ses_sender="Support <no-reply@example.com>",
                             boto_session=aws, sender_name=brand.sender_name)
    with using(brand):
        notifier.notify(localized_message("registered", user_uuid="u-1", email="a@example.com", locale="en",
                                          username="alice", link="l"))
    assert notifier.settle()
    [sent] = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    name, address = parseaddr(sent.source)
    assert (str(make_header(decode_header(name))), address) == ("Acme 株式会社", "no-reply@example.com")
    assert sent.subject == "Welcome to Acme ID"


def test_without_a_brand_name_the_configured_sender_stays_as_it_is():
    assert with_display_name("Support <no-reply@example.com>", None) == "Support <no-reply@example.com>"
    assert with_display_name("no-reply@example.com", "Acme ID") == "Acme ID <no-reply@example.com>"


def test_the_docs_acme_id_reads_right_in_the_operators_mail():
    """docs/guides/branding.md's "Acme ID" in the mail an operator's action sends: no "A Acme ID"."""
    with using(load_brand(None, name="Acme ID")):
        action = localized_message("operator_action", user_uuid="u-1", email="a@example.com", locale="en",
                                   what="locked your account", time="2026-11-26 10:00 UTC").render(None)
        reset = localized_message("password_reset_by_operator", user_uuid="u-1", email="a@example.com",
                                  locale="en", link="https://id.example.com/#reset=x").render(None)
        ja = localized_message("operator_action", user_uuid="u-1", email="a@example.com", locale="ja",
                               what="アカウントをロックしました", time="2026-11-26 10:00 UTC").render(None)
    assert action.subject == "An operator of Acme ID changed your account"
    assert action.body.startswith("At 2026-11-26 10:00 UTC an operator of Acme ID locked your account.\n")
    assert reset.subject == "An operator of Acme ID sent you a password reset link"
    assert reset.body.startswith("An operator of Acme ID sent you this link to choose a new password: open "
                                 "https://id.example.com/#reset=x within 30 minutes of when it was made.")
    assert ja.subject == "Acme ID のオペレーターがあなたのアカウントを変更しました"
    assert ja.body.startswith("2026-11-26 10:00 UTC に Acme ID のオペレーターがアカウントをロックしました。")
