"""The provider's callback under whatever a browser or an attacker sends it (SPEC §16): any state, code, iss,
error, user, extra or repeated parameters, huge or odd values, by GET or form POST, with or without cookies,
is answered with a page naming a refusal's code (4xx), or for a first form post without its cookie the page
that posts it again from this service; never a 500, never a ticket."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citylogin.app import create_app
from federation import providers, tickets, transactions
from tests.conftest import unique_name
from tests.support.live import stop_background

pytestmark = pytest.mark.slow  # a fuzz: many requests through DynamoDB Local

CODE = re.compile(r'data-error="([a-z_]+)"')
NAMES = ("state", "code", "iss", "error", "user", "error_description", "session_state", transactions.REPOSTED)
odd_text = st.one_of(st.text(max_size=40), st.text(alphabet="\x00\x1f\u202e<>\"'&%/\\", max_size=20),
                     st.just("x" * 5000), st.just(""), st.just("access_denied"), st.just("server_error"))
params = st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=10)),
                         st.lists(odd_text, min_size=1, max_size=3), max_size=6)


@pytest.fixture
def app(base_config):
    app = create_app({**base_config, "public_url": "http://localhost", "oidc_fetch_private_addresses": True})
    context = app.extensions["citylogin"]
    name = unique_name("fz")[:20]
    providers.add_provider(context, name=name, preset="generic", issuer="http://127.0.0.1:9", client_id="fuzz",
                           client_secret="fuzz-secret")
    app.config["PROVIDER"] = name
    yield app
    stop_background(context)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(sent=params, post=st.booleans(), cookie=st.one_of(st.none(), st.text(max_size=30)),
       provider=st.one_of(st.none(), st.sampled_from(["nobody", "a" * 40, "UPPER"])))
def test_any_callback_is_a_refusal_page_never_a_ticket(app, sent, post, cookie, provider):
    name = provider or app.config["PROVIDER"]
    client = app.test_client()
    state = (sent.get("state") or [""])[0]
    if cookie is not None and state and len(state) <= transactions.MAX_VALUE:
        client.set_cookie(transactions.cookie_name(state), cookie.encode("ascii", "ignore").decode() or "x",
                          path="/federation")
    url = f"/federation/{name}/callback"
    answer = client.post(url, data=sent) if post else client.get(url, query_string=sent)
    assert answer.status_code != 500
    assert not any(header.startswith(f"{tickets.COOKIE}=") for header in answer.headers.getlist("Set-Cookie"))
    page = answer.get_data(as_text=True)
    if answer.status_code == 200:  # a first form post without its cookie: posted again from here, once
        assert post and 'id="oidc-response"' in page and transactions.REPOSTED in page
        return
    assert 400 <= answer.status_code < 500 or answer.status_code == 503, answer.status_code
    assert answer.mimetype == "text/html"
    assert CODE.search(page), page[:300]
