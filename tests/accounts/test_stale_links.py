"""Only the newest link works (issue 16 items 3 and 7): a verification link is void once a newer
one is made (resend, address change) or one is used, so an old link can never set an address the
account would not have now; a password-reset link is void after a reset or a password change."""
from __future__ import annotations

import time

import pytest

from tests.accounts.test_email import Recorder, change_email, email_of, logged_in, token_in, verify
from tests.accounts.test_password_and_deletion import NEW_PASSWORD, RESET_LINK, change, confirm, reset
from tests.conftest import unique_name
from tests.support.fixtures import problem
from tests.support.live import PASSWORD


class WaitingRecorder(Recorder):
    def reset_tokens(self, count: int, timeout: float = 30.0) -> list[str]:
        """The tokens of the first `count` reset links, waiting for them (they are sent off the
        request path)."""
        deadline = time.monotonic() + timeout
        while len(found := [m for m in self.messages if m.event == "password_reset"]) < count:
            assert time.monotonic() < deadline, [m.event for m in self.messages]
            time.sleep(0.05)
        return [RESET_LINK.search(m.body).group(2) for m in found[:count]]


@pytest.fixture
def server(make_server):
    url, ctx = make_server(public_url="https://login.example.org")
    ctx.notifier.backend = recorder = WaitingRecorder()
    return url, ctx, recorder


@pytest.fixture
def reset_server(make_server):
    url, ctx = make_server()  # RESET_LINK expects the default public URL
    ctx.notifier.backend = recorder = WaitingRecorder()
    return url, ctx, recorder


def refused(answer) -> bool:
    return problem(answer)[:2] == (400, "invalid_verification_token")


# --- verification links (item 3) -----------------------------------------------------------

def test_an_old_resend_link_is_void_after_a_new_one(server):
    url, _, recorder = server
    client = logged_in(url)
    first = token_in(recorder.last("verify_email", email_of(client)))
    assert client.request("POST", "/account/verify_email/resend").status_code == 202
    second = token_in(recorder.last("verify_email", email_of(client)))
    assert refused(verify(url, first))
    assert verify(url, second).status_code == 200


def test_the_registration_link_cannot_undo_a_change_of_address(server):
    url, _, recorder = server
    client = logged_in(url)
    old, new = email_of(client), f"{unique_name()}@example.net"
    stale = token_in(recorder.last("verify_email", old))
    assert change_email(client, new).status_code == 202
    assert verify(url, token_in(recorder.last("verify_email", new))).status_code == 200
    assert refused(verify(url, stale))
    me = client.get_json("/account")
    assert (me["email"], me["email_verified"]) == (new, True)


def test_an_abandoned_change_link_is_void_after_another_change(server):
    url, _, recorder = server
    client = logged_in(url)
    first, second = f"{unique_name()}@example.net", f"{unique_name()}@example.net"
    assert change_email(client, first).status_code == 202
    abandoned = token_in(recorder.last("verify_email", first))
    assert change_email(client, second).status_code == 202
    assert refused(verify(url, abandoned))  # before the newer link is used
    assert verify(url, token_in(recorder.last("verify_email", second))).status_code == 200
    assert refused(verify(url, abandoned))  # and after
    assert client.get_json("/account")["email"] == second


def test_a_change_link_is_void_after_a_resend_of_the_current_address(server):
    url, _, recorder = server
    client = logged_in(url)  # not verified yet: resend sends a link for the current address
    new = f"{unique_name()}@example.net"
    assert change_email(client, new).status_code == 202
    abandoned = token_in(recorder.last("verify_email", new))
    assert client.request("POST", "/account/verify_email/resend").status_code == 202
    assert verify(url, token_in(recorder.last("verify_email", email_of(client)))).status_code == 200
    assert refused(verify(url, abandoned))
    assert client.get_json("/account")["email"] == email_of(client)


# --- reset links (item 7) -------------------------------------------------------------------

def test_a_reset_voids_every_other_reset_link(reset_server):
    url, _, recorder = reset_server
    client = logged_in(url)
    for _ in range(2):
        assert reset(url, email_of(client)).status_code == 202
    first, second = recorder.reset_tokens(2)
    assert confirm(url, second).status_code == 204
    assert problem(confirm(url, first, "yet another long passphrase"))[:2] == (400, "invalid_reset_token")
    client.login(NEW_PASSWORD)  # the first link changed nothing


def test_a_password_change_voids_every_reset_link(reset_server):
    url, _, recorder = reset_server
    client = logged_in(url)
    assert reset(url, email_of(client)).status_code == 202
    [token] = recorder.reset_tokens(1)
    assert change(client, PASSWORD, logout_other_sessions=False).status_code == 204
    assert problem(confirm(url, token, "yet another long passphrase"))[:2] == (400, "invalid_reset_token")
    client.login(NEW_PASSWORD)


def test_a_reset_link_made_after_the_change_works(reset_server):
    url, _, recorder = reset_server
    client = logged_in(url)
    assert change(client, PASSWORD, logout_other_sessions=False).status_code == 204
    assert reset(url, email_of(client)).status_code == 202
    [token] = recorder.reset_tokens(1)
    assert confirm(url, token, "yet another long passphrase").status_code == 204
    client.login("yet another long passphrase")
