"""The client metadata an app registers itself with (RFC 7591 §2, OpenID Connect Dynamic Client Registration
1.0 §2; SPEC §14), checked by the rules `apps add` and the admin API use (oidc.core.redirects,
oidc.registration.client_keys, oidc.registration.client_urls), each member a named step. A member refused is
`invalid_redirect_uri` (redirect_uris) or `invalid_client_metadata`, its description naming it; a member citylogin does
not know is ignored (RFC 7591 §2). What the steps accept becomes an OidcClient, and what it holds is what the
registration answers."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error

from relying_parties.models import OidcClient
from oidc.registration.client_keys import public_jwks, public_jwks_problem
from oidc.registration.client_urls import (endpoint_url_problem, fetched_url_problem, self_registered_url_problem,
                                           web_url_problem)
from oidc.core.models import DEVICE_CODE_GRANT_TYPE
from oidc.core.oauth_errors import describable
from oidc.core.redirects import redirect_uri_problem
from oidc.registration.request_uris import request_uri_problem
from oidc.discovery.metadata import CLIENT_ASSERTION_ALGORITHMS

AUTHORIZATION_CODE, REFRESH_TOKEN = "authorization_code", "refresh_token"
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE_GRANT_TYPE)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SIGNING_ALGS = ("RS256", "ES256", "EdDSA")  # what the key ring signs ID tokens and userinfo with
REQUEST_OBJECT_ALGS = ("RS256", "PS256", "ES256", "EdDSA", "none")
MAX_URIS, MAX_CONTACTS, NAME_MAX, CONTACT_MAX = 20, 10, 100, 320
# Encrypted answers (JWE) are not made: a client asking for them would get what it did not ask for.
ENCRYPTION_MEMBERS = ("id_token_encrypted_response_alg", "id_token_encrypted_response_enc",
                      "userinfo_encrypted_response_alg", "userinfo_encrypted_response_enc",
                      "request_object_encryption_alg", "request_object_encryption_enc",
                      "authorization_encrypted_response_alg", "authorization_encrypted_response_enc")


class InvalidClientMetadata(OAuth2Error):
    """RFC 7591 §3.2.2: a member's value is refused; the description names the member."""

    error = "invalid_client_metadata"

    def __init__(self, member: str, problem: str) -> None:
        super().__init__(describable(f"{member}: {problem}"))
        self.member = member


class InvalidRedirectUri(InvalidClientMetadata):
    error = "invalid_redirect_uri"


@dataclass(frozen=True)
class ClientMetadata:
    """What a registration asks for, checked: the app's name and its OpenID Connect client."""

    name: str
    oidc: OidcClient


def parse_metadata(body: Any, *, unsigned_by_default: bool = False, private_addresses: bool = False) -> ClientMetadata:
    """The registration `body` (a decoded JSON document) as an app; InvalidClientMetadata (or
    InvalidRedirectUri) naming the first member refused. `unsigned_by_default`: the deployment's
    CITYLOGIN_OIDC_REGISTERED_APPS_SEND_UNSIGNED_REQUEST_OBJECTS (check_request_objects); `private_addresses`: the
    deployment lets apps that register themselves name private addresses (CITYLOGIN_OIDC_FETCH_PRIVATE_ADDRESSES)."""
    if not isinstance(body, dict):
        raise InvalidClientMetadata("request", "the body is a JSON object of client metadata")
    refuse_unsupported(body)
    grant_types = check_grant_types(body)
    redirect_uris = check_redirect_uris(body, grant_types)
    check_response_types(body, grant_types)
    method = check_auth_method(body)
    jwks, jwks_uri = check_keys(body, method)
    metadata = ClientMetadata(name=check_client_name(body, redirect_uris), oidc=OidcClient(
        redirect_uris=redirect_uris, public=method == "none", registered_auth_method=method,
        grant_types=grant_types, device_flow=DEVICE_CODE_GRANT_TYPE in grant_types, jwks=jwks, jwks_uri=jwks_uri,
        post_logout_redirect_uris=_uris(body, "post_logout_redirect_uris", redirect_uri_problem),
        backchannel_logout_uri=_url(body, "backchannel_logout_uri", problem_of=endpoint_url_problem),
        id_token_alg=_choice(body, "id_token_signed_response_alg", SIGNING_ALGS) or OidcClient.id_token_alg,
        userinfo_signed_response_alg=_choice(body, "userinfo_signed_response_alg", SIGNING_ALGS),
        contacts=check_contacts(body), logo_uri=_url(body, "logo_uri"), client_uri=_url(body, "client_uri"),
        policy_uri=_url(body, "policy_uri"), tos_uri=_url(body, "tos_uri"),
        require_par=_flag(body, "require_pushed_authorization_requests"),
        require_dpop=_flag(body, "dpop_bound_access_tokens"),
        # A person allows an app that registered itself before its first sign-in through the browser (as
        # Keycloak's "Consent Required" registration policy): the operator made the token, not the app.
        consent=bool(redirect_uris), **check_request_objects(body, unsigned_by_default=unsigned_by_default)))
    check_self_registered_urls(metadata.oidc, private_addresses=private_addresses)
    return metadata


# --- the steps ------------------------------------------------------------------------------------------

def refuse_unsupported(body: dict[str, Any]) -> None:
    """Members whose value would ask for what citylogin does not do: answering as if it did would mislead."""
    for member in ENCRYPTION_MEMBERS:
        if member in body:
            raise InvalidClientMetadata(member, "encrypted responses and request objects are not supported")
    if body.get("subject_type", "public") != "public":
        raise InvalidClientMetadata("subject_type", "only public subject identifiers are supported")
    if body.get("application_type", "web") not in ("web", "native"):
        raise InvalidClientMetadata("application_type", "web or native")
    if "default_max_age" in body:  # OIDC Registration §2: a request's max_age does the same, and is supported
        raise InvalidClientMetadata("default_max_age", "not supported: send max_age in the authorization request")
    if "require_auth_time" in body and not isinstance(body["require_auth_time"], bool):
        raise InvalidClientMetadata("require_auth_time", "a boolean (every ID token carries auth_time)")
    if "token_endpoint_auth_signing_alg" in body:
        _choice(body, "token_endpoint_auth_signing_alg", tuple(CLIENT_ASSERTION_ALGORITHMS))


def check_grant_types(body: dict[str, Any]) -> tuple[str, ...]:
    """RFC 7591 §2.1: the authorization code (the default), refresh tokens, the device code (RFC 8628). The
    implicit grant is refused (RFC 9700 §2.1.2), as is client_credentials (an operator's, for the admin API)."""
    grant_types = _strings(body, "grant_types", MAX_URIS)
    if "grant_types" not in body:
        return (AUTHORIZATION_CODE,)
    if "implicit" in grant_types:
        raise InvalidClientMetadata("grant_types", "the implicit grant is not supported (RFC 9700): use "
                                                   "authorization_code with PKCE")
    unknown = [grant for grant in grant_types if grant not in GRANT_TYPES]
    if unknown:
        raise InvalidClientMetadata("grant_types", f"{unknown[0]!r} is not supported; use {', '.join(GRANT_TYPES)}")
    if not {AUTHORIZATION_CODE, DEVICE_CODE_GRANT_TYPE} & set(grant_types):
        raise InvalidClientMetadata("grant_types", f"needs {AUTHORIZATION_CODE} or {DEVICE_CODE_GRANT_TYPE}")
    return tuple(dict.fromkeys(grant_types))


def check_redirect_uris(body: dict[str, Any], grant_types: tuple[str, ...]) -> tuple[str, ...]:
    """Each by the rule of `apps add --redirect-uri` (oidc.core.redirects); required for the authorization code."""
    uris = _uris(body, "redirect_uris", redirect_uri_problem, refusal=InvalidRedirectUri)
    if AUTHORIZATION_CODE in grant_types and not uris:
        raise InvalidRedirectUri("redirect_uris", "at least one redirect URI for the authorization code grant")
    return uris


def check_response_types(body: dict[str, Any], grant_types: tuple[str, ...]) -> None:
    """`code` alone, and only with the authorization code grant (RFC 7591 §2.1's consistency)."""
    if "response_types" not in body:
        return
    response_types = _strings(body, "response_types", MAX_URIS)
    if any(value != "code" for value in response_types):
        raise InvalidClientMetadata("response_types", "only code is supported (no implicit or hybrid flow)")
    if ("code" in response_types) != (AUTHORIZATION_CODE in grant_types):
        raise InvalidClientMetadata("response_types", f"code goes with the {AUTHORIZATION_CODE} grant type")


def check_auth_method(body: dict[str, Any]) -> str:
    """RFC 7591 §2: client_secret_basic unless named; `none` is a public client (PKCE alone)."""
    return _choice(body, "token_endpoint_auth_method", AUTH_METHODS) or "client_secret_basic"


def check_keys(body: dict[str, Any], method: str) -> tuple[str | None, str | None]:
    """The app's public keys: `jwks` by the rule of `apps add --jwks`, or `jwks_uri` fetched from the app;
    not both (RFC 7591 §2); private_key_jwt needs one; a public client authenticates with none."""
    if "jwks" in body and "jwks_uri" in body:
        raise InvalidClientMetadata("jwks_uri", "give jwks or jwks_uri, not both")
    jwks = None
    if "jwks" in body:
        problem = public_jwks_problem(json.dumps(body["jwks"])) if isinstance(body["jwks"], dict) \
            else "a JSON object"
        if problem:
            raise InvalidClientMetadata("jwks", problem)
        jwks = public_jwks(json.dumps(body["jwks"]))
    jwks_uri = _url(body, "jwks_uri", problem_of=fetched_url_problem)
    if method == "private_key_jwt" and not (jwks or jwks_uri):
        raise InvalidClientMetadata("token_endpoint_auth_method", "private_key_jwt needs jwks or jwks_uri")
    if method == "none" and (jwks or jwks_uri):
        raise InvalidClientMetadata("jwks" if jwks else "jwks_uri", "a public client (none) has no key")
    return jwks, jwks_uri


def check_self_registered_urls(oidc: OidcClient, *, private_addresses: bool) -> None:
    """SPEC §14: what citylogin fetches or posts to for an app that registered itself is on public addresses
    (unless the deployment allows private ones), and what it posts to is https (oidc.registration.client_urls)."""
    fetched = [("jwks_uri", oidc.jwks_uri), *(("request_uris", uri) for uri in oidc.request_uris)]
    for member, url in [*fetched, ("backchannel_logout_uri", oidc.backchannel_logout_uri)]:
        problem = url and self_registered_url_problem(url, posted=member == "backchannel_logout_uri",
                                                      private_addresses=private_addresses)
        if problem:
            raise InvalidClientMetadata(member, problem)


def check_client_name(body: dict[str, Any], redirect_uris: tuple[str, ...]) -> str:
    """client_name by the rule of an app's name; without one, the host of its first redirect URI."""
    name = _string(body, "client_name", NAME_MAX)
    if name is not None:
        name = name.strip()
        if not name or not name.isprintable():
            raise InvalidClientMetadata("client_name", f"1 to {NAME_MAX} printable characters")
        return name
    host = urlsplit(redirect_uris[0]).hostname if redirect_uris else None
    return host or "An app that registered itself"


def check_contacts(body: dict[str, Any]) -> tuple[str, ...]:
    contacts = _strings(body, "contacts", MAX_CONTACTS)
    if any(not 0 < len(contact) <= CONTACT_MAX or not contact.isprintable() for contact in contacts):
        raise InvalidClientMetadata("contacts", f"each of 1 to {CONTACT_MAX} printable characters")
    return contacts


def check_request_objects(body: dict[str, Any], *, unsigned_by_default: bool = False) -> dict[str, Any]:
    """The request-object members (RFC 9101, OIDC Registration §2), kept for the authorization endpoint. An
    omitted request_object_signing_alg means any signing alg the provider supports, and no unsigned object:
    an app that wants to send those says so (`none`), as an operator does for the apps it adds
    (--allow-unsigned-request-objects). With `unsigned_by_default` (a deployment's choice) an omitted alg
    takes unsigned ones too, OIDC Registration §2's default, unless require_signed_request_object."""
    alg = _choice(body, "request_object_signing_alg", REQUEST_OBJECT_ALGS)
    required = _flag(body, "require_signed_request_object")
    if required and alg == "none":
        raise InvalidClientMetadata("request_object_signing_alg", "none contradicts require_signed_request_object")
    # the rule of `apps add --request-uri` (oidc.registration.request_uris), and of every URL citylogin fetches
    request_uris = _uris(body, "request_uris",
                         lambda uri: request_uri_problem(uri) or fetched_url_problem(uri, fragment_allowed=True))
    return {"request_uris": request_uris, "request_object_signing_alg": alg, "require_signed_request_object": required,
            "allow_unsigned_request_objects": unsigned_by_default and alg is None and not required}


# --- the members' JSON shapes --------------------------------------------------------------------------------

def _string(body: dict[str, Any], member: str, max_length: int) -> str | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidClientMetadata(member, f"a string of at most {max_length} characters")
    return value


def _strings(body: dict[str, Any], member: str, max_items: int) -> tuple[str, ...]:
    value = body.get(member)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > max_items or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(member, f"an array of at most {max_items} strings")
    return tuple(value)


def _flag(body: dict[str, Any], member: str) -> bool:
    value = body.get(member, False)
    if not isinstance(value, bool):
        raise InvalidClientMetadata(member, "true or false")
    return value


def _choice(body: dict[str, Any], member: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(member)
    if value is not None and (not isinstance(value, str) or value not in allowed):
        raise InvalidClientMetadata(member, f"one of {', '.join(allowed)}")
    return value


def _url(body: dict[str, Any], member: str, *,
         problem_of: Callable[[object], str | None] = web_url_problem) -> str | None:
    value = body.get(member)
    if value is None:
        return None
    problem = problem_of(value)
    if problem:
        raise InvalidClientMetadata(member, problem)
    return value


def _uris(body: dict[str, Any], member: str, problem_of: Callable[[str], str | None], *,
          refusal: type[InvalidClientMetadata] = InvalidClientMetadata) -> tuple[str, ...]:
    uris = _strings(body, member, MAX_URIS)
    for uri in uris:
        problem = problem_of(uri)
        if problem:
            raise refusal(member, f"{uri!r}: {problem}" if len(uri) <= 200 else problem)
    return tuple(dict.fromkeys(uris))
