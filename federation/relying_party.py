"""citylogin as the relying party of an upstream provider (SPEC §16), one named step per rule of the standards:
the authorization request (OAuth 2.0 code flow, PKCE S256 per RFC 7636, `state`, OIDC `nonce`, form_post where
the preset asks), the checks of the authorization response (one value per parameter, the provider's `error`,
RFC 9207's `iss`), and the code's redemption at the token endpoint (RFC 6749 §4.1.3, client authentication
per §2.3.1), posted by common.outbound.fetch under its deadline and size cap. The ID token's own checks are
federation.id_token's."""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from common.outbound.fetch import FetchFailed, fetch
from federation.discovery import TENANT_TEMPLATE, ProviderMetadata
from federation.refusals import Denied, IdpUnavailable, StateInvalid, TokenInvalid, because

FORM = "application/x-www-form-urlencoded"
MAX_TOKEN_RESPONSE = 64 * 1024
MAX_CODE_CHARS = 4096
# The parameters of an authorization response the callback reads: each may come at most once.
READ = ("state", "code", "iss", "error", "user")
# Errors that mean the person (or the provider, for them) said no: the page says "cancelled".
DENIALS = frozenset({"access_denied", "consent_required", "login_required", "interaction_required",
                     "account_selection_required", "user_cancelled_authorize", "user_cancelled_login"})
# Errors that mean the provider is not working right now.
OUTAGES = frozenset({"server_error", "temporarily_unavailable"})
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@dataclass(frozen=True)
class ClientAuth:
    """How citylogin authenticates at the provider's token endpoint: RFC 6749 §2.3.1 Basic (the default) or
    the secret in the body (Apple's JWT client secret)."""

    client_id: str
    secret: str
    method: str = "client_secret_basic"


# --- the request ----------------------------------------------------------------------------------------------

def authorization_url(metadata: ProviderMetadata, *, client_id: str, scope: str, redirect_uri: str, state: str,
                      nonce: str, verifier: str, response_mode: str = "query", fresh_login: bool = False,
                      prompt: str | None = None) -> str:
    """Where the browser goes: the provider's authorization endpoint with a code request bound to `state`,
    `nonce` and the S256 challenge of `verifier` (which stays in the round trip's item). `fresh_login` (a
    re-authentication): the person signs in again, not on the provider's session (`max_age=0`, and `prompt`)."""
    extra: dict[str, str] = {"nonce": nonce, "code_challenge": create_s256_code_challenge(verifier),
                             "code_challenge_method": "S256"}
    if response_mode == "form_post":
        extra["response_mode"] = "form_post"
    if fresh_login:
        extra["max_age"] = "0"
        if prompt:
            extra["prompt"] = prompt
    return str(prepare_grant_uri(metadata.authorization_endpoint, client_id, "code", redirect_uri=redirect_uri,
                                 scope=scope, state=state, **extra))


# --- the response ---------------------------------------------------------------------------------------------

def single_values(params: Mapping[str, list[str]]) -> dict[str, str]:
    """The response's parameters that the callback reads, each sent once; a repeated `state` is no state
    (StateInvalid), another repeated parameter an answer not to trust (TokenInvalid): the standard's rule that
    a parameter is not repeated (RFC 6749 §3.1), with no guess at which value counts."""
    values: dict[str, str] = {}
    for name in READ:
        sent = params.get(name) or []
        if len(sent) > 1:
            raise because(StateInvalid() if name == "state" else TokenInvalid(), "repeated_parameter")
        if sent:
            values[name] = sent[0]
    return values


def check_error(values: Mapping[str, str]) -> None:
    """RFC 6749 §4.1.2.1: the provider's `error`. The person declined → Denied; the provider is failing →
    IdpUnavailable; any other → TokenInvalid (a request it found wrong is not the person's to fix)."""
    error = values.get("error")
    if error is None:
        return
    if error in DENIALS:
        raise because(Denied(), "denied")
    if error in OUTAGES:
        raise because(IdpUnavailable(), "provider_error")
    raise because(TokenInvalid(), "provider_error")


def iss_matches(iss: str, metadata: ProviderMetadata) -> bool:
    """Whether an `iss` names the provider of `metadata`: its issuer exactly, or (Microsoft's multi-tenant
    template) that template with a tenant's GUID in it."""
    if TENANT_TEMPLATE not in metadata.issuer:
        return iss == metadata.issuer
    before, after = metadata.issuer.split(TENANT_TEMPLATE, 1)
    return re.fullmatch(re.escape(before) + GUID + re.escape(after), iss) is not None


def check_iss_parameter(values: Mapping[str, str], metadata: ProviderMetadata) -> None:
    """RFC 9207 §2.4: an `iss` sent must be the provider's; a provider that announces it sends `iss` must have
    sent it (the mix-up defence, beside one redirect URI per provider)."""
    iss = values.get("iss")
    if iss is None:
        if metadata.iss_parameter_supported:
            raise because(TokenInvalid(), "iss_missing")
        return
    if not iss_matches(iss, metadata):
        raise because(TokenInvalid(), "iss_mismatch")


def check_code(values: Mapping[str, str]) -> str:
    """The authorization code: present and of a sane length."""
    code = values.get("code")
    if not code or len(code) > MAX_CODE_CHARS:
        raise because(TokenInvalid(), "code_missing")
    return code


# --- the redemption -------------------------------------------------------------------------------------------

def token_request(auth: ClientAuth, *, code: str, redirect_uri: str, verifier: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the code's redemption (RFC 6749 §4.1.3 with RFC 7636 §4.5's verifier)."""
    fields: dict[str, str] = {"redirect_uri": redirect_uri, "code_verifier": verifier}
    headers = {"Content-Type": FORM, "Accept": "application/json"}
    if auth.method == "client_secret_post":
        fields |= {"client_id": auth.client_id, "client_secret": auth.secret}
    else:  # RFC 6749 §2.3.1: each part form-encoded before Basic
        pair = f"{quote(auth.client_id, safe='')}:{quote(auth.secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    body = prepare_token_request("authorization_code", code=code, **fields)
    return body.encode("ascii"), headers


def redeem(metadata: ProviderMetadata, auth: ClientAuth, *, code: str, redirect_uri: str, verifier: str,
           deadline_seconds: float, private_allowed: bool) -> str:
    """The ID token the token endpoint answers for `code`. A provider that does not answer in time or answers
    garbage → IdpUnavailable; one that refuses the code → TokenInvalid. Its access token is not kept."""
    body, headers = token_request(auth, code=code, redirect_uri=redirect_uri, verifier=verifier)
    try:
        answer = fetch(metadata.token_endpoint, method="POST", body=body, headers=headers,
                       deadline_seconds=deadline_seconds, max_bytes=MAX_TOKEN_RESPONSE,
                       private_allowed=private_allowed)
    except FetchFailed:
        raise because(IdpUnavailable(), "token_request_failed") from None
    if answer.status >= 500:
        raise because(IdpUnavailable(), "token_request_failed")
    if answer.status != 200:
        raise because(TokenInvalid(), "code_refused")
    return id_token_of(answer.body)


def id_token_of(body: bytes) -> str:
    """The `id_token` of a token response (OIDC Core §3.1.3.3); IdpUnavailable for an answer that is not one."""
    try:
        document: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise because(IdpUnavailable(), "token_response_garbage") from None
    id_token = document.get("id_token") if isinstance(document, dict) else None
    if not isinstance(id_token, str):
        raise because(IdpUnavailable(), "token_response_garbage")
    return id_token
