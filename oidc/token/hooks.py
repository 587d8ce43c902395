"""What Authlib's server (oidc.token.server) asks of citylogin, below it: its apps, the tokens of a grant, a
code's sealing and its redemption in one transaction with the session's liveness, and revocation.
Nothing here calls back up into the server."""
from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Request

from relying_parties import service as apps
from relying_parties.models import AppRecord
from relying_parties.registry import current_app
from common.crypto.tokens import digests_equal, token_digest
from common.keys.jwt_keys import ALGORITHM, TOKEN_TYPE, TokenError
from oidc.core import claims as user_claims
from oidc.token import codes
from oidc.device import flow as device_flow
from oidc.core import fapi2
from oidc.app_grants import ending as grants
from oidc.token import redemption
from oidc.token import refresh_tokens as refresh
from oidc.core import dpop
from oidc.token.admin_tokens import admin_access_token
from oidc.core.kept_request import StoredRequest
from oidc.core.context import issuer
from oidc.core.id_tokens import IdTokens
from oidc.core.models import Client, Code, HeldGrant, SignedIn
from oidc.core.store import CodeNotSpent
from common.runtime.context import AppContext


class Hooks:
    """What Authlib's server (oidc.token.server.Provider, its grants and endpoints) asks of citylogin."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.id_tokens = IdTokens(ctx, issuer=issuer(ctx))

    def client(self, client_id: object) -> Client | None:
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 64:
            return None
        app = current_app(self.ctx, client_id=client_id)
        if app is None:
            return None
        if not (app.oidc().redirect_uris or app.oidc().device_flow or app.admin_role):
            return None  # an app registered for introspection and events only signs nobody in
        return Client(app=app, secret_ok=lambda secret: _secret_ok(app, secret))

    def tokens(self, *, grant_type: str, client: Client, user: SignedIn | None, scope: str,
               expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        """The tokens of a grant (signed_tokens); the client-credentials grant's token of the app itself. A
        code's are signed once its redemption's transaction committed (save_token)."""
        if user is None:
            return admin_access_token(self.ctx, client.app, now=self.ctx.epoch())
        if grant_type == "authorization_code":
            return {"scope": scope}
        tokens = self.signed_tokens(client=client, user=user, scope=scope)
        if "openid" in scope.split():  # a refresh (OpenID Connect Core §12.2): the app can still log out
            tokens["id_token"] = self.id_tokens.refreshed(tokens, client=client, user=user)
        return tokens

    def signed_tokens(self, *, client: Client, user: SignedIn, scope: str) -> dict[str, Any]:
        """An RFC 9068 access token of the person's session for this app (SPEC §14) of `scope`, and the
        grant's next refresh token when it has them (of the grant's scope, RFC 6749 §6)."""
        ttl, now = self.ctx.settings.access_token_ttl, self.ctx.epoch()
        # A refresh's pair is formed from its rotation (the same again within the reuse grace): its
        # moment and a jti of the grant's generation; EdDSA signs the same claims the same way. Every
        # jti names its grant, so a revoked grant's tokens stay refused once a new grant replaces it.
        issued = user.issued_epoch or now
        jti = (grants.access_token_id(grant_id=user.grant_id, generation=user.refresh_generation)
               if user.grant_id else uuid.uuid4().hex)
        body = {"iss": issuer(self.ctx), "sub": user.user_uuid, "aud": client.client_id,
                "client_id": client.client_id, "scope": scope, "sid": user.session_id, "did": user.device_id,
                "jti": jti, "iat": issued, "exp": issued + ttl, "auth_time": user.auth_time}
        if user.jkt:  # DPoP-bound (RFC 9449 §6): usable only with a proof by that key
            body["cnf"] = {"jkt": user.jkt}
        access_token = self.ctx.jwt.sign_jwt(body, algorithm=ALGORITHM, typ=TOKEN_TYPE)
        token = {"token_type": "DPoP" if user.jkt else "Bearer", "access_token": access_token,
                 "expires_in": max(1, issued + ttl - now), "scope": scope}
        if user.refresh_generation:
            token["refresh_token"] = user.kept_refresh or refresh.token_text(self.ctx.refresh_secrets, user,
                                                                             client_id=client.client_id)
        return token

    def code_tokens(self, request: OAuth2Request, *, scope: str) -> tuple[dict[str, Any], str | None]:
        """A redeemed code's tokens, and its ID token for scope openid (after the access token, whose
        hash it carries)."""
        tokens = self.signed_tokens(client=request.client, user=request.user, scope=scope)
        id_token = self.id_tokens.of_code(tokens, request) if "openid" in scope.split() else None
        return tokens, id_token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """A code that passed every check: record the app's grant on the session and the request's
        redemption mark, which uses the code up, in one transaction with what SPEC §14 says must still
        hold (oidc.token.redemption: the session, the app, the person's consent and sign-out; any failing is
        invalid_grant). A second redemption of a code of its request, on this session or another (a second
        browser finished the same request), is a replay, which the mark refuses and which revokes what the
        first gave (RFC 6749 §4.1.2). The tokens are signed once it committed, on the request's thread: handing
        them to the background pool to sign while the transaction travels saved latency but cost more CPU
        (the handoff) and signed for refused redemptions too. A refresh wrote its rotation already."""
        if request.payload.grant_type != "authorization_code":
            return
        user: SignedIn = request.user
        code: Code = request.authorization_code
        scope = token.get("scope", "")
        grant = user.grant(client_id=request.client.client_id, scope=scope)
        try:
            redemption.redeem(self.ctx, code=code, grant=grant, app=request.client.app)
        except CodeNotSpent:
            redemption.replayed(self.ctx, code)
            raise InvalidGrantError("This code was used before: what it gave is revoked.") from None
        issued, request.signed_id_token = self.code_tokens(request, scope=scope)
        token.update(issued)

    def sealed_code(self, request: OAuth2Request) -> str:
        """The code complete() gives (nothing is written: the code is its own record, oidc.token.codes): bound as
        SPEC §14 says, with the person's ID-token claims as read with the session."""
        pending: StoredRequest = request
        user: SignedIn = request.user
        data, scope = request.payload.data, request.scope or ""
        code = Code(client_id=request.client.client_id, redirect_uri=data["redirect_uri"], scope=scope,
                    code_challenge=data.get("code_challenge") or "",  # "": asked for without PKCE
                    code_challenge_method=data.get("code_challenge_method") or "",
                    user_uuid=user.user_uuid, session_id=user.session_id, device_id=user.device_id,
                    auth_time=user.auth_time, amr=list(user.amr), nonce=data.get("nonce") or None,
                    jkt=data.get("dpop_jkt") or None, person=_claims_of(pending, scope=scope),
                    session_expires_epoch=pending.session_expires_epoch, request_digest=pending.digest,
                    issued_ms=int(self.ctx.now().timestamp() * 1000), replacing=pending.replacing)
        return codes.seal(self.ctx.refresh_secrets, code, now=self.ctx.epoch())

    def live_signed_in(self, code: Code, client: Client) -> SignedIn | None:
        """The person of a code being redeemed, once the request's DPoP key is the code's (RFC 9449 §10)
        and while the session lives; a refresh token comes with offline_access, and always for a public
        client (it has no other way to stay signed in)."""
        oidc = client.app.oidc()
        key = dpop.request_key(bound_to=code.jkt, required=oidc.dpop_required(),
                                        algorithms=fapi2.DPOP_ALGORITHMS if oidc.fapi2 else None)
        # The session's liveness is checked by the write that spends the code (save_token), not read here.
        # ... unless the app registered grant types without refresh_token (RFC 7591 §2): it could not use one
        wants_refresh = (("offline_access" in code.scope.split() or oidc.public)
                         and client.check_grant_type("refresh_token"))
        signed_in = code.signed_in(refresh_generation=1 if wants_refresh else 0, grant_id=refresh.new_grant_id())
        # The grant, and so its rotating refresh tokens, bound to the key; a kept one (a FAPI 2.0 app's) is
        # bound to the client by its authentication instead (RFC 9449 §5).
        return replace(signed_in, jkt=key, refresh_jkt=key if oidc.rotates_refresh_tokens() else None)

    def grant_of_token(self, token: object) -> HeldGrant | None:
        """The grant behind one of our refresh tokens, or behind an app's access token; None for
        anything else."""
        presented = refresh.presented(self.ctx, token)
        if presented is not None:
            return HeldGrant(session_id=presented.grant.session_id, client_id=presented.grant.client_id,
                             grant_id=presented.grant.grant_id)
        if not isinstance(token, str) or len(token) > 8192:
            return None
        try:
            claims = self.ctx.jwt.decode(token, now=self.ctx.now(), issuer=issuer(self.ctx), verify_audience=False)
        except TokenError:
            return None
        session_id, client_id = claims.get("sid"), claims.get("client_id")
        if not (isinstance(session_id, str) and isinstance(client_id, str)):
            return None
        return HeldGrant(session_id=session_id, client_id=client_id, grant_id=grants.named_grant(claims))

    def revoke_grant(self, held: HeldGrant) -> None:
        """RFC 7009: the app gives its grant back. Its tokens die at once; it asked, so it is not told
        by back channel now, but still is when the session ends (it may hold an ID token of it)."""
        grants.end_grant(self.ctx, session_id=held.session_id, client_id=held.client_id,
                         reason=grants.REVOKED_BY_APP, grant_id=held.grant_id)
        device_flow.end_screen_of(self.ctx, session_id=held.session_id, client_id=held.client_id)


def _claims_of(pending: StoredRequest, *, scope: str) -> dict[str, Any]:
    assert pending.person is not None, "complete() reads the person with the session"
    return user_claims.of_account(pending.person, scope=scope)


def _secret_ok(app: AppRecord, secret: object) -> bool:
    return isinstance(secret, str) and 0 < len(secret) <= 256 and digests_equal(
        token_digest(secret, purpose=apps.SECRET_PURPOSE), app.secret_digest)
