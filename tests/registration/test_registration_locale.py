"""The account's language at registration (SPEC §4, issue 16 item 16): the body's `locale`, else
Accept-Language, becomes the account's `locale`, so the very first messages are in it."""
from __future__ import annotations

import pytest
import requests

from accounts import user_service as users
from tests.accounts.test_email import Recorder
from tests.conftest import unique_name
from tests.support.live import PASSWORD

SUBJECTS = {"ja": ("citylogin へようこそ", "メールアドレスの確認"),
            "en": ("Welcome to citylogin", "Confirm your e-mail address")}


@pytest.fixture
def server(make_server):
    url, ctx = make_server()
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


@pytest.mark.parametrize(("body_locale", "accept_language", "expected"), [
    ("ja", None, "ja"),
    (None, "ja-JP,ja;q=0.9,en;q=0.8", "ja"),
    ("ja-JP", "en-US", "ja"),
    ("en", "ja", "en"),        # the body wins
    ("fr", "ja", "ja"),        # not one of ours: Accept-Language decides
    (None, None, "en"),
])
def test_the_registration_language_becomes_the_accounts(server, body_locale, accept_language, expected):
    url, ctx, recorder = server
    name = unique_name()
    email = f"{name}@example.com"
    body = {"username": name, "email": email, "password": PASSWORD}
    if body_locale:
        body["locale"] = body_locale
    headers = {"Accept-Language": accept_language} if accept_language else {}
    answer = requests.post(url + "/registration/", json=body, headers=headers, timeout=60)
    assert answer.status_code == 201, answer.text
    assert users.find_user(ctx, username=name).locale == expected
    welcome, verify = recorder.last("registered", email), recorder.last("verify_email", email)
    assert (welcome.subject, verify.subject) == SUBJECTS[expected]
    assert email in verify.body
