"""Authlib's authorization server, fitted to citylogin (SPEC §14): the authorization code grant with
PKCE (S256 only; required as the certified providers require it) and OpenID Connect, RFC 9207's `iss`.
Authlib checks the protocol; its grants call down, into oidc.token.hooks for citylogin's apps, codes, sessions
and key ring, and into oidc.token.refresh_tokens for the refresh tokens; nothing below calls back up."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import (InvalidGrantError, InvalidRequestError, InvalidScopeError, OAuth2Request,
                                    UnsupportedTokenTypeError, grants)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import OpenIDCode
from flask import request as flask_request

from common.database.one_time_tokens import OneTimeTokenStore
from oidc.core import claims
from oidc.registration import client_keys
from oidc.token import codes
from oidc.core import fapi2
from oidc.token import refresh_tokens as refresh
from oidc.token import refresh_rotation
from oidc.core import refusals
from oidc.token.device_code import DeviceGrant
from oidc.token.hooks import Hooks
from oidc.core.id_tokens import IdTokens
from oidc.token.refresh_scope import refreshed_scope
from oidc.logout.rp_initiated import EndSession
from oidc.core.models import ADMIN_SCOPE, SCOPES, AppRefresh, Client, Code, HeldGrant, SignedIn
from common.runtime.context import AppContext
from common.slots import Slot

PROVIDER: Slot[Provider] = Slot("oidc.provider")


def provider(ctx: AppContext) -> Provider:
    """The one Provider of an app context."""
    return ctx.slots.get_or_make(PROVIDER, lambda: Provider(ctx))


class S256Challenge(CodeChallenge):
    """RFC 7636 as the certified providers require it (SPEC §14): of a public client, of an app added with
    --require-pkce, or of every app by the operator's setting; a confidential client may omit it. S256 only
    (RFC 9700 §2.1.1). Whatever was asked is enforced (RFC 9700 §4.8.2, no downgrade either way): a code
    asked for with a challenge needs its verifier, one asked for without refuses any code_verifier."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __init__(self, *, required_of_every_app: bool) -> None:
        super().__init__(required=False)  # whom it is required of is the app's rule (required_of)
        self.required_of_every_app = required_of_every_app

    def required_of(self, client: Client) -> bool:
        return client.app.oidc().pkce_rule(required_of_every_app=self.required_of_every_app).required

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if "code_challenge" not in data and "code_challenge_method" not in data:
            if self.required_of(grant.request.client):
                raise refusals.because(InvalidRequestError("PKCE is required of this app: send code_challenge "
                                                           "with code_challenge_method=S256."), "pkce_missing")
            return
        if data.get("code_challenge_method") != "S256":
            raise refusals.because(InvalidRequestError("code_challenge_method must be S256."), "pkce_method")
        if not data.get("code_challenge"):
            raise refusals.because(InvalidRequestError("Missing 'code_challenge'"), "pkce_missing")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        request = grant.request
        if not request.authorization_code.code_challenge:
            if "code_verifier" in request.form:
                raise refusals.because(InvalidGrantError("This code was asked for without a code_challenge: a "
                                                         "code_verifier cannot redeem it (RFC 9700 section 4.8.2)."),
                                       "pkce_verifier_unexpected")
            if self.required_of(request.client):  # the app's rule changed since: it asks for PKCE now
                raise refusals.because(InvalidGrantError("This code was asked for without PKCE, which this app "
                                                         "requires."), "pkce_required")
            return
        if not request.form.get("code_verifier"):
            # The code's verification fails (RFC 7636 §4.6: invalid_grant), as FAPI 2.0's suite and the
            # certified providers answer; Authlib says invalid_request.
            raise refusals.because(InvalidGrantError("This code was asked for with a code_challenge: redeem it "
                                                     "with its code_verifier."), "pkce_verifier_missing")
        try:
            super().validate_code_verifier(grant, result)  # a well-formed verifier (invalid_request), and matching
        except InvalidRequestError as error:
            refusals.because(error, "pkce_verifier_malformed")
            raise
        except InvalidGrantError as error:
            refusals.because(error, "pkce_verifier_mismatch")
            raise


class CodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1.3 in Authlib's order: the client and its authentication, the code (only read), the
    redirect_uri, the PKCE verifier; then the DPoP key and the live session (authenticate_user). The code
    is spent only then, by the transaction that records the grant (SPEC §14): a failed attempt, by
    anyone, leaves it to its client."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", client_keys.METHOD, "none"]

    def generate_authorization_code(self) -> str:
        provider: Provider = self.server
        return provider.hooks.sealed_code(self.request)  # the code is its own record (oidc.token.codes)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        pass  # sealed in the code itself: nothing is written

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        """The live code issued to `client`, used or not; None for any other (invalid_grant). Nothing is
        read or written: the code is used up once every check has passed, with the grant (SPEC §14,
        oidc.token.hooks.Hooks.save_token)."""
        provider: Provider = self.server
        found = codes.opened(provider.ctx.refresh_secrets, code, now=provider.ctx.epoch())
        if found is None or found.client_id != client.client_id:
            return None
        return found

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # used up by save_token's transaction: the grant's row and the request's mark (oidc.token.codes)

    def authenticate_user(self, authorization_code: Code) -> SignedIn | None:
        provider: Provider = self.server
        user = provider.hooks.live_signed_in(authorization_code, self.request.client)
        if user is not None:
            # The ID token's claims as read when the code was given; a code of an earlier release has
            # none, so they are read now, before the one write that spends the code (a read failing
            # after it would leave the code spent and the app without its tokens).
            person = authorization_code.person
            self.request.person_claims = person if person is not None else claims.of_user(
                provider.ctx, user_uuid=authorization_code.user_uuid, scope=authorization_code.get_scope())
            user = replace(user, person=self.request.person_claims)  # its refresh token carries them
        return user


class RefreshGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1): each use gives a new refresh token and retires
    the one used, in one conditional write after the client and the scope were checked. A `scope`
    narrows that answer alone (oidc.token.refresh_scope)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CodeGrant.TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> AppRefresh | None:
        provider: Provider = self.server
        return refresh.presented_for_rotation(provider.ctx, refresh_token)

    def _validate_token_scope(self, token: AppRefresh) -> None:
        # Authlib's step for the request's `scope`, before anything is written: citylogin's rule
        # (oidc.token.refresh_scope), against the scope the grant was given, and the answer's scope it decides.
        self.request.refreshed_scope = refreshed_scope(granted=token.get_scope(), asked=self.request.payload.scope)

    def issue_token(self, user: SignedIn, refresh_token: AppRefresh) -> dict[str, Any]:
        """The answer's tokens, of its scope; its refresh token (the grant has them with offline_access, or
        as a public client's) carries the grant's scope whatever this answer's is (oidc.token.hooks)."""
        return self.generate_token(user=user, scope=self.request.refreshed_scope,
                                   include_refresh_token=self.INCLUDE_NEW_REFRESH_TOKEN)

    def authenticate_user(self, refresh_token: AppRefresh) -> SignedIn:
        """The person behind the refresh's tokens: the grant rotated to its next refresh token, or, for a
        FAPI 2.0 app (no rotation), the same one kept (oidc.token.refresh_rotation)."""
        provider: Provider = self.server
        oidc = self.request.client.app.oidc()
        if not oidc.rotates_refresh_tokens():
            return refresh_rotation.kept(provider.ctx, refresh_token, dpop_required=oidc.dpop_required(),
                                dpop_algorithms=fapi2.DPOP_ALGORITHMS if oidc.fapi2 else None)
        return refresh_rotation.rotate(provider.ctx, refresh_token, dpop_required=oidc.dpop_required())

    def revoke_old_credential(self, refresh_token: AppRefresh) -> None:
        pass  # retired by the rotation's own write (authenticate_user)


class AdminCredentials(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for automation (SPEC §15): an app added with --admin-role gets an access token for
    the admin API alone (`scope=admin`, audience <issuer>/admin), acting with that role."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", client_keys.METHOD]

    def validate_requested_scope(self) -> None:
        if self.request.payload.scope != ADMIN_SCOPE:
            raise InvalidScopeError("The client-credentials grant gives scope=admin alone: ask for it.")


class UnsupportedTokenType(UnsupportedTokenTypeError):
    status_code = 400  # RFC 7009 §2.2.1: an error response of RFC 6749 §5.2, not an authentication challenge


class Revocation(RevocationEndpoint):
    """RFC 7009: an app gives back a refresh or access token; the grant it came from ends (its refresh
    tokens, and its access tokens at userinfo and introspection). Anything else is a 200 too (§2.2)."""

    CLIENT_AUTH_METHODS = CodeGrant.TOKEN_ENDPOINT_AUTH_METHODS
    SUPPORTED_TOKEN_TYPES = ("access_token", "refresh_token")

    def check_params(self, request: OAuth2Request, client: Client) -> None:
        """RFC 7009 §2.1: `token` is required; a `token_type_hint` other than ours is
        unsupported_token_type, an RFC 6749 §5.2 error: 400 (Authlib's answers 401)."""
        if "token" not in request.form:
            raise InvalidRequestError("token is required.")
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedTokenType()

    def query_token(self, token_string: str, token_type_hint: str | None) -> HeldGrant | None:
        provider: Provider = self.server
        return provider.hooks.grant_of_token(token_string)

    def revoke_token(self, token: HeldGrant, request: OAuth2Request) -> None:
        provider: Provider = self.server
        provider.hooks.revoke_grant(token)


class IdToken(OpenIDCode):
    """The ID token (OpenID Connect Core §2) in a code's answer: the one signed once its redemption
    committed (oidc.token.hooks.Hooks.save_token)."""

    def __init__(self, id_tokens: IdTokens) -> None:
        super().__init__(require_nonce=False)
        self.id_tokens = id_tokens

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # a nonce is the app's to check in the ID token; codes are single-use anyway

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        signed: str | None = getattr(request, "signed_id_token", None)
        return signed if signed is not None else self.id_tokens.of_code(token, request)


class Issuer(IssuerParameter):
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class _FlaskRequest(FlaskOAuth2Request):
    """Authlib's request over Flask's at the URL given (its https check included): FlaskOAuth2Request's
    own, without first making the URL of the WSGI environment (werkzeug's IRI conversions), which
    citylogin replaces with the one the app sees anyway."""

    def __init__(self, request: Any, *, uri: str) -> None:
        OAuth2Request.__init__(self, method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class Provider(AuthorizationServer):
    """One per app context: Authlib's server over citylogin's stores."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.scopes_supported = list(SCOPES)
        self.ctx, self.hooks = ctx, Hooks(ctx)
        self.issuer = ctx.public_url().rstrip("/")
        self._query_client = self.hooks.client
        self._save_token = self.hooks.save_token
        self.register_token_generator("default", self.hooks.tokens)
        pkce = S256Challenge(required_of_every_app=ctx.settings.oidc_require_pkce)
        self.register_grant(CodeGrant, [pkce, IdToken(self.hooks.id_tokens)])
        self.register_grant(RefreshGrant)
        self.register_grant(AdminCredentials)
        self.register_grant(DeviceGrant)  # RFC 8628: TVs and command lines (oidc.device.flow)
        self.register_endpoint(Revocation)
        self.register_endpoint(EndSession)
        self.register_extension(Issuer(self.issuer))
        self.register_client_auth_method(client_keys.METHOD, client_keys.PrivateKeyJwt(
            issuer=self.issuer, tokens=OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens), now=ctx.now,
            keys=lambda app, kid: client_keys.app_key_set(ctx, app, kid=kid)))

    def validate_requested_scope(self, scope: str | None) -> None:
        """OpenID Connect Core §3.1.2.1: scope values the server does not understand (address, phone, an
        app's own) are ignored, not refused; the client's allowed scope (Client.get_allowed_scope) keeps
        only the known ones, so an ignored value is never granted."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        # The URL as the app sees it (behind a TLS proxy too): CITYLOGIN_PUBLIC_URL and the path.
        return _FlaskRequest(flask_request, uri=self.issuer + flask_request.full_path.rstrip("?"))

    def handle_error_response(self, request: OAuth2Request, error: Any) -> Any:
        """Every refusal Authlib answers (token, revocation) is logged and counted once (oidc.core.refusals)."""
        refusals.refused(error, oauth_request=request)
        return super().handle_error_response(request, error)
