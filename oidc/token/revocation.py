"""OAuth 2.0 Token Revocation (RFC 7009) by Authlib's endpoint, registered in the provider (oidc.token.server) and
answered at POST /oidc/revoke (oidc.token.endpoint): an app gives back one of its refresh or access tokens and the
grant it came from ends; anything else is a 200 too (§2.2)."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request, UnsupportedTokenTypeError
from authlib.oauth2.rfc7009 import RevocationEndpoint

from common.keys.jwt_keys import TokenError
from common.runtime.context import AppContext
from oidc.app_grants import ending as grants
from oidc.clients import authentication
from oidc.core.context import issuer
from oidc.core.models import Client, HeldGrant
from oidc.device import flow as device_flow
from oidc.token import refresh_tokens as refresh


class UnsupportedTokenType(UnsupportedTokenTypeError):
    status_code = 400  # RFC 7009 §2.2.1: an error response of RFC 6749 §5.2, not an authentication challenge


class Revocation(RevocationEndpoint):
    """RFC 7009: an app gives back a refresh or access token; the grant it came from ends (its refresh
    tokens, and its access tokens at userinfo and introspection). Anything else is a 200 too (§2.2)."""

    CLIENT_AUTH_METHODS = list(authentication.TOKEN_ENDPOINT_AUTH_METHODS)
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
        return grant_of_token(self.server.ctx, token_string)

    def revoke_token(self, token: HeldGrant, request: OAuth2Request) -> None:
        revoke_grant(self.server.ctx, token)


def grant_of_token(ctx: AppContext, token: object) -> HeldGrant | None:
    """The grant behind one of our refresh tokens, or behind an app's access token; None for
    anything else."""
    presented = refresh.presented(ctx, token)
    if presented is not None:
        return HeldGrant(session_id=presented.grant.session_id, client_id=presented.grant.client_id,
                         grant_id=presented.grant.grant_id)
    if not isinstance(token, str) or len(token) > 8192:
        return None
    try:
        claims = ctx.jwt.decode(token, now=ctx.now(), issuer=issuer(ctx), verify_audience=False)
    except TokenError:
        return None
    session_id, client_id = claims.get("sid"), claims.get("client_id")
    if not (isinstance(session_id, str) and isinstance(client_id, str)):
        return None
    return HeldGrant(session_id=session_id, client_id=client_id, grant_id=grants.named_grant(claims))


def revoke_grant(ctx: AppContext, held: HeldGrant) -> None:
    """RFC 7009: the app gives its grant back. Its tokens die at once; it asked, so it is not told
    by back channel now, but still is when the session ends (it may hold an ID token of it)."""
    grants.end_grant(ctx, session_id=held.session_id, client_id=held.client_id,
                     reason=grants.REVOKED_BY_APP, grant_id=held.grant_id)
    device_flow.end_screen_of(ctx, session_id=held.session_id, client_id=held.client_id)
