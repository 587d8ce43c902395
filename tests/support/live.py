"""A real HTTP server around an app built by a factory, in this process, and device helpers.

In-process serving lets a test reach the app's context (clock, DynamoDB client) while the
requests still cross real sockets and real server threads."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any, Callable, Iterator

import requests
from werkzeug.serving import make_server

from relying_parties import push
from relying_parties.registry import APP_REGISTRY
from citylogin.client.api import Client, KeyFile, generate_key, private_key_pem, public_key_pem
from citylogin.client.keys import dpop_proof, sign_challenge
from devices import service as devices
from flows import deletion_sweeper
from common.mail.sender import stop_sender
from sessions import sweeper as session_sweeper
from sessions.streams import EVENT_FEED
from tests.conftest import unique_name
from common.runtime.context import AppContext

PASSWORD = "correct horse battery staple"


def settle_background(ctx: AppContext) -> None:
    """Wait for what requests left in the app's background pool (history rows, a clearing of
    failures; the next request makes a fresh pool) and for the notifications being sent."""
    pool, ctx.background_pool = ctx.background_pool, None
    if pool is not None:
        pool.shutdown(wait=True)
    ctx.notifier.settle()


@contextmanager
def serving(app) -> Iterator[str]:
    with serving_made(lambda url: app) as (url, _):
        yield url


@contextmanager
def serving_made(make_app: Callable[[str], Any], *, host_name: str = "127.0.0.1") -> Iterator[tuple[str, Any]]:
    """(url, app) for the app `make_app(url)` makes knowing its own address: the socket is bound first.
    `host_name` names the loopback interface in the URL, e.g. "localhost" for a page that uses
    WebAuthn, whose relying-party id may not be an IP address."""
    server = make_server("127.0.0.1", 0, None, threaded=True)  # its app once the port is known
    url = f"http://{host_name}:{server.server_port}"
    # polled every 50 ms, not werkzeug's 500: shutdown() waits out one poll, and every test that starts a server pays it
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    try:
        server.app = app = make_app(url)
        thread.start()
        yield url, app
    finally:
        if thread.is_alive():
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()
        context = getattr(getattr(server, "app", None), "extensions", {}).get("citylogin")
        if isinstance(context, AppContext):
            stop_background(context)


def stop_background(ctx: AppContext) -> None:
    """Stop the threads the app context started, with its server, not whenever the app is collected:
    until then they go on working on the tables the later tests of this worker share (a pusher takes
    their apps' leases, a sweeper ends their sessions by its own timeouts, a refresher warns into their logs)."""
    push.stop_pushers(ctx)
    session_sweeper.stop_sweeper(ctx)
    deletion_sweeper.stop_sweeper(ctx)
    stop_sender(ctx)
    for worker in (ctx.ring_refresher, ctx.slots.get(EVENT_FEED), ctx.slots.get(APP_REGISTRY)):
        stop = getattr(worker, "stop", None)
        if stop is not None:
            stop()
    # The mails its requests handed to the notifier's threads are tried to the end here: a mail to a mail
    # service the test has closed would otherwise log its last failed attempt into the next test's log.
    ctx.notifier.settle(timeout=60)
    # Its idle DynamoDB connections too: DynamoDB Local closes them after a while, and held by a context the
    # worker process keeps, each would stay open on this side (CLOSE_WAIT), hundreds per test process.
    for client in (ctx.dynamodb, ctx.readiness_dynamodb):
        close = getattr(client, "close", None)
        if close is not None:
            close()


def register_device(url: str, *, key_kind: str = "ecdsa-p256") -> Client:
    """A new user with its first device; the client holds the key file."""
    name = unique_name()
    client = Client(url)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind=key_kind)
    return client


def add_device(ctx: AppContext, first: Client, *, name: str | None = None, key_kind: str = "ecdsa-p256",
               device_class: str = "other") -> Client:
    """A further device of `first`'s user, added through the device_manager service function."""
    key = generate_key(key_kind)
    issued = devices.issue_device(ctx, user_uuid=first.key_file.user_uuid, device_name=name, is_primary=False,
                                  public_key=public_key_pem(key), csr=None, device_class=device_class)
    devices.store_new_device(ctx, issued)
    record = issued.record
    key_file = KeyFile(base_url=first.key_file.base_url, username=first.key_file.username,
                       user_uuid=record.user_uuid, device_id=record.device_id, device_name=record.device_name,
                       private_key_pem=private_key_pem(key), client_cert_pem=record.cert_pem,
                       fingerprint=record.fingerprint, ca_cert_pem=ctx.ca.certificate_pem())
    return Client(first.key_file.base_url, key_file=key_file)


class FakeClock:
    """An injectable clock for AppContext.clock: starts at the real time, moves only when told."""

    def __init__(self) -> None:
        from datetime import datetime, timezone
        self.moment = datetime.now(timezone.utc)

    def __call__(self):
        return self.moment

    def advance(self, seconds: float) -> None:
        from datetime import timedelta
        self.moment += timedelta(seconds=seconds)


def on_clock(clock: Callable[[], datetime], *clients: Client) -> None:
    """The clients' DPoP proofs carry `clock`'s time (a FakeClock, or the real one again): the server
    checks a proof's iat against its own clock, so a device talking to a server on a FakeClock must
    live on it too (SPEC §12)."""
    for client in clients:
        client.proof = partial(_proof_at, client, clock)  # type: ignore[method-assign]


def _proof_at(client: Client, clock: Callable[[], datetime], method: str, url: str, *,
              access_token: str | None = None) -> str:
    return dpop_proof(client.require_key_file().private_key(), method=method, url=url, access_token=access_token,
                      nonce=client.dpop_nonce, now=clock().timestamp())


def bearer_login(client: Client, *, force: bool = False) -> dict:
    """Log the client in without a DPoP proof: a bearer (unbound) session, as an older client opens
    while CITYLOGIN_DPOP is `allowed`; the client keeps its tokens (token_type Bearer)."""
    key_file = client.require_key_file()
    challenge = requests.post(client.base_url + "/login/challenge", json={}, timeout=10).json()["challenge"]
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge), "force": force}
    response = requests.post(client.base_url + "/login/", json=body, timeout=10)
    assert response.status_code == 200, response.text
    issued = response.json()
    assert issued["token_type"] == "Bearer", issued
    client.use_tokens(issued)
    return issued


def verify_address(ctx: AppContext, *, user_uuid: str) -> None:
    """The account's address verified, as its owner's click on the `/#verify=` link would (apps are told
    only a verified address: SPEC §14 Userinfo)."""
    from accounts import service as accounts
    account = accounts.get_account(ctx, user_uuid=user_uuid)
    store = accounts.email_store(ctx)
    generation = store.next_generation(user_uuid)
    assert generation is not None
    pending = accounts.new_verification(ctx, user_uuid=user_uuid, email=account.email, generation=generation)
    store.write_token(pending.write.item)
    [link] = pending.message.links()
    accounts.verify_email(ctx, token=link.token)
