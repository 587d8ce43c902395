"""RFC 7662 token introspection for apps (SPEC §11): one JWT check and one strongly consistent read
of the session (with an OpenID Provider token's grant, in the same BatchGetItem), and nothing about a
token that is not active."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from relying_parties.models import AppRecord
from common.errors import ApiError
from common.database.batch_read import KeyRead
from sessions import service as sessions
from common.runtime.context import AppContext



class GrantCheck(Protocol):
    """Whether an OpenID Provider token's app still holds its grant (oidc.service.ProviderGrant): what to
    read along with the session, then the answer from what was read."""

    def reads(self, ctx: AppContext, claims: dict[str, Any]) -> Mapping[str, KeyRead[Any]]: ...

    def still_granted(self, ctx: AppContext, claims: dict[str, Any], along: dict[str, Any]) -> bool: ...


CLAIMS = ("iss", "aud", "sub", "sid", "did", "jti", "iat", "exp", "scope")


def introspect(ctx: AppContext, *, app: AppRecord, token: str,
               grant_check: GrantCheck | None = None) -> dict[str, Any]:
    """{"active": true, the token's claims, token_type, client_id} for a valid token of a live
    session, else {"active": false} (RFC 7662 §2.2: an inactive token tells nothing more). A bound
    token's answer carries its `cnf`: the app checks the request's DPoP proof against it (SPEC §12).
    `grant_check`: whether an OpenID Provider token's app still holds its grant (oidc.service)."""
    try:
        principal = sessions.authenticate(ctx, access_token=token, activity=False, proof_checked_by_app=True,
                                          issued_by=sessions.ANY_TOKENS,
                                          along=None if grant_check is None else lambda c: grant_check.reads(ctx, c))
    except ApiError as refused:
        if refused.status in (401, 403):  # invalid, expired, revoked, or its account locked
            return {"active": False}
        raise
    claims = principal.claims
    if grant_check is not None and not grant_check.still_granted(ctx, claims, principal.along):
        return {"active": False}
    answer: dict[str, Any] = {"active": True, **{name: claims[name] for name in CLAIMS if name in claims}}
    answer["token_type"] = "DPoP" if "cnf" in claims else "Bearer"
    answer["client_id"] = claims.get("client_id", app.client_id)  # an OpenID Provider token names its app
    if "cnf" in claims:
        answer["cnf"] = claims["cnf"]
    return answer
