"""Authlib's authorization server, fitted to citylogin (SPEC §14): the provider of one app context, assembled. It
registers the grants (oidc.token.authorization_code with PKCE, oidc.token.pkce, and the ID token; refresh_token;
client_credentials; device_code), the revocation endpoint (oidc.token.revocation) and RFC 9207's `iss`, and hands
the client's authentication to oidc.clients. Each grant makes its own answer (oidc.token.tokens) and its own write;
nothing below calls back up."""
from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter

from common.runtime.context import AppContext
from common.slots import Slot
from oidc.clients import authentication, lookup
from oidc.core import refusals
from oidc.core.context import issuer
from oidc.core.flask_request import oauth2_request
from oidc.core.models import SCOPES, Client
from oidc.token.authorization_code import CodeGrant, IdToken
from oidc.token.client_credentials import AdminCredentials
from oidc.token.device_code import DeviceGrant
from oidc.token.pkce import S256Challenge
from oidc.token.refresh_token import RefreshGrant
from oidc.token.revocation import Revocation

PROVIDER: Slot[Provider] = Slot("oidc.provider")


def provider(ctx: AppContext) -> Provider:
    """The one Provider of an app context."""
    return ctx.slots.get_or_make(PROVIDER, lambda: Provider(ctx))


class Issuer(IssuerParameter):
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class Provider(AuthorizationServer):
    """One per app context: Authlib's server over citylogin's stores."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.scopes_supported = list(SCOPES)
        self.ctx, self.issuer = ctx, issuer(ctx)
        pkce = S256Challenge(required_of_every_app=ctx.settings.oidc_require_pkce)
        self.register_grant(CodeGrant, [pkce, IdToken(ctx)])
        self.register_grant(RefreshGrant)
        self.register_grant(AdminCredentials)
        self.register_grant(DeviceGrant)  # RFC 8628: TVs and command lines (oidc.device.flow)
        self.register_endpoint(Revocation)
        self.register_extension(Issuer(self.issuer))

    def query_client(self, client_id: object) -> Client | None:
        return lookup.client(self.ctx, client_id)

    def authenticate_client(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> Client:
        return authentication.authenticated(self.ctx, request, methods=methods, endpoint=endpoint)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing here: a grant's write is its own (a code's redemption, CodeGrant.save_token; a refresh's
        rotation; the device's approved request), and the client-credentials grant writes nothing."""

    def validate_requested_scope(self, scope: str | None) -> None:
        """OpenID Connect Core §3.1.2.1: scope values the server does not understand (address, phone, an
        app's own) are ignored, not refused; the client's allowed scope (Client.get_allowed_scope) keeps
        only the known ones, so an ignored value is never granted."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return oauth2_request(issuer=self.issuer)

    def handle_error_response(self, request: OAuth2Request, error: Any) -> Any:
        """Every refusal Authlib answers (token, revocation) is logged and counted once (oidc.core.refusals)."""
        refusals.refused(error, oauth_request=request)
        return super().handle_error_response(request, error)
