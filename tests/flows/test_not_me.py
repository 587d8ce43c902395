""""Wasn't you?" (POST /account/not_me): the "new device" and "new sign-in" messages carry a
single-use link that unbinds that device, ends its session and, if asked, every other one."""
from __future__ import annotations

import re
import threading

import pytest
import requests
from cryptography import x509

from citylogin.client.api import CityloginError, Client
from tests.accounts.test_email import Recorder
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, register_device

LINK = re.compile(r"https://login\.example\.org/#not-me=([A-Za-z0-9_-]{22,})")


@pytest.fixture
def server(make_server):
    url, ctx = make_server(public_url="https://login.example.org", max_concurrent_devices=2)
    ctx.notifier.backend = recorder = Recorder()
    return url, ctx, recorder


def _pair(url: str, first: Client) -> Client:
    second = Client(url)
    second.pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)
    return second


def _link_token(recorder: Recorder, event: str) -> str:
    message = [m for m in recorder.messages if m.event == event][-1]
    return LINK.search(message.body).group(1)


def not_me(url: str, token: str, **options) -> requests.Response:
    return requests.post(f"{url}/account/not_me", json={"token": token, **options}, timeout=30)


def test_the_new_device_link_unbinds_that_device_once(server):
    url, ctx, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    second = _pair(url, first)
    second.login(PASSWORD)
    token = _link_token(recorder, "new_device")

    answer = not_me(url, token)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"device_id": second.key_file.device_id, "device_name": second.key_file.device_name,
                             "device_removed": True, "sessions_ended": 0}
    assert bearer_problem(second.request("GET", "/session/me"))[1:] == ("session_revoked", "device_unbound")
    with pytest.raises(CityloginError) as refused:
        second.login(PASSWORD)
    assert refused.value.code == "device_revoked"
    serial = x509.load_pem_x509_certificate(second.key_file.client_cert_pem.encode()).serial_number
    crl = x509.load_pem_x509_crl(requests.get(f"{url}/device/crl.pem", timeout=30).content)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert first.request("GET", "/session/me").status_code == 200  # the person's own device stays
    assert problem(not_me(url, token))[:2] == (400, "invalid_not_me_token")  # single-use


def test_the_first_sign_in_link_can_end_every_session(server):
    url, _, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    recorder.messages.clear()
    second = _pair(url, first)
    second.login(PASSWORD)  # its first sign-in: reported with a link of its own
    token = _link_token(recorder, "new_sign_in")
    assert token != _link_token(recorder, "new_device")

    answer = not_me(url, token, end_all_sessions=True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sessions_ended"] == 1
    assert bearer_problem(second.request("GET", "/session/me"))[1:] == ("session_revoked", "device_unbound")
    assert bearer_problem(first.request("GET", "/session/me"))[1:] == ("session_revoked", "remote_logout")
    first.login(PASSWORD)   # the person logs in again on their own device
    recorder.messages.clear()
    first.logout()
    first.login(PASSWORD)   # not a first sign-in any more: no message, no link
    assert not [m for m in recorder.messages if m.event == "new_sign_in"]


def test_parallel_uses_of_one_link_unbind_once(server):
    url, _, recorder = server
    first = register_device(url)
    first.login(PASSWORD)
    _pair(url, first)
    token = _link_token(recorder, "new_device")
    start, answers = threading.Barrier(10), []

    def use() -> None:
        start.wait(60)
        answers.append(not_me(url, token))

    threads = [threading.Thread(target=use) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) == [200] + [400] * 9
    assert {problem(a)[1] for a in answers if a.status_code == 400} == {"invalid_not_me_token"}


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": 5}, {"token": "x" * 300},
                                  {"token": "unknown-token-value"}, {"token": "abc", "end_all_sessions": "yes"}])
def test_bad_bodies_and_unknown_tokens_get_400(server, body):
    url, _, _ = server
    status, code, _ = problem(requests.post(f"{url}/account/not_me", json=body, timeout=30))
    assert status == 400 and code in {"missing_fields", "invalid_field", "invalid_not_me_token"}
