"""One OP per test file: the all-in-one app on a real socket, shared by the file's tests as the
conformance suite shares one OP across a plan's modules (docs/security/test-plans.md); and one browser
(the worker's Chromium) with the suite's test user registered in it through the web UI, and the app's
server the browser comes back to. A test file may set `OP_SETTINGS` (extra settings) for its servers."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts import user_service
from relying_parties import registration_tokens
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, unique_name
from tests.oidc.conformance.browser_person import CallbackReceiver, Person
from tests.oidc.conformance.dynamic_client import ClientSite, registrar
from tests.oidc.conformance.relying_party import Provider, discovered
from tests.support.fixtures import app_servers
from tests.support.live import verify_address

# The issuer of an OP deployed as the standards expect it (TLS in front; CITYLOGIN_PUBLIC_URL https).
DEPLOYED_ISSUER = "https://login.example"


@pytest.fixture(scope="package")
def table_prefix() -> str:
    """One set of tables for the plans' files (creating them is most of an OP's start)."""
    return f"t{uuid.uuid4().hex[:8]}_"


@pytest.fixture(scope="module")
def start_op(request, dynamodb_endpoint, data_dir, table_prefix) -> Iterator[Callable[..., Any]]:
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir), "table_prefix": table_prefix,
              "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS, "dynamodb_parameter_validation": True,
              "deletion_sweep_interval": 0, "ssf_push_interval": 0, "session_sweep_interval": 0,
              # the suite's pages (a client's jwks_uri, its request_uri) are on this machine's loopback here
              "oidc_fetch_private_addresses": True, **getattr(request.module, "OP_SETTINGS", {})}
    with app_servers(config) as start:
        yield start


@pytest.fixture(scope="module")
def op(start_op) -> Provider:
    """The OP at its own address: its issuer is the URL the tests reach it at."""
    url, ctx = start_op(host_name="127.0.0.1")
    return Provider(url=url, ctx=ctx, metadata=discovered(url))


@pytest.fixture(scope="module")
def deployed_op(start_op) -> Provider:
    """The OP as deployed behind TLS: its issuer https://login.example, reached here at its socket. It
    pushes nothing: on the same tables as `op`, whose issuer differs, its pusher would deliver `op`'s
    logout tokens signed as https://login.example (every process of a real deployment shares its issuer)."""
    url, ctx = start_op(public_url=DEPLOYED_ISSUER, ssf_push_interval=0)
    return Provider(url=url, ctx=ctx, metadata=discovered(url))


@pytest.fixture(scope="module")
def app_server() -> Iterator[CallbackReceiver]:
    """The app's server: where the browser brings the authorization response and the logout's return."""
    with CallbackReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def client_site() -> Iterator[ClientSite]:
    """The suite's own web server (its base URL): a dynamic client's jwks_uri, logo, policy page and
    request objects by reference."""
    with ClientSite() as site:
        yield site


@pytest.fixture(scope="module")
def initial_access_token(op) -> str:
    """The initial access token the suite is configured with (its client.initial_access_token), made as
    an operator makes one (`citylogin apps registration-token`), enough for the file's registrations."""
    return registration_tokens.make_token(op.ctx, expires_in=3600, uses=100, created_by="conformance tester").token


@pytest.fixture
def clients(deployed_op, app_server, client_site, initial_access_token):
    """A module's dynamic registrations (dynamic_client.Registrar), unregistered at its end
    (AbstractOIDCCServerTest.cleanup): sent to the OP deployed behind TLS, whose registration_client_uri
    the suite requires to be https (VerifyClientManagementCredentials); the clients then sign in at `op`,
    the same deployment (its tables) at the address the browser reaches."""
    with registrar(deployed_op, app_server.url, client_site, initial_access_token) as module:
        yield module


@pytest.fixture(scope="module")
def person(browser, op, app_server) -> Iterator[Person]:
    """The suite's test user: an account made on citylogin's own page in this browser (its first device
    the browser), its address verified, and signed in there."""
    person = Person(browser, op.url, app_server, unique_name())
    try:
        person.register()
        user = user_service.find_user(op.ctx, username=person.username)
        assert user is not None
        verify_address(op.ctx, user_uuid=user.user_uuid)
        yield person
    finally:
        errors = person.close()
    assert not errors, errors     # no uncaught script error or Content-Security-Policy violation
