"""Notifications in the account's locale (issue 11 items 1 and 6): each device message names the
device, its class, the time (UTC, said so) and the IP, and keeps its "Wasn't you?" link."""
from __future__ import annotations

import re

import pytest

from accounts.models import Role
from tests.accounts.test_email import Recorder
from tests.support.live import PASSWORD, add_device, register_device, settle_background
from tests.support.operators import operator, person

NOT_ME = re.compile(r"https://login\.example\.org/#not-me=[A-Za-z0-9_-]{22,}")
EXPECTED = {
    "ja": {"subject": "アカウントへの新しいログイン",
           "names": "デバイス Taro の電話 が初めてログインしました。",
           "device": "デバイス: Taro の電話（スマートフォン）", "ip": "IP アドレス: 127.0.0.1",
           "time": re.compile(r"日時: \d{4}年\d{2}月\d{2}日 \d{2}:\d{2}（UTC）"),
           "wasnt_you": "心当たりがない場合は"},
    "en": {"subject": "New sign-in to your account",
           "names": "Your device Taro の電話 signed in for the first time.",
           "device": "Device: Taro の電話 (phone)", "ip": "IP address: 127.0.0.1",
           "time": re.compile(r"Time: \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"),
           "wasnt_you": "Wasn't you?"},
}


@pytest.fixture
def server(make_server):
    url, ctx = make_server(public_url="https://login.example.org", max_concurrent_devices=3)
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def _messages(recorder: Recorder, event: str, email: str) -> list:
    return [m for m in recorder.messages if m.event == event and m.email == email]


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_a_new_sign_in_is_reported_in_the_accounts_locale(server, locale):
    url, ctx, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    assert first.set_locale(locale)["locale"] == locale
    phone = add_device(ctx, first, name="Taro の電話", device_class="mobile")
    phone.login(PASSWORD)

    email = f"{first.key_file.username}@example.com"
    message = _messages(recorder, "new_sign_in", email)[-1]
    expected = EXPECTED[locale]
    assert message.subject == expected["subject"]
    for part in ("names", "device", "ip", "wasnt_you"):
        assert expected[part] in message.body, (part, message.body)
    assert expected["time"].search(message.body), message.body
    assert len(NOT_ME.findall(message.body)) == 1


def test_an_account_without_a_locale_gets_english(server):
    url, _, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    email = f"{first.key_file.username}@example.com"
    assert _messages(recorder, "registered", email)[-1].subject == "Welcome to citylogin"
    message = _messages(recorder, "new_sign_in", email)[-1]
    assert message.subject == "New sign-in to your account"
    assert "Time: " in message.body and " UTC" in message.body


def test_a_remote_logout_is_reported_in_japanese(server):
    url, ctx, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    first.set_locale("ja")
    tablet = add_device(ctx, first, name="居間のタブレット", device_class="tablet")
    tablet.login(PASSWORD)
    first.force_logout_device(tablet.key_file.device_id)

    message = _messages(recorder, "forced_logout", f"{first.key_file.username}@example.com")[-1]
    assert message.subject == "デバイスがログアウトされました"
    assert "居間のタブレット は、あなたの別のデバイスからログアウトされました。" in message.body
    assert "デバイス: 居間のタブレット（タブレット）" in message.body and "（UTC）" in message.body


def test_a_paired_device_message_in_japanese_advises_a_password_change(server):
    from citylogin.client.api import Client
    url, _, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    first.set_locale("ja")
    second = Client(url)
    second.pair(first.request_pairing()["qr_code"], username=first.key_file.username,
                password=PASSWORD, device_name="仕事のパソコン", device_class="desktop")

    message = _messages(recorder, "new_device", f"{first.key_file.username}@example.com")[-1]
    assert message.subject == "新しいデバイスが追加されました"
    assert "デバイス: 仕事のパソコン（パソコン）" in message.body and "IP アドレス: 127.0.0.1" in message.body
    assert len(NOT_ME.findall(message.body)) == 1 and "パスワードを変更" in message.body


OPERATOR_RESET = {
    "en": {"subject": "An operator of citylogin sent you a password reset link",
           "says": ["An operator of citylogin sent you this link", "your current password keeps working",
                    "If you did not ask for this, do not use the link, and contact support."]},
    "ja": {"subject": "citylogin のオペレーターがパスワード再設定のリンクを送りました",
           "says": ["citylogin のオペレーターが", "今のパスワードがそのまま使え",
                    "心当たりがない場合は、リンクを使わずにサポートにご連絡ください。"]},
}


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_an_operators_reset_link_says_an_operator_sent_it(server, locale):
    """Not "ignore this message": the person did not ask, an operator did; until the link is used the
    password keeps working, as the mail says."""
    url, ctx, recorder = server
    support, target = operator(url, ctx, Role.SUPPORT), person(url)
    assert target.set_locale(locale)["locale"] == locale
    sent = support.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/password-reset",
                           json={"reason": "forgot it"})
    assert sent.status_code == 200, sent.text
    settle_background(ctx)
    [message] = _messages(recorder, "password_reset", f"{target.key_file.username}@example.com")
    assert message.subject == OPERATOR_RESET[locale]["subject"]
    for part in OPERATOR_RESET[locale]["says"]:
        assert part in message.body, (part, message.body)
    assert "ignore this message" not in message.body and "無視" not in message.body
    assert "forgot it" not in message.body
    assert len(re.findall(r"https://login\.example\.org/#reset=[A-Za-z0-9_-]{40,}", message.body)) == 1
    target.login(PASSWORD)  # the password still works: nothing changed until the link is used
