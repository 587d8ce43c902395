"""Schemathesis against the all-in-one app: requests generated from its own OpenAPI document,
valid ones and invalid ones, never get a 500, and every answer matches the document (its status,
content type and schema). A logged-in device makes the protected operations reachable, and a
walk through the success paths checks the answers that random data cannot reach."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from citylogin.client import sign_challenge
from tests.conftest import unique_name
from tests.support.live import PASSWORD, register_device

EXAMPLES_PER_OPERATION = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
# The event stream stays open until the access token expires; tests/session_manager covers it.
NOT_FUZZED = {"GET /session/events"}


def load_schema(url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(requests.get(url + "/openapi.json", timeout=10).json())


@dataclass
class Tally:
    operations: set[str] = field(default_factory=set)
    examples: int = 0
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def record(self, failures: FailureGroup, curl: str) -> None:
        for failure in failures.exceptions:
            report = f"{failure.title}: {curl}\n{failure.message}"[:1500]
            (self.server_errors if isinstance(failure, ServerError) else self.violations).append(report)

    def summary(self) -> str:
        return (f"schemathesis: {len(self.operations)} operations, {self.examples} examples, "
                f"{len(self.server_errors)} server errors, {len(self.violations)} schema violations")


class Caller:
    """A registered device whose session the fuzzed operations may end; it logs in again when one did."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = register_device(url)
        self.client.login(PASSWORD)
        self.maybe_ended = False

    def headers(self) -> dict[str, str]:
        if self.maybe_ended and self._get("/session/me").status_code == 401:
            self.client.login(PASSWORD, force=True)
        self.maybe_ended = False
        return {"Authorization": f"Bearer {self.client.access_token}"}

    def own_ids(self) -> dict[str, str]:
        """Path parameters naming the caller's own records, so that success answers are reached too."""
        me = self._get("/session/me").json()
        return {"device_id": me["device_id"], "session_id": me["session_id"]}

    def _get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {self.client.access_token}"},
                            timeout=10)


def strategy(operation, mode, caller: Caller):
    generated = operation.as_strategy(generation_mode=mode)
    names = re.findall(r"{([^}]+)}", operation.path)
    if not names or mode != schemathesis.GenerationMode.POSITIVE:
        return generated
    own = {name: value for name, value in caller.own_ids().items() if name in names}
    return st.one_of(generated, operation.as_strategy(generation_mode=mode, path_parameters=own))


def fuzz(operation, mode, *, url: str, caller: Caller, tally: Tally) -> None:
    protected = "security" in operation.definition.raw

    @given(case=strategy(operation, mode, caller))
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        tally.examples += 1
        headers = caller.headers() if protected else None
        try:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
        except FailureGroup as failures:
            tally.record(failures, case.as_curl_command(headers=headers, base_url=url))
        caller.maybe_ended = protected and case.method != "GET"  # logout, logout_all, DELETE /session/<own>

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid: the operation takes no body and no parameters.
        assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label


@pytest.mark.timeout(240)
def test_generated_requests_get_documented_answers_and_never_a_500(make_server):
    # The caller logs in again after every logout the fuzzing sends: no lockout, no challenge limit.
    url, _ = make_server(login_max_failures=10**6, login_max_failures_per_ip=10**6,
                         challenges_per_minute_per_ip=10**6, pairing_tokens_per_hour=3)
    caller = Caller(url)
    tally = Tally()
    for result in load_schema(url).get_all_operations():
        operation = result.ok()
        if operation.label in NOT_FUZZED:
            continue
        tally.operations.add(operation.label)
        for mode in MODES:
            fuzz(operation, mode, url=url, caller=caller, tally=tally)
    print(tally.summary())
    assert len(tally.operations) >= 18 and tally.examples >= 18 * EXAMPLES_PER_OPERATION, tally.summary()
    assert not tally.server_errors, "\n\n".join(tally.server_errors)
    assert not tally.violations, "\n\n".join(tally.violations)


def test_success_answers_match_the_document(make_server):
    url, _ = make_server()  # one live device per account: the second login gets the 409 and confirms
    schema = load_schema(url)

    def call(method: str, path: str, status: int, *, token: str | None = None, **body) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        case = schema[path][method].Case(body=body, media_type="application/json")
        response = case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)
        assert response.status_code == status, (method, path, response.text[:300])
        return response.json()

    def login(device: dict, status: int = 200) -> dict:
        challenge = call("POST", "/login/challenge", 201)["challenge"]
        signature = sign_challenge(load_pem_private_key(device["private_key"].encode(), None), challenge)
        return call("POST", "/login/", status, username=name, password=PASSWORD, client_cert=device["client_cert"],
                    challenge=challenge, signature=signature)

    name = unique_name()
    first = call("POST", "/registration/", 201, username=name, email=f"{name}@example.com", password=PASSWORD)
    tokens = login(first)
    tokens = call("POST", "/session/refresh", 200, refresh_token=tokens["refresh_token"])
    pairing = call("POST", "/registration/request_pairing_token", 201, token=tokens["access_token"])
    second = call("POST", "/device/register", 201, qr_code=pairing["qr_code"], username=name, password=PASSWORD)
    refused = login(second, status=409)
    tokens = call("POST", "/login/confirm", 200, confirm_token=refused["confirm_token"])
    pairing = call("POST", "/registration/request_pairing_token", 201, token=tokens["access_token"])
    call("POST", "/registration/", 201, qr_code=pairing["qr_code"], username=name, password=PASSWORD)
