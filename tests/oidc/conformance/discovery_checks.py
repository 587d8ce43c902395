"""The conformance suite's checks of an OP's discovery document (OpenID Connect Discovery 1.0 §3,
RFC 8414 §2) and of its JWKS (RFC 7517), each named after the suite's condition."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.oidc.conformance.relying_party import TIMEOUT, Provider

WELL_KNOWN = "/.well-known/openid-configuration"
OIDC_RESPONSE_TYPES = {"code", "code id_token", "id_token", "token id_token", "code id_token token", "code token"}
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3
# RFC 5646's well-formed language tag, as far as citylogin's locales need it (language, script, region).
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?")
PRIVATE_KEY_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
KEY_MEMBERS = {"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "OKP": {"crv", "x"}}


def endpoints(metadata: dict[str, Any]) -> dict[str, str]:
    """Every URL the document names (the `*_endpoint` members and jwks_uri)."""
    return {name: value for name, value in metadata.items()
            if name.endswith("_endpoint") or name == "jwks_uri"}


def check_https_url(value: Any) -> None:
    """AbstractJsonUriIsValidAndHttps: an absolute https URL with a host."""
    assert isinstance(value, str), value
    parts = urlsplit(value)
    assert parts.scheme == "https" and parts.hostname and not parts.fragment, value


def check_all_endpoints_are_https(metadata: dict[str, Any]) -> None:
    """CheckDiscEndpointAllEndpointsAreHttps."""
    for name, value in endpoints(metadata).items():
        assert urlsplit(value).scheme == "https", (name, value)


def check_issuer(metadata: dict[str, Any], discovery_url: str) -> None:
    """CheckDiscEndpointDiscoveryUrl, CheckDiscEndpointIssuer and CheckDiscEndpointIssuerIsValidUrl: the
    document sits at the issuer's well-known path, over https, and the issuer is an RFC 8414 identifier
    (https, no query, no fragment)."""
    assert discovery_url.startswith("https://") and discovery_url.endswith(WELL_KNOWN), discovery_url
    issuer = metadata["issuer"]
    assert issuer.rstrip("/") == discovery_url.removesuffix(WELL_KNOWN).rstrip("/"), (issuer, discovery_url)
    parts = urlsplit(issuer)
    assert parts.scheme == "https" and parts.hostname and not parts.query and not parts.fragment, issuer


def check_types(metadata: dict[str, Any]) -> None:
    """ValidateServerMetadataAgainstSchema, as far as types go: lists of strings for the `*_supported`
    values, booleans for the flags, strings for the URLs."""
    for name, value in metadata.items():
        if isinstance(value, list):
            assert name.endswith("_supported") and all(isinstance(v, str) and v for v in value), (name, value)
        elif name.endswith("_supported") or name.startswith("require_"):
            assert isinstance(value, bool), (name, value)
        else:
            assert isinstance(value, str) and value, (name, value)


def check_array_holds(metadata: dict[str, Any], name: str, values: set[str], *, at_least: int = 1) -> None:
    """AbstractValidateJsonArray: `name` is an array holding at least `at_least` of `values`."""
    found = metadata.get(name)
    assert isinstance(found, list), (name, found)
    assert len(values & set(found)) >= at_least, (name, found, values)


def check_locales(metadata: dict[str, Any]) -> None:
    """CheckDiscEndpointLocalesSyntax and ...CanonicalCasing: well-formed BCP 47 tags."""
    for name in ("ui_locales_supported", "claims_locales_supported"):
        for tag in metadata.get(name, []):
            assert LANGUAGE_TAG.fullmatch(tag), (name, tag)


def check_jwks(op: Provider) -> None:
    """FetchServerKeys and ValidateJwksSequence: a JWK Set of public keys only, each with its kty's
    members and a distinct kid (CheckForKeyIdInServerJWKs, CheckDistinctKeyIdValueInServerJWKs)."""
    path = urlsplit(op.metadata["jwks_uri"]).path
    answer = requests.get(op.url + path, timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/"), answer.headers
    keys = answer.json()["keys"]
    assert keys and isinstance(keys, list)
    kids = [key.get("kid") for key in keys]
    assert all(kids) and len(set(kids)) == len(kids), kids
    for key in keys:
        assert KEY_MEMBERS[key["kty"]] <= set(key), key
        assert not PRIVATE_KEY_MEMBERS & set(key), key["kid"]
        assert key.get("use", "sig") == "sig", key


def discovery_answer(op: Provider) -> requests.Response:
    """GetDynamicServerConfiguration, with EnsureDiscoveryEndpointResponseStatusCodeIs200 and
    CheckDiscoveryEndpointReturnedJsonContentType."""
    answer = requests.get(op.url + WELL_KNOWN, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    return answer
