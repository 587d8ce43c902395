"""The OpenID Foundation's Config OP certification plan (oidcc-config-certification-test-plan: discovery,
a static client): its one module, oidcc-discovery-endpoint-verification, asserting each of the module's
conditions on the discovery document of an OP deployed as the standards expect (issuer over https;
docs/security/test-plans.md)."""
from __future__ import annotations

import pytest

from tests.oidc.conformance.conftest import DEPLOYED_ISSUER
from tests.oidc.conformance.discovery_checks import (
    OIDC_RESPONSE_TYPES, SCOPE_TOKEN, WELL_KNOWN, check_all_endpoints_are_https, check_array_holds, check_https_url,
    check_issuer, check_jwks, check_locales, check_types, discovery_answer)

pytestmark = pytest.mark.slow  # the conformance plans run in the full suite


def test_oidcc_discovery_endpoint_verification(deployed_op):
    metadata = discovery_answer(deployed_op).json()
    assert metadata == deployed_op.metadata
    check_array_holds(metadata, "response_types_supported", OIDC_RESPONSE_TYPES)   # ...ResponseTypesSupported
    check_issuer(metadata, DEPLOYED_ISSUER + WELL_KNOWN)
    check_types(metadata)
    check_array_holds(metadata, "subject_types_supported", {"public", "pairwise"})
    check_array_holds(metadata, "id_token_signing_alg_values_supported", {"RS256"})
    if "userinfo_signing_alg_values_supported" in metadata:
        assert isinstance(metadata["userinfo_signing_alg_values_supported"], list)
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        check_https_url(metadata[name])                                  # CheckDiscEndpoint...Endpoint, CheckJwksUri
    check_https_url(metadata["registration_endpoint"])                   # checked when present (RFC 7591)
    check_jwks(deployed_op)
    for flag in ("request_parameter_supported", "request_uri_parameter_supported", "claims_parameter_supported"):
        assert isinstance(metadata.get(flag, False), bool), flag         # the suite notes them (INFO)
    check_array_holds(metadata, "request_object_signing_alg_values_supported", {"RS256"})  # ...IncludesRS256
    assert isinstance(metadata.get("claims_supported"), list) and metadata["claims_supported"]  # ...ClaimsSupported
    assert isinstance(metadata["grant_types_supported"], list) and metadata["grant_types_supported"]
    check_array_holds(metadata, "scopes_supported", {"openid"})          # ...ScopesSupportedContainsOpenId
    assert all(SCOPE_TOKEN.fullmatch(scope) for scope in metadata["scopes_supported"])   # ...ScopesSupportedSyntax
    check_locales(metadata)
    check_all_endpoints_are_https(metadata)
    check_array_holds(metadata, "code_challenge_methods_supported", {"S256", "plain"})  # ...IsAnArray
