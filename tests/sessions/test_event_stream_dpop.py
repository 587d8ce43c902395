"""GET /session/events of a bound session (SPEC §12): the stream opens only with `Authorization: DPoP`
and a proof for that request; the token as `?access_token=` (what EventSource used to send) comes
without a proof and is refused, so a bound token is never any use in a URL."""
from __future__ import annotations

import requests

from tests.support.live import PASSWORD, register_device


def events(url: str, **kwargs) -> requests.Response:
    return requests.get(url + "/session/events", stream=True, timeout=(10, 30), **kwargs)


def test_a_bound_token_in_the_query_is_refused_and_its_headers_open_the_stream(make_server):
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    assert client.token_type == "DPoP"

    with events(url, params={"access_token": client.access_token}) as in_query:
        assert in_query.status_code == 401
        assert in_query.json()["code"] == "invalid_dpop_proof"
        assert in_query.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')

    with events(url, headers=client.auth_headers("GET", url + "/session/events")) as signed:
        assert signed.status_code == 200
        assert signed.headers["Content-Type"].startswith("text/event-stream")
        assert next(signed.iter_lines(decode_unicode=True)) == "retry: 3000"
