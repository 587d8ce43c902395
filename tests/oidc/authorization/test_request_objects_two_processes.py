"""A request object's jti is used once on every host (SPEC §14, RFC 9101 §10.8): two `citylogin serve`
processes over one set of tables, the same object sent to both at once, by value and pushed (PAR). Of
each pair one request is kept (the browser goes to the sign-in page, or a request_uri comes back) and
the other is invalid_request_object: the jti is spent by the one conditional write that keeps the
request, whichever process wins."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from tests.support.request_objects import REDIRECT, request_object_deployment, signed, standard_claims

pytestmark = pytest.mark.slow  # two server processes

ROUNDS = 5


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory):
    with request_object_deployment(dynamodb_endpoint, tmp_path_factory.mktemp("reqobj2p"), hosts=2) as made:
        yield made


def _object(deployment, name: str) -> str:
    claims = standard_claims(deployment.client_id(name), deployment.issuer, response_type="code", scope="openid",
                             redirect_uri=REDIRECT, state="inside", code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbu"
                             "GJSstw-cM", code_challenge_method="S256")
    return signed(deployment.keys.for_alg("PS256"), claims, alg="PS256")


def _both_at_once(send, hosts, deployment, request_object: str) -> list:
    """`send(host, deployment, request_object)` on each host from its own thread, released together."""
    start = threading.Barrier(len(hosts))

    def released(host):
        start.wait(timeout=30)
        return send(host, deployment, request_object)
    with ThreadPoolExecutor(len(hosts)) as pool:
        return list(pool.map(released, hosts))


def _authorize_outcome(host: str, deployment, request_object: str) -> str:
    params = {"client_id": deployment.client_id("signed"), "response_type": "code", "scope": "openid",
              "redirect_uri": REDIRECT, "request": request_object}
    answer = requests.get(f"{host}/oidc/authorize?{urlencode(params)}", allow_redirects=False, timeout=60)
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    location = answer.headers["Location"]
    if urlsplit(location).fragment.startswith("oidc="):
        return "kept"
    assert location.startswith(REDIRECT + "?") and "state=inside" in location, location
    return "error=invalid_request_object" in location and "refused"


def test_one_object_sent_to_both_processes_at_once_is_taken_once(deployment):
    for _ in range(ROUNDS):
        request_object = _object(deployment, "signed")
        outcomes = _both_at_once(_authorize_outcome, deployment.hosts, deployment, request_object)
        assert sorted(outcomes) == ["kept", "refused"], outcomes


def _push_outcome(host: str, deployment, request_object: str) -> str:
    app = deployment.apps["strict"]
    now = int(time.time())
    assertion = signed(deployment.keys.ec, {"iss": app["client_id"], "sub": app["client_id"], "aud": deployment.issuer,
                                            "jti": uuid.uuid4().hex, "iat": now, "exp": now + 60}, alg="ES256")
    answer = requests.post(host + "/oidc/par", timeout=60, data={
        "client_id": app["client_id"], "request": request_object, "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
    if answer.status_code == 201:
        return "kept"
    assert answer.status_code == 400, answer.text
    return answer.json()["error"] == "invalid_request_object" and "refused"


def test_one_object_pushed_to_both_processes_at_once_is_taken_once(deployment):
    for _ in range(ROUNDS):
        request_object = _object(deployment, "strict")
        outcomes = _both_at_once(_push_outcome, deployment.hosts, deployment, request_object)
        assert sorted(outcomes) == ["kept", "refused"], outcomes
