"""examples/tv_cli's polling against citylogin's real token endpoint (in-process, on a clock of the test's
own): each `slow_down` adds 5 s to the app's interval and it stays added (RFC 8628 §3.5), and the tokens
come at the poll after the approval. The app's waits are recorded instead of slept, so its polls arrive
back to back: every poll after the first is too soon for the server, whose clock does not move."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from authlib.integrations.requests_client import OAuth2Session

from tests.support.device_flow import screen_app
from tests.support.device_screen import approve
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tv_cli" / "tv_sign_in.py"


def _example():
    spec = importlib.util.spec_from_file_location("tv_sign_in", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_slow_down_adds_five_seconds_that_stay_and_the_approval_ends_the_polling(make_server):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=2, device_poll_interval=1)
    clock = FakeClock()
    ctx.clock = clock
    app = screen_app(ctx, public=True)
    phone = register_device(url)
    on_clock(clock, phone)
    phone.login(PASSWORD)
    tv = _example()
    client = OAuth2Session(app.app.client_id, None, token_endpoint_auth_method="none")
    metadata = tv.discover(client, url)
    started = tv.start(client, metadata, "openid profile")
    assert started["interval"] == 1

    waits: list[float] = []

    def sleep(seconds: float) -> None:     # the app's wait, recorded; the person approves at the fourth
        waits.append(seconds)
        if len(waits) == 4:
            assert approve(phone, started["user_code"]).status_code == 200

    tokens = tv.poll(client, metadata, started, sleep=sleep, clock=lambda: sum(waits))
    # pending, then slow_down twice (each poll at once after the last): 1, 1, 6, 11; then the tokens
    assert waits == [1, 1, 6, 11]
    assert tokens["token_type"].lower() == "bearer" and "id_token" in tokens
    person = client.get(metadata["userinfo_endpoint"], timeout=10).json()
    assert person["preferred_username"] == phone.key_file.username


def test_a_code_that_expired_ends_the_polling_with_its_status(make_server):
    """citylogin answers expired_token once the code's lifetime is over (its clock moved past it while the
    app waited): the app stops with its own message and exit status 4."""
    url, ctx = make_server(host_name="127.0.0.1", device_poll_interval=1)
    clock = FakeClock()
    ctx.clock = clock
    app = screen_app(ctx, public=True)
    tv = _example()
    client = OAuth2Session(app.app.client_id, None, token_endpoint_auth_method="none")
    metadata = tv.discover(client, url)
    started = tv.start(client, metadata, "openid")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(started["expires_in"] + 1)     # the server's clock, not the app's: the app still waits

    with pytest.raises(tv.SignInFailed) as ended:
        tv.poll(client, metadata, started, sleep=sleep, clock=lambda: 0.0)
    assert ended.value.status == tv.EXPIRED == 4 and "expired" in str(ended.value)
    assert waits == [1]


@pytest.mark.parametrize("seconds, said", [(60, "1 minute"), (120, "2 minutes"), (600, "10 minutes"),
                                           (1, "1 second"), (2, "2 seconds"), (90, "90 seconds"), (0, "0 seconds")])
def test_the_time_a_code_has_left_is_said_in_the_singular_for_one(seconds, said):
    """Issue 83: "the code expires in 1 minute", never "1 minutes"."""
    example = _example()
    assert example.time_left(seconds) == said
    shown = io.StringIO()
    example.show({"verification_uri": "https://id.example/device", "user_code": "WDJB-MJHT", "expires_in": seconds},
                 out=shown)
    assert f"(the code expires in {said})..." in shown.getvalue()
