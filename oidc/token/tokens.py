"""What a grant's answer holds (RFC 6749 §5.1): an access token of the person's session for the app (RFC 9068, a
JWT; DPoP-bound by RFC 9449 §6 when the grant has a key), the grant's next refresh token when it has them
(RFC 6749 §6, oidc.token.refresh_tokens), and for scope openid an ID token (OpenID Connect Core §2,
oidc.core.id_tokens): a code's (once its redemption committed, oidc.token.authorization_code), or a refresh's
(§12.2), which a device's poll gets too. The client-credentials grant's token is its own
(oidc.token.client_credentials)."""
from __future__ import annotations

import uuid
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request

from common.keys.jwt_keys import ALGORITHM, TOKEN_TYPE
from common.runtime.context import AppContext
from oidc.app_grants import ending as grants
from oidc.core.context import issuer
from oidc.core.id_tokens import IdTokens
from oidc.core.models import Client, SignedIn
from oidc.token import refresh_tokens as refresh


def id_tokens(ctx: AppContext) -> IdTokens:
    """The ID tokens of the app context's provider."""
    return IdTokens(ctx, issuer=issuer(ctx))


def first_refresh_generation(client: Client, *, scope: str) -> int:
    """A new grant's refresh generation: 1 (it has refresh tokens) with offline_access, and always for a public
    client (it has no other way to stay signed in), unless the app registered grant types without refresh_token
    (RFC 7591 §2: it could not use one); 0 (none) otherwise."""
    wanted = "offline_access" in scope.split() or client.app.oidc().public
    return 1 if wanted and client.check_grant_type("refresh_token") else 0


def signed_tokens(ctx: AppContext, *, client: Client, user: SignedIn, scope: str) -> dict[str, Any]:
    """An RFC 9068 access token of the person's session for this app (SPEC §14) of `scope`, and the
    grant's next refresh token when it has them (of the grant's scope, RFC 6749 §6)."""
    ttl, now = ctx.settings.access_token_ttl, ctx.epoch()
    # A refresh's pair is formed from its rotation (the same again within the reuse grace): its
    # moment and a jti of the grant's generation; EdDSA signs the same claims the same way. Every
    # jti names its grant, so a revoked grant's tokens stay refused once a new grant replaces it.
    issued = user.issued_epoch or now
    jti = (grants.access_token_id(grant_id=user.grant_id, generation=user.refresh_generation)
           if user.grant_id else uuid.uuid4().hex)
    body = {"iss": issuer(ctx), "sub": user.user_uuid, "aud": client.client_id,
            "client_id": client.client_id, "scope": scope, "sid": user.session_id, "did": user.device_id,
            "jti": jti, "iat": issued, "exp": issued + ttl, "auth_time": user.auth_time}
    if user.jkt:  # DPoP-bound (RFC 9449 §6): usable only with a proof by that key
        body["cnf"] = {"jkt": user.jkt}
    access_token = ctx.jwt.sign_jwt(body, algorithm=ALGORITHM, typ=TOKEN_TYPE)
    token = {"token_type": "DPoP" if user.jkt else "Bearer", "access_token": access_token,
             "expires_in": max(1, issued + ttl - now), "scope": scope}
    if user.refresh_generation:
        token["refresh_token"] = user.kept_refresh or refresh.token_text(ctx.refresh_secrets, user,
                                                                         client_id=client.client_id)
    return token


def refreshed_tokens(ctx: AppContext, *, client: Client, user: SignedIn, scope: str) -> dict[str, Any]:
    """A refresh's answer, and a device's (whose poll asked for no nonce): the signed tokens, and for scope openid
    an ID token as a refresh's (OpenID Connect Core §12.2: the app can still log out)."""
    tokens = signed_tokens(ctx, client=client, user=user, scope=scope)
    if "openid" in scope.split():
        tokens["id_token"] = id_tokens(ctx).refreshed(tokens, client=client, user=user)
    return tokens


def code_tokens(ctx: AppContext, request: OAuth2Request, *, scope: str) -> tuple[dict[str, Any], str | None]:
    """A redeemed code's tokens, and its ID token for scope openid (after the access token, whose
    hash it carries)."""
    tokens = signed_tokens(ctx, client=request.client, user=request.user, scope=scope)
    id_token = id_tokens(ctx).of_code(tokens, request) if "openid" in scope.split() else None
    return tokens, id_token
