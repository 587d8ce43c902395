"""The profiles an app may be held to (`apps add --profile`): the FAPI 2.0 Security Profile (final). An app
takes the profile only if its registration can comply; each rule is a named step over the parsed
registration, and the first one it breaks names the member to change (what `apps add` and the admin API
answer as 400 invalid_field). What the profile then enforces at each request is oidc.core.fapi2's."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from relying_parties.models import FAPI2, OidcClient

# FAPI 2.0 SP §5.4: PS256, ES256 or EdDSA (Ed25519). The key ring signs ID tokens with ES256 and EdDSA of
# them (its RSA keys sign RS256 alone: one key, one alg in the JWKS), so a FAPI 2.0 app picks one of those.
ID_TOKEN_ALGORITHMS = ("ES256", "EdDSA")
# The algorithms of what a FAPI 2.0 app signs itself (client assertions, request objects), §5.4.
SIGNING_ALGORITHMS = ("PS256", "ES256", "EdDSA")
# The keys that sign with them: RSA (PS256), EC P-256 (ES256), OKP Ed25519 (EdDSA).
_KEY_CURVES = {"RSA": None, "EC": "P-256", "OKP": "Ed25519"}
# RFC 8252 §7.3: a native app's loopback redirect is http on an IP literal (never "localhost", §8.3).
LOOPBACK_IPS = frozenset({"127.0.0.1", "::1"})
# FAPI 2.0 SP §5.3.1, Note 3: the authorization code flow (and CIBA) is what its analysis covers.
GRANT_TYPES = frozenset({"authorization_code", "refresh_token"})


@dataclass(frozen=True)
class ProfileProblem:
    """Why an app's registration cannot hold the profile: the member to change, and what it must be."""

    field: str
    detail: str


def profile_problem(oidc: OidcClient, *, admin_role: str | None = None) -> ProfileProblem | None:
    """The first rule of its profile that `oidc` breaks, or None (an app of no profile breaks none)."""
    if oidc.profile is None:
        return None
    if oidc.profile != FAPI2:
        return ProfileProblem("profile", f"profile: {FAPI2} or none")
    for step in FAPI2_STEPS:
        problem = step(oidc, admin_role)
        if problem is not None:
            return problem
    return None


def _confidential(oidc: OidcClient, admin_role: str | None) -> ProfileProblem | None:
    # §5.3.2.1-3: confidential clients only
    if oidc.public:
        return _problem("public", "a public client has no key to authenticate with")
    return None


def _signs_in_through_the_browser(oidc: OidcClient, admin_role: str | None) -> ProfileProblem | None:
    if not oidc.redirect_uris:
        return _problem("redirect_uris", "the profile is a sign-in through the browser: register a redirect URI")
    if oidc.device_flow:
        return _problem("device_flow", "the device authorization grant is outside FAPI 2.0's analysis")
    if admin_role:  # the client-credentials grant's admin API tokens are Bearer tokens (§5.3.2.1-4)
        return _problem("admin_role", "its client-credentials tokens are not sender-constrained")
    if oidc.grant_types and not set(oidc.grant_types) <= GRANT_TYPES:
        return _problem("grant_types", "authorization_code and refresh_token only")
    return None


def _private_key_jwt(oidc: OidcClient, admin_role: str | None) -> ProfileProblem | None:
    # §5.3.2.1-6: private_key_jwt (citylogin has no MTLS client authentication)
    if not (oidc.jwks or oidc.jwks_uri):
        return _problem("jwks", "register the app's public keys (jwks or jwks_uri): it authenticates with "
                                "private_key_jwt")
    if oidc.registered_auth_method not in (None, "private_key_jwt"):
        return _problem("token_endpoint_auth_method", "private_key_jwt")
    if oidc.jwks and not _signs_with_fapi_keys(oidc.jwks):
        return _problem("jwks", "a key of PS256 (RSA), ES256 (EC P-256) or EdDSA (Ed25519)")
    return None


def _signs_with_fapi_keys(jwks: str) -> bool:
    """Whether the registered JWK Set (checked when it was registered) holds a key of §5.4's algorithms."""
    try:
        keys = json.loads(jwks).get("keys", [])
    except (ValueError, AttributeError):
        return False
    return any(isinstance(key, dict) and key.get("kty") in _KEY_CURVES
               and key.get("crv") == _KEY_CURVES[key["kty"]] and key.get("alg") in (None, *SIGNING_ALGORITHMS)
               for key in keys)


def _https_redirects(oidc: OidcClient, admin_role: str | None) -> ProfileProblem | None:
    # §5.3.2.2-8: no authorization response over an unencrypted connection, a native app's loopback one apart
    for uri in oidc.redirect_uris:
        if not fapi2_redirect_uri(uri):
            return _problem("redirect_uris", f"{uri!r}: https, or http on a loopback IP (127.0.0.1, [::1]); no "
                                             "localhost, no private-use scheme")
    return None


def fapi2_redirect_uri(uri: str) -> bool:
    """Whether `uri` (a redirect URI that passed registration's checks) may take a FAPI 2.0 app's
    authorization response: https with a host, or a loopback IP redirect (RFC 8252 §7.3). A private-use
    scheme is refused: another app on the device may claim it (RFC 8252 §8.6), and the profile's analysis
    assumes nobody else reads the authorization response (FAPI 2.0 Attacker Model §A3a, note)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - ValueError for a port that is none
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or parts.fragment:
        return False
    if parts.scheme == "https":
        return bool(host)
    return parts.scheme == "http" and host in LOOPBACK_IPS


def _fapi_algorithms(oidc: OidcClient, admin_role: str | None) -> ProfileProblem | None:
    # §5.4-1: PS256, ES256 or EdDSA for every JWT, and never `none`
    if oidc.id_token_alg not in ID_TOKEN_ALGORITHMS:
        return _problem("id_token_alg", f"one of {', '.join(ID_TOKEN_ALGORITHMS)} (the key ring signs no PS256)")
    signed = oidc.userinfo_signed_response_alg
    if signed is not None and signed not in ID_TOKEN_ALGORITHMS:
        return _problem("userinfo_signed_response_alg", f"one of {', '.join(ID_TOKEN_ALGORITHMS)}")
    if oidc.request_object_signing_alg not in (None, *SIGNING_ALGORITHMS):
        return _problem("request_object_signing_alg", f"one of {', '.join(SIGNING_ALGORITHMS)}")
    if oidc.allow_unsigned_request_objects:
        return _problem("allow_unsigned_request_objects", "the none algorithm is never accepted")
    return None


def _problem(field: str, what: str) -> ProfileProblem:
    return ProfileProblem(field, f"{field}: {what} (profile {FAPI2}: FAPI 2.0 Security Profile)")


FAPI2_STEPS: tuple[Callable[[OidcClient, str | None], ProfileProblem | None], ...] = (
    _confidential, _signs_in_through_the_browser, _private_key_jwt, _https_redirects, _fapi_algorithms)
