"""A rolling deploy logs nobody out. While ECS replaces tasks one by one behind the load balancer,
processes of the previous release and of the current code serve the same DynamoDB tables and the
same key ring at once, and one device's requests land on either. Here the previous release (its
git tag, checked out into a worktree and run by the same interpreter) creates the tables and the
key ring, as it was there first; then the current code starts on them without creating anything.
A device knows one address, the public URL both share (its DPoP proofs name it), and each request
goes to the version the test picks: registration, login, refresh rotations, a refresh retried
within the grace window and one reused after it, a concurrent login refused on one and confirmed
on the other, pairing, and the event stream. Every access token handed out keeps working on both
versions until the test itself ends its session.

The retry within the grace window is where versions can part: the retry re-derives the successor
from the session record, and the next refresh must find that successor's digest stored, whichever
version rotated first and whichever answers the retry."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client, ConcurrentLoginRequired
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.sessions.test_events import EventReader
from tests.support.fixtures import problem
from tests.support.live import PASSWORD
from tests.support.previous_release import (REPO, code_environment, imported_from, release_worktree,
                                            running_all_in_one)

PREVIOUS_RELEASE = "v0.1.0"
PUBLIC_URL = "https://citylogin.example"  # the load balancer's address, each version's CITYLOGIN_PUBLIC_URL
GRACE = 5  # CITYLOGIN_REFRESH_REUSE_GRACE, seconds
SETTINGS = {"max_concurrent_devices": 1, "concurrency_policy": "ask", "refresh_reuse_grace": GRACE,
            "public_url": PUBLIC_URL, "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS,
            # no background thread that ends sessions or pushes on its own clock
            "session_sweep_interval": 0, "deletion_sweep_interval": 0, "ssf_push_interval": 0}
# One deployment for the module: under xdist (--dist loadfile) its tests stay on one worker,
# not a worktree and two servers per worker.
CROSSINGS = [pytest.param("old", "new", id="old-to-new"), pytest.param("new", "old", id="new-to-old")]


@pytest.fixture(scope="module")
def shared(dynamodb_endpoint) -> dict[str, str]:
    """The settings both versions run with (and the current code's CLI, on the same tables)."""
    return {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("mixed") + "_",
                          **SETTINGS}),
            "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}


@pytest.fixture(scope="module")
def versions(shared, tmp_path_factory) -> Iterator[dict[str, str]]:
    """{"old": url, "new": url}: the previous release and the current code on one set of tables."""
    with ExitStack() as stack:
        tree = stack.enter_context(release_worktree(PREVIOUS_RELEASE, tmp_path_factory.mktemp("previous")))
        old_code, new_code = code_environment(tree), {"PYTHONPATH": ""}
        assert imported_from("common", env=old_code, cwd=tree).is_relative_to(tree.resolve()), \
            "the old release's process would import the current checkout"
        assert imported_from("common", env=new_code, cwd=REPO).is_relative_to(REPO), \
            "the current code's process would not import the current checkout"
        # The old release was there first: it creates the tables and the key ring.
        old = stack.enter_context(running_all_in_one(
            {**shared, **old_code, "CITYLOGIN_DATA_DIR": str(tmp_path_factory.mktemp("old"))}, cwd=tree))
        # The update's first step (docs/guides/production.md, "Updating"): the new release's `citylogin init`
        # creates the tables it adds (the mail outbox) and leaves the rest as they are.
        upgrade(shared, new_code, tmp_path_factory.mktemp("init"))
        new = stack.enter_context(running_all_in_one(
            {**shared, **new_code, "CITYLOGIN_DATA_DIR": str(tmp_path_factory.mktemp("new")),
             "CITYLOGIN_CREATE_TABLES": "false"}, cwd=REPO))
        yield {"old": old, "new": new}


def upgrade(shared: dict[str, str], code: dict[str, str], data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | shared | code
    done = subprocess.run([sys.executable, "-m", "citylogin", "init"], env={**env, "CITYLOGIN_DATA_DIR": str(data_dir)},
                          cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "mail_outbox" in done.stdout, done.stdout


class Device(Client):
    """A device behind the load balancer: its proofs name the public URL, and `on(url)` is the
    balancer's pick for the next request. It remembers every access token it was handed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed_out: list[str] = []

    def on(self, url: str) -> Device:
        self.base_url = url
        return self

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        return super().proof(method, PUBLIC_URL + urlsplit(url).path, access_token=access_token)

    def _keep_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        self.handed_out.append(body["access_token"])
        return super()._keep_tokens(body)

    def refresh_with(self, refresh_token: str) -> requests.Response:
        """POST /session/refresh with `refresh_token` and a proof by this device's key; keeps nothing."""
        return self._send("POST", "/session/refresh", json={"refresh_token": refresh_token}, bind=True)


def registered(url: str) -> Device:
    device, name = Device(url), unique_name("mixed")
    device.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    return device


def paired(holder: Device, *, requested_on: str, paired_on: str) -> Device:
    """A second device of `holder`'s account: the QR payload from one version, redeemed on the other."""
    payload = holder.on(requested_on).request_pairing()["qr_code"]
    device = Device(paired_on)
    device.pair(payload, username=holder.require_key_file().username, password=PASSWORD)
    return device


def me(url: str, device: Device, token: str) -> requests.Response:
    headers = {"Authorization": f"DPoP {token}", "DPoP": device.proof("GET", url + "/session/me", access_token=token)}
    return requests.get(url + "/session/me", headers=headers, timeout=30)


def refused_on(versions: dict[str, str], device: Device, tokens: list[str]) -> list[str]:
    """Each (version, token) of `tokens` that /session/me does not answer 200, with its answer."""
    return [f"{name} token#{device.handed_out.index(token)}: {response.status_code} {response.text[:150]}"
            for token in tokens for name, url in versions.items()
            if (response := me(url, device, token)).status_code != 200]


def assert_signed_in(versions: dict[str, str], *devices: Device) -> None:
    """Nobody was logged out: every access token each device was handed works on both versions."""
    for device in devices:
        assert device.handed_out, "the device was never signed in"
        assert refused_on(versions, device, device.handed_out) == []


def assert_ended(versions: dict[str, str], device: Device, reason: str) -> None:
    """The device's session is over on both versions: each of its tokens and its refresh token is refused."""
    for name, url in versions.items():
        for token in device.handed_out:
            assert problem(me(url, device, token)) == (401, "session_revoked", reason), name
        assert problem(device.on(url).refresh_with(device.refresh_token or "")) == \
            (401, "session_revoked", reason), name


# --- registration and login -------------------------------------------------------------------

@pytest.mark.parametrize("registered_on, logged_in_on", CROSSINGS)
def test_an_account_registered_on_one_version_logs_in_on_the_other(versions, registered_on, logged_in_on):
    device = registered(versions[registered_on])
    device.on(versions[logged_in_on]).login(PASSWORD)
    assert device.token_type == "DPoP"
    assert_signed_in(versions, device)


# --- refresh rotations --------------------------------------------------------------------------

def test_refreshes_alternating_between_versions_keep_the_session(versions):
    device = registered(versions["old"])
    device.on(versions["new"]).login(PASSWORD)
    session_id = device.session_id
    for name in ["old", "new"] * 4:
        before = device.refresh_token
        device.on(versions[name]).refresh()
        assert device.refresh_token != before
    assert device.session_id == session_id and len(device.handed_out) == 9
    assert_signed_in(versions, device)


@pytest.mark.parametrize("rotated_on, retried_on", CROSSINGS)
@pytest.mark.parametrize("next_on", ["rotating", "retrying"])
def test_a_refresh_retried_on_the_other_version_within_the_grace_gets_a_successor_that_refreshes(
        versions, rotated_on, retried_on, next_on):
    """The client's first answer is lost; it retries the same refresh token and lands on the other
    version, which re-derives the successor. That successor is the one stored: it refreshes again."""
    device = registered(versions[rotated_on])
    device.on(versions[retried_on]).login(PASSWORD)
    spent = device.refresh_token
    assert spent is not None
    lost = device.on(versions[rotated_on]).refresh_with(spent)
    assert lost.status_code == 200, lost.text
    retried = device.on(versions[retried_on]).refresh_with(spent)
    assert retried.status_code == 200, retried.text
    # SPEC §4: within the grace window, the same successor pair (compared without printing tokens).
    assert [retried.json()[t] == lost.json()[t] for t in ("refresh_token", "access_token")] == [True, True], \
        "the retry handed out another successor than the rotation stored"
    device._keep_tokens(retried.json())
    again = device.on(versions[rotated_on if next_on == "rotating" else retried_on]).refresh_with(
        retried.json()["refresh_token"])
    assert again.status_code == 200, again.text
    device._keep_tokens(again.json())
    device.on(versions[rotated_on]).refresh()
    device.on(versions[retried_on]).refresh()
    assert_signed_in(versions, device)


def test_a_refresh_token_reused_after_the_grace_ends_the_session_on_either_version(versions):
    """Rotated by one version, reused on the other once the grace is over: refused as reuse, and the
    session is over on both (SPEC §4)."""
    reuses = []
    for rotated_on, reused_on in (("old", "new"), ("new", "old")):
        device = registered(versions[rotated_on])
        device.on(versions[reused_on]).login(PASSWORD)
        spent = device.refresh_token
        device.on(versions[rotated_on]).refresh()
        reuses.append((device, spent, reused_on))
    time.sleep(GRACE + 1.5)  # rotated_epoch is whole seconds
    for device, spent, reused_on in reuses:
        assert problem(device.on(versions[reused_on]).refresh_with(spent)) == (401, "refresh_token_reused", None)
        assert_ended(versions, device, "refresh_reuse")


# --- the concurrency limit, pairing and the event stream -------------------------------------------

@pytest.mark.parametrize("requested_on, paired_on", CROSSINGS)
def test_a_pairing_code_from_one_version_pairs_a_device_on_the_other(versions, requested_on, paired_on):
    holder = registered(versions[paired_on])
    holder.on(versions[requested_on]).login(PASSWORD)
    device = paired(holder, requested_on=versions[requested_on], paired_on=versions[paired_on])
    listed = {d["device_id"] for d in holder.on(versions[requested_on]).list_devices()}
    assert device.require_key_file().device_id in listed
    # Its certificate logs in on the version that did not issue it: the limit (1) is what stops it.
    with pytest.raises(ConcurrentLoginRequired):
        device.on(versions[requested_on]).login(PASSWORD)
    assert_signed_in(versions, holder)


@pytest.mark.parametrize("refused_on_version, confirmed_on", CROSSINGS)
def test_a_concurrent_login_refused_on_one_version_and_confirmed_on_the_other_evicts_on_both(
        versions, refused_on_version, confirmed_on):
    """The one eviction asked for: the evicted device is told on a stream held on the version that
    refused the login, and its tokens stop working on both; the new session works on both."""
    first = registered(versions[confirmed_on])
    first.on(versions[refused_on_version]).login(PASSWORD)
    second = paired(first, requested_on=versions[confirmed_on], paired_on=versions[refused_on_version])
    stream = EventReader(versions[refused_on_version], first)
    assert stream.opened
    with pytest.raises(ConcurrentLoginRequired) as required:
        second.on(versions[refused_on_version]).login(PASSWORD)
    assert_signed_in(versions, first)  # a refused login evicts nobody
    second.on(versions[confirmed_on]).confirm(required.value.body["confirm_token"])
    assert stream.wait(10) == ("session_revoked", {"reason": "displaced",
                                                   "by_device": second.require_key_file().device_id})
    assert_ended(versions, first, "displaced")
    assert_signed_in(versions, second)


@pytest.mark.parametrize("streamed_on, ended_on", CROSSINGS)
def test_a_logout_on_one_version_reaches_an_event_stream_held_on_the_other(versions, streamed_on, ended_on):
    device = registered(versions[ended_on])
    device.on(versions[streamed_on]).login(PASSWORD)
    stream = EventReader(versions[streamed_on], device)
    assert stream.opened
    assert_signed_in(versions, device)
    tokens = list(device.handed_out)
    device.on(versions[ended_on]).logout()
    event = stream.wait(10)
    assert event is not None and event[0] == "session_revoked" and event[1]["reason"] == "logged_out", event
    for name, url in versions.items():
        assert problem(me(url, device, tokens[-1])) == (401, "session_revoked", "logged_out"), name


def test_logins_the_previous_release_let_in_are_displaced_first_and_by_their_time(versions, shared, tmp_path):
    """SPEC §5: the previous release keeps no login sequence; its presence entries came before every
    login the current code numbers, and among themselves they are ordered by their login's time."""
    first = registered(versions["old"])
    first.on(versions["old"]).login(PASSWORD)
    b, c, d = (paired(first, requested_on=versions["old"], paired_on=versions["old"]) for _ in range(3))
    first.logout()
    username = first.require_key_file().username
    limit = CliRunner().invoke(main, ["admin", "set-limit", username, "2", "--reason", "rolling deploy"],
                               env={**shared, "CITYLOGIN_DATA_DIR": str(tmp_path)})
    assert limit.exit_code == 0, limit.output
    # The previous release logs B in, then the first device, a whole second apart: all it kept is the second.
    b.on(versions["old"]).login(PASSWORD)
    _next_whole_second()
    first.on(versions["old"]).login(PASSWORD, force=True)
    # The current code's login displaces the older of the two by time: B, though B's device id may sort last.
    answer = c.on(versions["new"]).login(PASSWORD, force=True)
    assert [e["device_id"] for e in answer["evicted"]] == [b.require_key_file().device_id]
    # The previous release's entry came before the one the current code numbered.
    answer = d.on(versions["new"]).login(PASSWORD, force=True)
    assert [e["device_id"] for e in answer["evicted"]] == [first.require_key_file().device_id]
    assert_ended(versions, b, "displaced")
    assert_signed_in(versions, c, d)


def _next_whole_second() -> None:
    """Wait until the clock (the one both versions read) has passed into the next whole second."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.01)
