"""The OpenID Provider's metadata (OpenID Connect Discovery 1.0, RFC 8414; SPEC §14): what every
service answers at /.well-known/openid-configuration and /.well-known/oauth-authorization-server."""
from __future__ import annotations

from typing import Any

from common.crypto import dpop

SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access"]
CLAIMS_SUPPORTED = ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr", "at_hash",
                    "azp", "preferred_username", "email", "email_verified", "locale", "zoneinfo"]
# How an app authenticates at the token, PAR and revocation endpoints (private_key_jwt: RFC 7523, with
# the asymmetric algorithms of oidc.registration.client_keys).
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
CLIENT_ASSERTION_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                               "EdDSA"]

# What signs a request object (oidc.authorization.request_object_checks.SIGNING_ALGORITHMS)
REQUEST_OBJECT_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]


def provider_metadata(issuer: str, *, id_token_algorithms: list[str]) -> dict[str, Any]:
    """The metadata of the provider at `issuer` (CITYLOGIN_PUBLIC_URL, without a trailing slash)."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oidc/authorize",
        "token_endpoint": f"{issuer}/oidc/token",
        "userinfo_endpoint": f"{issuer}/oidc/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "introspection_endpoint": f"{issuer}/session/introspect",
        "revocation_endpoint": f"{issuer}/oidc/revoke",
        "end_session_endpoint": f"{issuer}/oidc/logout",
        "pushed_authorization_request_endpoint": f"{issuer}/oidc/par",
        "device_authorization_endpoint": f"{issuer}/oidc/device_authorization",  # RFC 8628
        "registration_endpoint": f"{issuer}/oidc/register",  # RFC 7591 (oidc.registration.endpoint)
        "require_pushed_authorization_requests": False,  # per app: citylogin apps add --require-par
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGORITHMS,
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": CLAIMS_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],  # OAuth 2.0 Form Post Response Mode
        # client_credentials: an app added with --admin-role, for the admin API alone (SPEC §15)
        # the device code: a TV or a command line, approved on the person's phone (RFC 8628, oidc.device.flow)
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  "urn:ietf:params:oauth:grant-type:device_code"],
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "id_token_signing_alg_values_supported": id_token_algorithms,
        # userinfo answers a JWT signed with these for an app registered with userinfo_signed_response_alg
        "userinfo_signing_alg_values_supported": id_token_algorithms,
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        # Request objects (RFC 9101, OIDC Core §6): by value, by a registered reference, or pushed (PAR);
        # signed with the app's keys, or unsigned from an app that allows it. None encrypted: no
        # request_object_encryption_* member.
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": True,
        "request_object_signing_alg_values_supported": [*REQUEST_OBJECT_ALGORITHMS, "none"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,          # Back-Channel Logout 1.0 (oidc.logout.backchannel)
        "backchannel_logout_session_supported": True,  # its logout tokens carry sid
        "ui_locales_supported": ["en", "ja"],
    }
