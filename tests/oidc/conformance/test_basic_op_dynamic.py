"""The OpenID Foundation's Basic OP certification plan in its dynamic_client variant: the plan's modules as
test_basic_op.py plays them, each module registering its own client as the suite does (dynamic_client.py:
its registration request, with the initial access token it is configured with, at the OP deployed behind
TLS, and the client deleted at the module's end), with the plan's client_secret_basic; and the three
modules the suite runs for a dynamic client alone (@VariantNotApplicable static_client):
oidcc-idtoken-signature, oidcc-idtoken-unsigned and
oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported (docs/security/test-plans.md).

test_formpost_basic_op_dynamic.py runs these same tests with response_mode=form_post."""
from __future__ import annotations

from typing import Any

import jwt
import pytest

from common.keys.jwt_keys import ID_TOKEN_ALGORITHMS
from tests.oidc.conformance.dynamic_client import (DynamicClient, Registrar, object_redirect, unsigned_objects_listed,
                                                   unsigned_request_object)
from tests.oidc.conformance.relying_party import (RelyingParty, authorization_request, callback_of,
                                                  check_client_auth_supported, code_flow, completed_flow)
from tests.oidc.conformance.test_basic_op import *  # noqa: F403 (the Basic plan's modules, collected here again)

pytestmark = pytest.mark.slow
RESPONSE_MODE = "default"
AUTH = "client_secret_basic"   # the plan's ClientAuthType, registered as the client's token_endpoint_auth_method


def dynamic_client(clients: Registrar, response_mode: str, *, auth: str = AUTH, grant: str | None = None,
                   **metadata: Any) -> DynamicClient:
    """A client registered by the suite's request (OIDCCCreateDynamicClientRegistrationRequest) with the
    module's own members added after it, and `grant` added to its grant_types
    (AddRefreshTokenGrantTypeToDynamicRegistrationRequest); driven in the plan's response mode."""
    request, keys = clients.request(auth=auth)
    if grant:
        request["grant_types"].append(grant)
    request.update(metadata)
    return clients.register(request, keys, response_mode=response_mode)


@pytest.fixture
def rp(clients) -> RelyingParty:
    """The module's own client (configureDynamicClient, at each module's start)."""
    return dynamic_client(clients, RESPONSE_MODE).rp


@pytest.fixture
def secret_post_rp(clients, rp) -> RelyingParty:
    """OIDCCServerTestClientSecretPost in the dynamic variant: its client registered with the
    client_secret_post variant's token_endpoint_auth_method."""
    return dynamic_client(clients, rp.response_mode, auth="client_secret_post").rp


@pytest.fixture
def refresh_clients(clients, rp) -> tuple[RelyingParty, RelyingParty]:
    """OIDCCRefreshToken's two clients, each registered for the refresh_token grant too."""
    first, second = (dynamic_client(clients, rp.response_mode, grant="refresh_token") for _ in range(2))
    return first.rp, second.rp


def test_oidcc_idtoken_signature(op, clients, rp, person):
    # Registered without an algorithm (OIDCCIdTokenSignature adds none), to see the default.
    client = dynamic_client(clients, rp.response_mode)
    assert "id_token_signed_response_alg" not in client.request
    flow = code_flow(op, client.rp, person)
    header = jwt.get_unverified_header(flow.tokens["id_token"])
    assert header.get("kid"), ("EnsureIdTokenContainsKid", header)
    assert header["alg"] == "RS256", ("EnsureIdTokenSignatureIsRS256", header)


def test_oidcc_idtoken_unsigned(op):
    # Skipped: "The discovery endpoint 'id_token_signing_alg_values_supported' doesn't support 'none'
    # algorithm", before a client is registered. citylogin signs every ID token.
    assert "none" not in op.metadata["id_token_signing_alg_values_supported"]
    assert set(op.metadata["id_token_signing_alg_values_supported"]) <= set(ID_TOKEN_ALGORITHMS)


def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(op, clients, client_site, rp,
                                                                                   person):
    # A client registered with a request_uri of the suite's own server (CreateRandomRequestUriWithFragment,
    # AddRequestUriToDynamicRegistrationRequest), and the request as an unsigned request object there.
    check_client_auth_supported(op, AUTH)
    path, request_uri = client_site.new_request_uri()
    client = dynamic_client(clients, rp.response_mode, request_uris=[request_uri])
    assert unsigned_objects_listed(op)     # else skipped: "'none' is not listed in request_object_signing_alg..."
    request = authorization_request(client.rp)
    claims = dict(request.params)                     # ConvertAuthorizationEndpointRequestToRequestObject
    client_site.serve(path, "application/jwt", unsigned_request_object(claims).encode())
    visit = person.go(object_redirect(op, request, claims, "request_uri", request_uri))
    callback = callback_of(client.rp, visit)
    assert callback.get("error") != "request_uri_not_supported"     # else skipped (request_uri is supported)
    completed_flow(op, client.rp, request, visit)
