"""Security events for apps (SPEC §11): the transmitter's metadata, and RFC 8936 poll of CAEP
session-revoked SETs with acknowledgements and long polling, delivered at least once."""
from __future__ import annotations

import threading
import time

import jwt
import pytest
import requests

from relying_parties import service as apps
from relying_parties.security_events import SESSION_REVOKED
from tests.conftest import unique_name
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, FakeClock, add_device, register_device


def new_app(ctx, name="api"):
    credentials = apps.add_app(ctx, name=name, push_url=None)
    return credentials.app.client_id, credentials.client_secret


def poll(url, auth, timeout=40, **body) -> requests.Response:
    return requests.post(url + "/ssf/poll", json=body, auth=auth, timeout=timeout)


def verified(url: str, token: str, client_id: str) -> dict:
    """The SET's claims, checked as an app would: against the JWKS, for this app."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "secevent+jwt" and header["alg"] == "EdDSA"
    keys = jwt.PyJWKSet.from_dict(requests.get(url + "/.well-known/jwks.json", timeout=10).json())
    key = next(k for k in keys.keys if k.key_id == header["kid"])
    return jwt.decode(token, key.key, algorithms=["EdDSA"], audience=client_id, issuer="citylogin",
                      options={"require": ["iss", "aud", "jti", "iat"]})


def test_the_transmitter_describes_itself(make_server):
    url, ctx = make_server(access_token_ttl=600)
    config = requests.get(url + "/.well-known/ssf-configuration", timeout=10).json()
    assert config["spec_version"] == "1_0" and config["issuer"] == ctx.jwt.issuer
    base = ctx.public_url().rstrip("/")  # the links of messages and QR codes: CITYLOGIN_PUBLIC_URL
    assert config["jwks_uri"] == base + "/.well-known/jwks.json" and config["poll_endpoint"] == base + "/ssf/poll"
    assert set(config["delivery_methods_supported"]) == {"urn:ietf:rfc:8935", "urn:ietf:rfc:8936"}
    assert config["citylogin_access_token_ttl"] == 600
    # the guard accepts the access tokens apps get by OpenID Connect too: their iss is the provider's
    assert config["citylogin_oidc_issuer"] == requests.get(url + "/.well-known/openid-configuration",
                                                           timeout=10).json()["issuer"]


def test_a_session_end_reaches_every_app_as_a_caep_set_until_acknowledged(make_server):
    url, ctx = make_server(max_concurrent_devices=1, concurrency_policy="force")
    first_app, second_app = new_app(ctx, "one"), new_app(ctx, "two")
    a = register_device(url)
    b = add_device(ctx, a)
    a.login(PASSWORD)
    ended = a.session_id
    b.login(PASSWORD)  # displaces a
    for app in (first_app, second_app):
        body = poll(url, app, returnImmediately=True).json()
        assert body["moreAvailable"] is False and len(body["sets"]) == 1
        jti, token = next(iter(body["sets"].items()))
        claims = verified(url, token, app[0])
        assert claims["jti"] == jti
        event = claims["events"][SESSION_REVOKED]
        assert event["subject"] == {"format": "complex", "session": {"format": "opaque", "id": ended},
                                    "user": {"format": "opaque", "id": a.key_file.user_uuid},
                                    "device": {"format": "opaque", "id": a.key_file.device_id}}
        assert event["initiating_entity"] == "policy" and event["reason_admin"] == {"en": "displaced"}
        assert isinstance(event["event_timestamp"], int)
    # Not acknowledged: it comes again, the same SET; acknowledged: never again.
    again = poll(url, first_app, returnImmediately=True).json()["sets"]
    assert again == poll(url, first_app, returnImmediately=True).json()["sets"] and len(again) == 1
    assert poll(url, first_app, returnImmediately=True, ack=list(again)).json()["sets"] == {}
    assert poll(url, first_app, returnImmediately=True).json() == {"sets": {}, "moreAvailable": False}
    assert len(poll(url, second_app, returnImmediately=True).json()["sets"]) == 1  # the other app's own


def test_an_app_hears_only_of_ends_after_it_was_added(make_server):
    url, ctx = make_server()
    device = register_device(url)
    device.login(PASSWORD)
    device.logout()
    time.sleep(0.01)  # a later millisecond; the same second (ends of a test before may share it)
    late = new_app(ctx)
    assert poll(url, late, returnImmediately=True).json()["sets"] == {}


def test_max_events_pages_and_says_more_is_available(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    app = new_app(ctx)
    first = register_device(url)
    for _ in range(3):
        first.login(PASSWORD)
        first.logout()
    page = poll(url, app, returnImmediately=True, maxEvents=2).json()
    assert len(page["sets"]) == 2 and page["moreAvailable"] is True
    rest = poll(url, app, returnImmediately=True, maxEvents=2, ack=list(page["sets"])).json()
    assert len(rest["sets"]) == 1 and rest["moreAvailable"] is False and not set(rest["sets"]) & set(page["sets"])
    only_ack = poll(url, app, maxEvents=0, ack=list(rest["sets"])).json()  # acknowledges, returns at once
    assert only_ack == {"sets": {}, "moreAvailable": False}


def test_a_long_poll_returns_as_soon_as_a_session_ends(make_server):
    url, ctx = make_server(ssf_long_poll_seconds=20, table_prefix=unique_name("long") + "_")
    app = new_app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    answer: dict = {}
    began = threading.Event()

    def wait():
        started = time.monotonic()
        began.set()
        answer["body"] = poll(url, app, returnImmediately=False).json()
        answer["at"] = time.monotonic()
        answer["held"] = answer["at"] - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert began.wait(30)  # the 1.5 s below count from the poll's start, however late the thread ran
    time.sleep(1.5)
    device.logout()
    ended_at = time.monotonic()
    waiter.join(25)
    assert len(answer["body"]["sets"]) == 1 and answer["held"] >= 1.5
    assert answer["at"] - ended_at < 15  # within the feed's interval (1 s) and a request, not the 20 s hold


def test_a_long_poll_without_events_ends_empty_after_its_hold(make_server):
    # Tables of its own: an app hears the ends of the second it was added in, this module's included.
    url, ctx = make_server(ssf_long_poll_seconds=1, table_prefix=unique_name("quiet") + "_")
    started = time.monotonic()
    assert poll(url, new_app(ctx)).json() == {"sets": {}, "moreAvailable": False}
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("body, field", [
    ({"ack": ["not-a-jti"]}, "ack"),
    ({"ack": ["0000000000000-00000000000000000000000000000000.app_other"]}, "ack"),
    ({"maxEvents": -1}, "maxEvents"),
    ({"maxEvents": 5000}, "maxEvents"),
    ({"returnImmediately": "yes"}, "returnImmediately"),
    ({"ack": "x"}, "ack"),
])
def test_bad_polls_are_refused_with_the_field(make_server, body, field):
    url, ctx = make_server()
    response = poll(url, new_app(ctx), **body)
    assert problem(response)[:2] == (400, "invalid_field") and response.json()["field"].startswith(field)


def test_a_poll_needs_app_credentials(make_server):
    url, ctx = make_server()
    client_id, _ = new_app(ctx)
    for auth in (None, (client_id, "wrong")):
        response = poll(url, auth, returnImmediately=True)
        assert problem(response)[:2] == (401, "invalid_client")
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_parallel_polls_acknowledging_never_lose_an_event(make_server):
    url, ctx = make_server(max_concurrent_devices=0)
    app = new_app(ctx)
    device = register_device(url)
    for _ in range(12):
        device.login(PASSWORD)
        device.logout()
    seen: set[str] = set()
    lock = threading.Lock()

    def consume():
        for _ in range(10):
            body = poll(url, app, returnImmediately=True, maxEvents=3).json()
            with lock:
                seen.update(body["sets"])
            poll(url, app, returnImmediately=True, maxEvents=0, ack=list(body["sets"]))

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(seen) == 12
    assert poll(url, app, returnImmediately=True).json()["sets"] == {}


def new_stream(url, auth, **body) -> dict:
    response = requests.post(url + "/ssf/streams", json=body or None, auth=auth, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def test_each_receiver_stream_hears_every_event_whatever_the_others_acknowledge(make_server):
    # Tables of its own: a new stream begins 10 s back, so it would hear this module's earlier ends.
    url, ctx = make_server(table_prefix=unique_name("streams") + "_")
    app = new_app(ctx)
    one, two = new_stream(url, app), new_stream(url, app, delivery={"method": "urn:ietf:rfc:8936"})
    assert one["aud"] == app[0] and one["iss"] == ctx.jwt.issuer and one["stream_id"] != two["stream_id"]
    assert one["delivery"]["endpoint_url"].endswith("/ssf/poll/" + one["stream_id"])
    device = register_device(url)
    device.login(PASSWORD)
    device.logout()

    def stream_poll(stream, **body):
        path = "/ssf/poll/" + stream["stream_id"]
        return requests.post(url + path, json={"returnImmediately": True, **body}, auth=app, timeout=10).json()

    first = stream_poll(one)["sets"]
    assert len(first) == 1
    assert stream_poll(one, ack=list(first))["sets"] == {}
    assert stream_poll(two)["sets"] == first  # the same SET, not taken by the other stream's ack
    assert poll(url, app, returnImmediately=True).json()["sets"] == first  # nor by the app's own stream


def test_streams_are_the_apps_own_and_end(make_server):
    url, ctx = make_server()
    ctx.clock = clock = FakeClock()
    app, other = new_app(ctx), new_app(ctx, "other")
    stream = new_stream(url, app)["stream_id"]
    assert problem(poll_path(url, other, stream))[:2] == (404, "stream_not_found")
    for bad in ("0" * 32, "not-a-stream", "x" * 40):
        assert problem(poll_path(url, app, bad))[:2] == (404, "stream_not_found")
    assert poll_path(url, app, stream).status_code == 200
    refused = requests.post(url + "/ssf/streams", json={"delivery": {"method": "urn:ietf:rfc:8935"}}, auth=app,
                            timeout=10)
    assert problem(refused)[:2] == (400, "invalid_field")
    assert problem(requests.delete(url + "/ssf/streams", params={"stream_id": stream}, auth=other,
                                   timeout=10))[:2] == (404, "stream_not_found")
    assert requests.delete(url + "/ssf/streams", params={"stream_id": stream}, auth=app, timeout=10).status_code == 204
    assert problem(poll_path(url, app, stream))[:2] == (404, "stream_not_found")
    unpolled = new_stream(url, app)["stream_id"]
    clock.advance(3601)  # an hour without a poll ends a receiver's stream
    assert problem(poll_path(url, app, unpolled))[:2] == (404, "stream_not_found")


def poll_path(url, auth, stream_id) -> requests.Response:
    return requests.post(f"{url}/ssf/poll/{stream_id}", json={"returnImmediately": True}, auth=auth, timeout=10)
