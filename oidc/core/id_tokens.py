"""The ID tokens (OpenID Connect Core §2) of a redeemed code and of a refresh: what they say of the person
and the sign-in, signed by the key ring with the app's chosen algorithm."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oidc.core.util import create_half_hash

from oidc.core import claims
from oidc.core.models import ACR, Client, Code, SignedIn
from common.runtime.context import AppContext


class IdTokens:
    """The ID tokens of one app context's provider, issued by `issuer`."""

    def __init__(self, ctx: AppContext, *, issuer: str) -> None:
        self.ctx, self.issuer = ctx, issuer

    def of_code(self, token: dict[str, Any], request: OAuth2Request) -> str:
        """The ID token of the tokens `token` of a code (once its redemption committed:
        oidc.token.authorization_code.CodeGrant.save_token)."""
        code: Code = request.authorization_code
        app = request.client.app
        now = int(self.ctx.now().timestamp())
        body = self._claims(app.client_id, code.signed_in(refresh_generation=0, grant_id=""), iat=now)
        if code.nonce:
            body["nonce"] = code.nonce
        person = getattr(request, "person_claims", None)  # read before the code was spent (CodeGrant)
        if person is None:
            person = claims.of_user(self.ctx, user_uuid=code.user_uuid, scope=token.get("scope", ""))
        body.update(person)
        return self._sign(body, token, alg=app.oidc().id_token_alg)

    def refreshed(self, token: dict[str, Any], *, client: Client, user: SignedIn) -> str:
        """OpenID Connect Core §12.2: a refresh's ID token, of the same person, session and sign-in (`sub`,
        `sid`, `auth_time`, `amr`, `acr`) and no `nonce`, issued when the refresh's access token was: the
        same claims again for the same refresh token within the reuse grace (oidc.token.refresh_rotation.rotate). The
        person's claims by scope are as the account gives them when the rotation's write commits (it checks
        those the refresh token carries, oidc.core.claims), else read now: libraries that keep the last ID
        token's claims as their user (express-openid-connect) keep its name and address."""
        iat = user.issued_epoch or int(self.ctx.now().timestamp())
        body = self._claims(client.client_id, user, iat=iat)
        scope = token.get("scope", "")
        body.update(claims.narrowed(user.person, scope=scope) if user.person is not None
                    else claims.of_user(self.ctx, user_uuid=user.user_uuid, scope=scope))
        return self._sign(body, token, alg=client.app.oidc().id_token_alg)

    def _claims(self, client_id: str, user: SignedIn, *, iat: int) -> dict[str, Any]:
        return {"iss": self.issuer, "sub": user.user_uuid, "aud": client_id, "azp": client_id,
                "iat": iat, "exp": iat + self.ctx.settings.access_token_ttl, "auth_time": user.auth_time,
                "sid": user.session_id, "amr": list(user.amr), "acr": ACR}

    def _sign(self, body: dict[str, Any], token: dict[str, Any], *, alg: str) -> str:
        at_hash = create_half_hash(token["access_token"], alg)
        if at_hash is not None:
            body["at_hash"] = at_hash.decode()
        return self.ctx.jwt.sign_jwt(body, algorithm=alg, typ="JWT")
