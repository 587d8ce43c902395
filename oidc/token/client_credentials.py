"""The client-credentials grant (RFC 6749 §4.4) for automation (SPEC §15): an app added with --admin-role gets an
app's own Bearer token for the admin API alone (`scope=admin`, audience <issuer>/admin), acting with that role,
which is read from the app's record on every call (admin_app_of), not from the token."""
from __future__ import annotations

import uuid
from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError, grants

from relying_parties import service as apps
from relying_parties.models import AppRecord
from common.keys.jwt_keys import ALGORITHM, TOKEN_TYPE, TokenError
from oidc.clients import authentication
from oidc.core.context import issuer
from oidc.core.models import ADMIN_SCOPE, SignedIn
from common.runtime.context import AppContext


class AdminCredentials(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for automation (SPEC §15): an app added with --admin-role gets an access token for
    the admin API alone (`scope=admin`, audience <issuer>/admin), acting with that role."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(authentication.CONFIDENTIAL_AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        if self.request.payload.scope != ADMIN_SCOPE:
            raise InvalidScopeError("The client-credentials grant gives scope=admin alone: ask for it.")

    def generate_token(self, user: SignedIn | None = None, scope: str | None = None, grant_type: str | None = None,
                       expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        ctx = self.server.ctx
        return admin_access_token(ctx, self.request.client.app, now=ctx.epoch())


ADMIN_AUDIENCE = "/admin"  # after the issuer: the admin API is the only place such a token counts


def admin_access_token(ctx: AppContext, app: AppRecord, *, now: int) -> dict[str, Any]:
    """The client-credentials grant's answer (SPEC §15): a Bearer token naming the app, for the admin API
    alone. The role it acts with is read from the app's record on every call, not from the token."""
    ttl = ctx.settings.access_token_ttl
    body = {"iss": issuer(ctx), "sub": app.client_id, "aud": issuer(ctx) + ADMIN_AUDIENCE, "client_id": app.client_id,
            "scope": "admin", "jti": uuid.uuid4().hex, "iat": now, "exp": now + ttl}
    return {"token_type": "Bearer", "access_token": ctx.jwt.sign_jwt(body, algorithm=ALGORITHM, typ=TOKEN_TYPE),
            "expires_in": ttl, "scope": "admin"}


def admin_app_of(ctx: AppContext, access_token: str) -> AppRecord | None:
    """The app a client-credentials token for the admin API names, read now (removed: None); None also
    for any other token. Never a person's session token, which carries a `sid`."""
    try:
        claims = ctx.jwt.decode(access_token, now=ctx.now(), issuer=issuer(ctx), verify_audience=False)
    except TokenError:
        return None
    if claims.get("aud") != issuer(ctx) + ADMIN_AUDIENCE or "sid" in claims or claims.get("scope") != "admin":
        return None
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or claims.get("sub") != client_id:
        return None
    return apps.app_store(ctx).get(client_id)
