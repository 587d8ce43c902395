"""What the OpenID Provider keeps for one address (SPEC §14 Authorize): authorization requests and pushed
requests are limited per client address a minute (the app hears `temporarily_unavailable`, by redirect
at /oidc/authorize, as a 429 with Retry-After in RFC 6749's JSON at /oidc/par) while another address
still signs in; only requests that would be kept count; and what one request may keep is bounded
(invalid_request, nothing stored)."""
from __future__ import annotations

import random

import pytest
import requests
from authlib.oauth2.rfc6749 import InvalidRequestError
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from werkzeug.datastructures import MultiDict

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.core.refusals import reason_of
from oidc.authorization.checks import MAX_KEPT_SIZE, check_kept_size
from oidc.core.store import PAR_KIND, REQUEST_KIND
from tests.support.live import FakeClock
from tests.support.oidc import authorize_url, pkce_pair, query_of

REDIRECT = "https://app.example/callback"
LIMIT = 3


@pytest.fixture
def limited(make_server):
    """A server behind one trusted proxy (the client address is X-Forwarded-For's) that keeps LIMIT
    authorization requests and LIMIT pushed requests per address a minute, on a clock of the test's own,
    and an app."""
    url, ctx = make_server(authorization_requests_per_minute_per_ip=LIMIT, pushed_requests_per_minute_per_ip=LIMIT,
                           trusted_proxies=1, host_name="127.0.0.1")
    clock = FakeClock()
    clock.advance(60 - clock.moment.timestamp() % 60)  # the start of a minute: the whole window is the test's
    ctx.clock = clock
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    return url, ctx, clock, credentials


def an_address() -> str:
    """An address no other test uses (198.18.0.0/15, RFC 2544's benchmarking range)."""
    return f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _params(client_id: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
            "state": "the-state", "code_challenge": challenge, "code_challenge_method": "S256", **extra}


def authorize(url: str, address: str, params: dict[str, str]) -> requests.Response:
    return requests.get(authorize_url(url, **params), headers={"X-Forwarded-For": address}, allow_redirects=False,
                        timeout=10)


def push(url: str, credentials, address: str, params: dict[str, str]) -> requests.Response:
    return requests.post(url + "/oidc/par", data=params, headers={"X-Forwarded-For": address},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


def kept(ctx, kind: str) -> int:
    """How many items of `kind` the one-time table holds (a scan is fine in a test)."""
    count, start = 0, {}
    while True:
        page = ctx.dynamodb.scan(TableName=ctx.tables.one_time_tokens, ConsistentRead=True, **start)
        count += sum(1 for item in page["Items"] if item.get("kind", {}).get("S") == kind)
        if "LastEvaluatedKey" not in page:
            return count
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def refused_count(endpoint: str) -> float:
    labels = {"endpoint": endpoint, "error": "temporarily_unavailable", "reason": "rate_limited"}
    return REGISTRY.get_sample_value("citylogin_oidc_refusals_total", labels) or 0.0


def test_authorization_requests_past_the_limit_go_back_to_the_app_while_another_address_signs_in(limited):
    url, ctx, clock, credentials = limited
    limited_before = {"authorize": refused_count("authorize")}
    busy, other = an_address(), an_address()
    for _ in range(LIMIT):
        answer = authorize(url, busy, _params(credentials.app.client_id))
        assert answer.status_code == 303 and "#oidc=" in answer.headers["Location"], answer.text
    before = kept(ctx, REQUEST_KIND)

    refused = authorize(url, busy, _params(credentials.app.client_id))
    assert refused.status_code == 303 and refused.headers["Location"].startswith(REDIRECT + "?")
    error = query_of(refused.headers["Location"])
    assert (error["error"], error["state"], error["iss"]) == ("temporarily_unavailable", "the-state", url)
    assert kept(ctx, REQUEST_KIND) == before                       # nothing kept for the refused one
    assert refused_count("authorize") == limited_before["authorize"] + 1

    assert "#oidc=" in authorize(url, other, _params(credentials.app.client_id)).headers["Location"]
    clock.advance(60)                                               # the next minute: the address may again
    assert "#oidc=" in authorize(url, busy, _params(credentials.app.client_id)).headers["Location"]


def test_only_requests_that_would_be_kept_count(limited):
    url, _, _, credentials = limited
    address = an_address()
    for _ in range(LIMIT * 3):   # refused at once (an unknown client, a bad prompt): nothing kept, nothing counted
        assert authorize(url, address, _params("app_unknown")).status_code == 400
        bad = authorize(url, address, _params(credentials.app.client_id, prompt="sometimes"))
        assert query_of(bad.headers["Location"])["error"] == "invalid_request"
    for _ in range(LIMIT):
        assert "#oidc=" in authorize(url, address, _params(credentials.app.client_id)).headers["Location"]


def test_pushed_requests_past_the_limit_are_429_temporarily_unavailable_with_retry_after(limited):
    url, ctx, clock, credentials = limited
    busy, other = an_address(), an_address()
    for _ in range(LIMIT):
        assert push(url, credentials, busy, _params(credentials.app.client_id)).status_code == 201
    before, counted = kept(ctx, PAR_KIND), refused_count("par")
    clock.advance(15)
    refused = push(url, credentials, busy, _params(credentials.app.client_id))
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/json" and refused.headers["Retry-After"] == "45"
    assert refused.json()["error"] == "temporarily_unavailable"
    assert kept(ctx, PAR_KIND) == before and refused_count("par") == counted + 1
    assert push(url, credentials, other, _params(credentials.app.client_id)).status_code == 201


def test_what_one_request_may_keep_is_bounded_and_an_oversize_one_keeps_nothing(limited):
    url, ctx, _, credentials = limited
    address = an_address()
    # What a real app sends is kept: a 4 KB state, a nonce, a login_hint, ui_locales, a claims request.
    roomy = _params(credentials.app.client_id, state="s" * 4096, nonce="n" * 64, login_hint="someone@example.com",
                    ui_locales="fr-CA fr en", claims='{"id_token": {"email": {"essential": true}}}' * 20)
    assert "#oidc=" in authorize(url, address, roomy).headers["Location"]
    assert push(url, credentials, address, roomy).status_code == 201

    requests_before, pushed_before = kept(ctx, REQUEST_KIND), kept(ctx, PAR_KIND)
    oversize = _params(credentials.app.client_id, state="s" * 4000, nonce="n" * 4000, login_hint="h" * 400)
    assert sum(len(k) + len(v) for k, v in oversize.items()) > MAX_KEPT_SIZE
    refused = authorize(url, address, oversize)
    assert refused.status_code == 303 and query_of(refused.headers["Location"])["error"] == "invalid_request"
    pushed = push(url, credentials, address, oversize)
    assert pushed.status_code == 400 and pushed.json()["error"] == "invalid_request"
    assert kept(ctx, REQUEST_KIND) == requests_before and kept(ctx, PAR_KIND) == pushed_before


NAMES = st.sampled_from(["state", "nonce", "login_hint", "ui_locales", "claims", "x", "é", "client_secret",
                         "client_assertion"])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(values=st.lists(st.tuples(NAMES, st.text(max_size=3000) | st.text(alphabet="aé€𝄞", max_size=3000)),
                       max_size=8))
def test_the_bound_is_the_kept_parameters_in_utf8_and_nothing_else(values):
    """Refused exactly when the kept names and values are over MAX_KEPT_SIZE bytes of UTF-8 (multi-byte
    letters count as their bytes; a repeated name counts each time), and the client's credentials,
    never kept, do not count."""
    params = MultiDict(values)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in values if k not in ("client_secret", "client_assertion"))
    try:
        check_kept_size(params)
    except InvalidRequestError as error:
        assert size > MAX_KEPT_SIZE and reason_of(error) == "request_too_large"
    else:
        assert size <= MAX_KEPT_SIZE
