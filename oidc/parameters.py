"""The form fields and query parameters of /oidc's protocol endpoints, as the OpenAPI document
describes them (so that a fuzzer sends them). Descriptions only: the requests are read and refused
by oidc.authorization.checks and Authlib, every value of every parameter as sent."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

Optional = str | SkipJsonSchema[None]  # left out, or a string: a form or query has no null


def _left_out_when_absent(schema: dict[str, Any]) -> None:
    """No `default: null` in the document: an absent parameter is simply not sent."""
    for described in schema.get("properties", {}).values():
        described.pop("default", None)


class _Parameters(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_left_out_when_absent)


class AuthorizationParameters(_Parameters):
    """RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1, RFC 7636, RFC 9101 (`request`, and `request_uri` by
    reference), RFC 9126 §4 (`request_uri` of a pushed request), RFC 9449 §10 (`dpop_jkt`)."""

    response_type: Optional = None
    client_id: Optional = None
    redirect_uri: Optional = None
    scope: Optional = None
    state: Optional = None
    nonce: Optional = None
    code_challenge: Optional = None
    code_challenge_method: Optional = None
    prompt: Optional = None
    max_age: Optional = None
    response_mode: Optional = None
    login_hint: Optional = None
    request: Optional = None
    request_uri: Optional = None
    dpop_jkt: Optional = None


class ClientAuthentication(_Parameters):
    """RFC 6749 §2.3.1 (client_secret_post) and RFC 7523 §2.2 (private_key_jwt): at most one of them,
    and not with HTTP Basic."""

    client_id: Optional = None
    client_secret: Optional = None
    client_assertion_type: Optional = None
    client_assertion: Optional = None


class PushedAuthorizationForm(AuthorizationParameters, ClientAuthentication):
    """POST /oidc/par: the authorization request and the app's authentication (RFC 9126 §2.1)."""


class TokenForm(ClientAuthentication):
    """POST /oidc/token: RFC 6749 §4.1.3, §6 and §4.4, RFC 8628 §3.4 (`device_code`)."""

    grant_type: Optional = None
    code: Optional = None
    device_code: Optional = None
    redirect_uri: Optional = None
    code_verifier: Optional = None
    refresh_token: Optional = None
    scope: Optional = None


class RevocationForm(ClientAuthentication):
    """POST /oidc/revoke: RFC 7009 §2.1."""

    token: Optional = None
    token_type_hint: Optional = None


class DeviceAuthorizationForm(ClientAuthentication):
    """POST /oidc/device_authorization: RFC 8628 §3.1."""

    scope: Optional = None
