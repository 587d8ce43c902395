"""The language a person registers in becomes the account's at once (issue 16 item 16), so the
very first mails (welcome, verification) are in it, whatever the browser's own language."""
from __future__ import annotations

from playwright.sync_api import expect

from accounts import user_service as users
from tests.accounts.test_email import Recorder
from tests.conftest import unique_name


def test_registering_in_the_japanese_ui_makes_a_japanese_account(make_server, new_device):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    a = new_device(url, locale="en-US").open()   # an English browser; the person picks 日本語
    a.switch_language("ja")
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    account = a.open_account()
    expect(account.locator("#locale-select")).to_have_value("ja")
    assert users.find_user(ctx, username=user).locale == "ja"

    email = f"{user}@example.com"
    welcome, verify = recorder.last("registered", email), recorder.last("verify_email", email)
    assert welcome.subject == "citylogin へようこそ", welcome.subject
    assert verify.subject == "メールアドレスの確認", verify.subject
    assert f"{email} を citylogin のメールアドレスとして確認するには" in verify.body
