"""Schemathesis against every service: the all-in-one app and each of the four standalone services
(registration, login, session manager, device manager) as their own processes. Its own engine runs
-- what `schemathesis run --checks all` runs: the examples, coverage and fuzzing phases -- with every
check, so that not only no request gets a 500 but every answer is one the document describes (its
status, content type, headers and schema), invalid requests are refused, valid ones are not refused
for their shape, undocumented methods get 405 and protected operations a 401 without a token. A
registered device is the caller; whenever a request ended its session (logout, force_logout, ...),
the engine's re-authentication logs it in again (or registers a new one if it was removed). A walk
through the success paths checks the answers that random data cannot reach."""
from __future__ import annotations

import ast
import base64
import contextlib
import functools
import importlib
import json
import os
import pkgutil
import re
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable, Iterator

import hypothesis.strategies
import pyrate_limiter
import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis.internal.conjecture import providers
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from accounts.models import Role
from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import Client, sign_challenge
from citylogin.client.errors import CityloginError
from common.errors import ErrorCode, FieldKind
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.oidc import ERROR_PAGE_CODE
from tests.support.operators import operator
from tests.support.services import running_service

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
# The event stream stays open until the access token expires; tests/sessions covers it.
# /oidc/token answers RFC 6749 §5.2's JSON errors, not problem+json, and its form is Authlib's to check;
# tests/oidc covers it (a body model and per-status media types in the OpenAPI document are to come).
NOT_FUZZED = ["/session/events", "/oidc/token", "/oidc/revoke", "/oidc/par",
              "/oidc/device_authorization"]  # all but the first: RFC 6749 JSON errors
# (every /oidc and /admin operation, those four included, gets its own run for server errors below;
# tests/oidc/device/test_device_flow_inputs.py holds the device authorization request to RFC 6749's errors)
# So that the caller can log in again after every logout the fuzzing sends: no lockout, no challenge limit.
UNLIMITED = {"login_max_failures": 10**6, "login_max_failures_per_ip": 10**6, "challenges_per_minute_per_ip": 10**6,
             **RAISED_LIMITS}
STANDALONE = {"registration": "registration.app_registration", "login": "login_app.app_login",
              "session_manager": "session_manager.app_session_manager",
              "device_manager": "device_manager.app_device_manager"}
# Examples per operation in the fuzzing phase (the coverage phase adds its own, per parameter and
# per rule). The standalone services run the same views as the all-in-one app, so they get fewer:
# what is theirs is their own document, routing and error handlers. About 1.5 minutes in all.
ALL_IN_ONE_EXAMPLES = 10
STANDALONE_EXAMPLES = 10
WORKERS = 2

# Every check of Schemathesis runs, except:
#  - max_response_time: a performance budget, not conformance (off unless given a limit);
#  - the stateful phase: the documents declare no links between operations, and its inferred
#    sequences would double the run; use_after_free and ensure_resource_availability still run
#    on what the other phases send.
# positive_data_acceptance runs, and a schema-valid request may still be refused with 400 for
# what a JSON Schema of this API cannot state (see refused_beyond_the_schema). negative_data_rejection
# counts 413 (a body over MAX_CONTENT_LENGTH) and 414 (a request line over the HTTP server's limit)
# as refusals too: both documented, both refuse a request before its data is read.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429", "5xx"]
GENERIC_CODES = {ErrorCode.INVALID_JSON.value, ErrorCode.BAD_REQUEST.value}
SCHEMA_STATED_KINDS = {FieldKind.EMPTY.value, FieldKind.TOO_SHORT.value, FieldKind.TOO_LONG.value,
                       FieldKind.OUT_OF_RANGE.value}


def refused_beyond_the_schema(status: int, problem: dict, sent: object = None) -> bool:
    """Whether a 400 to a schema-valid request refuses what its schema cannot say: a token, QR code,
    challenge or cursor that was never issued (their schema is a string), a password on the list of
    common ones, characters outside a display name's class, an address email-validator refuses (e.g.
    a reserved domain such as .test), or a field required only in some cases (the login's proof,
    unless a TLS proxy verified the certificate: positive data has every field the schema requires,
    so a missing_fields here names only such ones). What a schema states -- types, lengths, bounds,
    a JSON object body -- must never be refused."""
    code = problem.get("code")
    if status != 400 or not isinstance(code, str) or code in GENERIC_CODES:
        return False
    if code == ErrorCode.MISSING_FIELDS.value and isinstance(sent, dict) and \
            any(name in sent for name in problem.get("fields") or []):
        return False  # a field that was sent (as null) counted as missing: the schema should not allow it
    if code == ErrorCode.INVALID_FIELD.value:
        return problem.get("kind") not in SCHEMA_STATED_KINDS
    return True


@dataclass
class Outcome:
    label: str
    checks: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    tolerated: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def kinds(self) -> set[tuple[str, str]]:
        return {tuple(f.split("\n", 1)[0].split(" | ")[:2]) for f in self.failures}

    def summary(self) -> str:
        return (f"{self.label}: {sum(self.checks.values())} checks in {self.seconds:.0f}s, {len(self.failures)} "
                f"failures, {self.tolerated} refusals beyond the schema, {len(self.errors)} errors")


@functools.cache
def import_what_the_engine_imports_late() -> None:
    """The engine's WORKERS threads import modules inside functions; two threads importing modules
    that import each other can see one half made (ImportError: cannot import name ...), more often
    the busier the machine. Imported here first, in one thread, with Hypothesis' reading of the
    local modules' constants (an ast.parse each), nothing is left for the engine's threads to do."""
    for package in (schemathesis, hypothesis.strategies, pyrate_limiter):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=lambda name: None):
            with contextlib.suppress(Exception):  # optional parts (GraphQL, ...) need what is not installed
                importlib.import_module(module.name)
    for name in ("sqlite3", "multiprocessing.synchronize", "cryptography.hazmat.backends.openssl", "encodings.ascii"):
        importlib.import_module(name)
    providers._get_local_constants()


@contextlib.contextmanager
def one_ast_parse_at_a_time() -> Iterator[None]:
    """CPython 3.11's ast is not thread-safe (gh-106905): two threads in ast.parse at once fail with
    SystemError: AST constructor recursion depth mismatch. Hypothesis parses in each engine thread
    (pretty-printing values, describing lambdas, reading constants), so here one parse waits for
    the other."""
    parse, lock = ast.parse, threading.Lock()

    def locked_parse(*args, **kwargs):
        with lock:
            return parse(*args, **kwargs)

    ast.parse = locked_parse
    try:
        yield
    finally:
        ast.parse = parse


def conformance(url: str, new_caller: Callable[[], Client], *, label: str, examples: int) -> Outcome:
    """Run Schemathesis' engine with every check against the service at `url`."""
    import_what_the_engine_imports_late()
    config = SchemathesisConfig.from_dict({
        "base-url": url, "seed": 16, "workers": WORKERS, "cache": {"enabled": False}, "request-timeout": 30,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": examples, "no-shrink": True, "deterministic": True, "database": "none"},
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
                   "stateful": {"enabled": False}},
    })
    schema = schemathesis.openapi.from_url(url + "/openapi.json", config=config).exclude(path=NOT_FUZZED)
    caller = {"client": new_caller()}

    @schema.auth()
    class LogInAgain:
        """The caller's access token; on a 401 the engine asks again and this logs in afresh."""

        def get(self, case, context):
            try:
                caller["client"].login(PASSWORD, force=True)
            except CityloginError:  # the fuzzing removed the device (unbind)
                caller["client"] = new_caller()
                caller["client"].login(PASSWORD, force=True)
            return caller["client"].access_token

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    outcome = Outcome(label)
    started = time.monotonic()
    with one_ast_parse_at_a_time():
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                _record(outcome, event.recorder)
            elif isinstance(event, events.NonFatalError):
                outcome.errors.append(f"{event.label}: {event.value!r}"[:1500])
            elif isinstance(event, events.FatalError):
                outcome.errors.append(f"fatal: {event.exception!r}"[:1500])
    outcome.seconds = time.monotonic() - started
    return outcome


def _record(outcome: Outcome, recorder) -> None:
    for case_id, nodes in recorder.checks.items():
        interaction = recorder.interactions.get(case_id)
        response = interaction.response if interaction else None
        for node in nodes:
            outcome.checks[node.name] = outcome.checks.get(node.name, 0) + 1
            if node.status != Status.FAILURE or node.failure_info is None:
                continue
            failure = node.failure_info.failure
            body = response.content[:600].decode(errors="replace") if response is not None and response.content else ""
            if node.name == "positive_data_acceptance" and response is not None and \
                    refused_beyond_the_schema(response.status_code, _problem(response), _sent(interaction)):
                outcome.tolerated += 1
                continue
            status = response.status_code if response is not None else None
            outcome.failures.append(f"{node.name} | {recorder.label} | {failure.code} {failure.title}\n"
                                    f"{failure.message[:600]}\n[{status}] {body}\n"
                                    f"{node.failure_info.code_sample[:600]}")


def _sent(interaction) -> object:
    """The JSON body of the request, if it had one."""
    try:
        return json.loads(interaction.request.body or b"")
    except (ValueError, AttributeError):
        return None


def _problem(response) -> dict:
    """A refusal's problem details; an /oidc error page's (SPEC §14: HTML for the person) as its code."""
    page = ERROR_PAGE_CODE.search(response.content[:2000].decode(errors="replace")) if response.content else None
    if page:
        return {"code": page["error"]}
    try:
        body = response.json()
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}


def _assert_conforms(outcome: Outcome, *, operations: int) -> None:
    print(outcome.summary())
    assert not outcome.errors, "\n\n".join(outcome.errors)
    assert not outcome.failures, f"{outcome.summary()}: {sorted(outcome.kinds())}\n\n" + "\n\n".join(outcome.failures)
    # Every check ran (object_level_authorization needs a second identity, which the engine only
    # draws from a configured auth section; it finds nothing to compare here and passes).
    assert outcome.checks.get("status_code_conformance", 0) >= operations * 5, outcome.summary()


@pytest.mark.timeout(300)
def test_the_all_in_one_app_conforms_to_its_document(make_server):
    url, _ = make_server(**UNLIMITED, pairing_tokens_per_hour=3)

    def new_caller() -> Client:
        name = unique_name()
        client = Client(url)
        client.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        return client

    _assert_conforms(conformance(url, new_caller, label="all-in-one", examples=ALL_IN_ONE_EXAMPLES), operations=30)


@pytest.fixture(scope="module")
def standalone_services(dynamodb_endpoint, tmp_path_factory):
    """The four services as their own processes on one DynamoDB Local, with their own tables (not the
    all-in-one app's, whose key ring is sealed under another key) and one key-encryption key."""
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("t") + "_", **FAST_ARGON2,
                      **UNLIMITED, "pairing_tokens_per_hour": 3})
    env["CITYLOGIN_KEY_ENCRYPTION_KEY"] = base64.b64encode(os.urandom(32)).decode()
    with ExitStack() as stack:
        yield {name: stack.enter_context(running_service(module, {
            **env, "CITYLOGIN_DATA_DIR": str(tmp_path_factory.mktemp(name))}, timeout=120))
            for name, module in STANDALONE.items()}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("service", list(STANDALONE))
def test_each_standalone_service_conforms_to_its_document(standalone_services, service):
    urls = standalone_services

    def new_caller() -> Client:  # registered on the registration service, logged in on the login service
        name = unique_name()
        key_file = Client(urls["registration"]).register(username=name, email=f"{name}@example.com",
                                                         password=PASSWORD)
        return Client(urls["login"], key_file=key_file)

    outcome = conformance(urls[service], new_caller, label=service, examples=STANDALONE_EXAMPLES)
    _assert_conforms(outcome, operations=2)


def test_success_answers_match_the_document(make_server):
    url, _ = make_server(**UNLIMITED)  # (the fuzzing before used this module's challenge counter)
    # one live device per account: the second login gets the 409 and confirms
    schema = schemathesis.openapi.from_url(url + "/openapi.json")

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


# --- /oidc and /admin: no server error, whatever is sent (SPEC §14, §15) ---------------------------------

OIDC_AND_ADMIN = r"^/(oidc|admin)/"
OIDC_AND_ADMIN_EXAMPLES = 12  # per operation in the fuzzing phase: about a minute in all


@dataclass
class ServerErrors:
    cases: int = 0
    operations: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # per operation

    def summary(self) -> str:
        return (f"/oidc and /admin: {self.cases} cases over {len(self.operations)} operations in {self.seconds:.0f}s, "
                f"{len(self.errors)} server errors")


def server_errors(url: str, caller: Callable[[], Client], *, examples: int, records: dict[str, str]) -> ServerErrors:
    """Every /oidc and /admin operation of the document, through Schemathesis' examples, coverage and
    fuzzing phases, with not_a_server_error alone: their RFC 6749 JSON errors (token, PAR, revocation)
    and redirects are tests/oidc's to check, a 5xx is this run's. `records` are path parameters that
    name records that exist (an app, a person), so that the fuzzed bodies reach the code behind the 404."""
    import_what_the_engine_imports_late()
    config = SchemathesisConfig.from_dict({
        "base-url": url, "seed": 42, "workers": WORKERS, "cache": {"enabled": False}, "request-timeout": 30,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": examples, "no-shrink": True, "deterministic": True, "database": "none"},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
                   "stateful": {"enabled": False}},
    })
    schema = schemathesis.openapi.from_url(url + "/openapi.json", config=config).include(path_regex=OIDC_AND_ADMIN)

    @schema.auth()
    class Operator:
        """The operator's DPoP-bound session: a proof by its device key for each request."""

        def get(self, case, context):
            return caller()

        def set(self, case, data, context):
            if (case.headers or {}).get("Authorization", "Bearer").startswith("Bearer"):  # an app's Basic stays
                case.path_parameters = {**(case.path_parameters or {}), **{
                    name: value for name, value in records.items() if name in (case.path_parameters or {})}}
                target = url + case.formatted_path  # the URL the proof is for
                case.headers = {**(case.headers or {}), **data.auth_headers(case.method, target)}

    found = ServerErrors()
    started = time.monotonic()
    with one_ast_parse_at_a_time():
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                found.operations.add(event.recorder.label)
                found.cases += len(event.recorder.interactions)
                seen = found.statuses.setdefault(event.recorder.label, {})
                for interaction in event.recorder.interactions.values():
                    status = interaction.response.status_code if interaction.response is not None else 0
                    seen[status] = seen.get(status, 0) + 1
                for nodes in event.recorder.checks.values():
                    found.errors += [f"{event.recorder.label}: {n.failure_info.failure.title}\n"
                                     f"{n.failure_info.code_sample[:600]}"
                                     for n in nodes if n.status == Status.FAILURE and n.failure_info is not None]
            elif isinstance(event, (events.NonFatalError, events.FatalError)):
                found.errors.append(f"engine: {getattr(event, 'value', getattr(event, 'exception', ''))!r}"[:1500])
    found.seconds = time.monotonic() - started
    return found


@pytest.mark.timeout(300)
def test_no_oidc_or_admin_operation_is_a_server_error(make_server):
    url, ctx = make_server(**UNLIMITED)
    app = apps.add_app(ctx, name="Fuzzed", push_url=None, oidc=OidcClient(redirect_uris=("https://app.example/cb",)))
    admin, acted_upon = {"client": operator(url, ctx, Role.ADMIN)}, operator(url, ctx, Role.SUPPORT)

    lock = threading.Lock()

    def caller() -> Client:
        """The operator, signed in: asked again after a 401, it logs in again only if the session ended
        (a login of its device would end the session the other worker uses)."""
        with lock:
            try:
                admin["client"].me()
            except CityloginError:
                try:
                    admin["client"].login(PASSWORD, force=True)
                except CityloginError:  # the fuzzing locked or removed the operator: another one
                    admin["client"] = operator(url, ctx, Role.ADMIN)
            return admin["client"]

    found = server_errors(url, caller, examples=OIDC_AND_ADMIN_EXAMPLES, records={
        "client_id": app.app.client_id, "user_uuid": acted_upon.key_file.user_uuid})
    print(found.summary(), *(f"{label}: {sorted(seen.items())}" for label, seen in sorted(found.statuses.items())),
          sep="\n")
    assert not found.errors, found.summary() + "\n\n" + "\n\n".join(found.errors)
    document = requests.get(url + "/openapi.json", timeout=10).json()["paths"]
    expected = {f"{method.upper()} {path}" for path, methods in document.items()
                if re.match(OIDC_AND_ADMIN, path) for method in methods}
    assert expected <= found.operations, sorted(expected - found.operations)
