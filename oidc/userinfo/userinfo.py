"""GET|POST /oidc/userinfo (OpenID Connect Core §5.3): the person behind an app's access token, by its scope,
read in the session's own batch read with the app's grant; signed when the app registered
userinfo_signed_response_alg (§5.3.2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts import service as accounts
from common.database.batch_read import KeyRead
from common.runtime.context import AppContext
from oidc.app_grants import ending as grants
from oidc.core import claims as user_claims
from oidc.core.context import grant_store, issuer
from oidc.userinfo.introspection import GRANT, registered_app
from sessions import service as sessions
from sessions.binding import ProofOffer

PERSON = "oidc.person"  # the person's account, read beside the session


@dataclass(frozen=True)
class UserInfoAnswer:
    """Userinfo's claims, and the same as a JWT for an app registered with userinfo_signed_response_alg."""

    claims: dict[str, Any]
    signed: str | None = None


def userinfo(ctx: AppContext, *, access_token: str, scheme: str, offer: ProofOffer | None) -> UserInfoAnswer:
    """The person behind an app's access token (a DPoP-bound one with its proof), by its scope; 401 once
    its session has ended, the app gave its grant back (/oidc/revoke) or the account's deletion began.
    Signed (OpenID Connect Core §5.3.2) when the app asked for it at its registration."""
    principal = sessions.authenticate(ctx, access_token=access_token, scheme=scheme, offer=offer,
                                      issued_by=sessions.PROVIDER_TOKENS,
                                      along=lambda claims: _userinfo_reads(ctx, claims))
    scope = str(principal.claims.get("scope", ""))
    if "openid" not in scope.split():
        raise sessions.InvalidToken("This access token was not issued for OpenID Connect (scope openid).")
    if not grants.issued_from(principal.along[GRANT], principal.claims):
        raise sessions.InvalidToken("This access token was revoked.")
    app = registered_app(ctx, principal.claims)
    if app is None:
        raise sessions.InvalidToken("This access token's app was removed.")
    if principal.along[PERSON] is None:  # its deletion began (the sessions end next): a token of nobody
        raise sessions.InvalidToken("This access token's account was deleted.")
    claims = {"sub": principal.user_uuid, **user_claims.of_account(principal.along[PERSON], scope=scope)}
    alg = app.oidc().userinfo_signed_response_alg
    return UserInfoAnswer(claims=claims, signed=_signed_userinfo(ctx, claims, client_id=app.client_id, alg=alg)
                          if alg else None)


def _signed_userinfo(ctx: AppContext, claims: dict[str, Any], *, client_id: str, alg: str) -> str:
    """OpenID Connect Core §5.3.2: the claims as a JWT the key ring signs with the app's alg, with `iss` and
    `aud` (the app); no `nonce` (a userinfo answer is no ID token) and no `exp`, which §5.3.2 does not ask for."""
    return ctx.jwt.sign_jwt({"iss": issuer(ctx), "aud": client_id, **claims}, algorithm=alg, typ="JWT")


def _userinfo_reads(ctx: AppContext, claims: dict[str, Any]) -> dict[str, KeyRead[Any]]:
    """What userinfo reads in the session's own batch read: the app's grant the token came from (revoked:
    none) and the person."""
    return {GRANT: grant_store(ctx).read(session_id=str(claims.get("sid")), client_id=str(claims.get("client_id"))),
            PERSON: accounts.account_read(ctx.tables, user_uuid=str(claims.get("sub")))}
