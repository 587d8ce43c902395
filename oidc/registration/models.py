"""The documents of dynamic registration (RFC 7591, RFC 7592) as the OpenAPI description shows them. The
request is read by oidc.registration.client_metadata, member by member, so that a refusal names its member in RFC 7591's
own error; these models describe it."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ClientMetadataRequest(BaseModel):
    """RFC 7591 §2 and OpenID Connect Dynamic Client Registration §2: the members citylogin reads (others are
    ignored, RFC 7591 §2)."""

    model_config = ConfigDict(extra="allow")
    redirect_uris: list[str] | None = Field(default=None, description="required for authorization_code")
    grant_types: list[str] | None = Field(
        default=None, description="authorization_code (default), refresh_token, "
                                  "urn:ietf:params:oauth:grant-type:device_code")
    response_types: list[str] | None = Field(default=None, description='["code"] alone')
    token_endpoint_auth_method: str | None = Field(
        default=None, description="client_secret_basic (default), client_secret_post, private_key_jwt, none")
    jwks: dict[str, Any] | None = Field(default=None, description="the app's public keys; or jwks_uri, not both")
    jwks_uri: str | None = None
    client_name: str | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    contacts: list[str] | None = None
    id_token_signed_response_alg: str | None = Field(default=None, description="RS256 (default), ES256, EdDSA")
    userinfo_signed_response_alg: str | None = Field(default=None, description="RS256, ES256, EdDSA: userinfo "
                                                                               "answers a signed JWT")
    post_logout_redirect_uris: list[str] | None = None
    backchannel_logout_uri: str | None = None
    request_uris: list[str] | None = None
    request_object_signing_alg: str | None = None
    require_signed_request_object: bool | None = None
    require_pushed_authorization_requests: bool | None = None
    dpop_bound_access_tokens: bool | None = None
    subject_type: str | None = Field(default=None, description="public alone")
    application_type: str | None = Field(default=None, description="web (default) or native")


class ClientRegistration(ClientMetadataRequest):
    """RFC 7591 §3.2.1 / RFC 7592 §3: the registration, with the credentials where they are handed out."""

    client_id: str
    client_id_issued_at: int
    client_secret: str | None = Field(default=None, description="at registration (and echoed by a PUT that sent "
                                                                "it); a public client (none) has none")
    client_secret_expires_at: int | None = Field(default=None, description="0: it does not expire")
    registration_access_token: str
    registration_client_uri: str
