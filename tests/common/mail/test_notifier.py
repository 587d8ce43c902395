"""The Notifier's three back ends (SPEC §7); SES and SNS against moto, single-threaded."""
from __future__ import annotations

import json
import logging

import pytest

from common.mail.notifier import localized_message, make_notifier

MESSAGE = localized_message("new_device", user_uuid="u-1", email="person@example.com", locale="en", device="phone",
                            facts="Device: phone", link="https://id.example.com/#not-me=t")
RENDERED = MESSAGE.render(None)


def test_console_logs_the_whole_message(caplog):
    # A developer follows the links of messages (e.g. /#verify=) from the console log.
    with caplog.at_level(logging.INFO, logger="citylogin.notify"):
        make_notifier(backend="console", region="us-east-1").notify(MESSAGE)
    assert "new_device" in caplog.text and "u-1" in caplog.text
    assert all(part in caplog.text for part in (RENDERED.email, RENDERED.subject, RENDERED.body))


def test_ses_sends_the_mail(aws):
    ses = aws.client("ses")
    ses.verify_email_identity(EmailAddress="no-reply@example.com")
    notifier = make_notifier(backend="ses", region="us-east-1", ses_sender="no-reply@example.com", boto_session=aws)
    notifier.notify(MESSAGE)
    assert notifier.settle()  # sent in the background
    assert ses.get_send_quota()["SentLast24Hours"] == 1


def test_sns_publishes_to_the_topic(aws):
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="citylogin")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    notifier = make_notifier(backend="sns", region="us-east-1", sns_topic_arn=topic, boto_session=aws)
    notifier.notify(MESSAGE)
    assert notifier.settle()
    received = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert json.loads(received[0]["Body"])["Message"] == RENDERED.body


def test_a_failure_is_logged_and_never_raised(aws, caplog):
    # The sender was never verified, so SES rejects the message.
    notifier = make_notifier(backend="ses", region="us-east-1", ses_sender="unverified@example.com", boto_session=aws)
    with caplog.at_level(logging.WARNING, logger="citylogin.notify"):
        notifier.notify(MESSAGE)
        assert notifier.settle()
    assert "failed after 1 attempt(s): MessageRejected" in caplog.text   # a rejection is not retried
    assert RENDERED.body not in caplog.text and RENDERED.email not in caplog.text


def test_ses_and_sns_need_their_settings():
    with pytest.raises(ValueError, match="CITYLOGIN_SES_SENDER"):
        make_notifier(backend="ses", region="us-east-1")
    with pytest.raises(ValueError, match="CITYLOGIN_SNS_TOPIC_ARN"):
        make_notifier(backend="sns", region="us-east-1")


def test_each_session_class_has_its_name_in_both_languages():
    """A device-flow screen's class, tv, is named in the mails that name a device's kind (issue 63)."""
    from common.config import DEVICE_CLASSES
    from common.mail.notifier import device_class_name

    assert (device_class_name("tv", "en"), device_class_name("tv", "ja")) == ("TV", "テレビ")
    other = device_class_name("other", "en")
    assert [name for name in DEVICE_CLASSES if name != "other" and device_class_name(name, "en") == other] == []
    assert device_class_name("watch", "ja") == device_class_name("other", "ja")
