"""What introspection (RFC 7662, served by sessions/) asks of a token this OpenID Provider issued: whether its
app is still registered and still holds the grant the token came from."""
from __future__ import annotations

from typing import Any

from common.database.batch_read import KeyRead
from common.runtime.context import AppContext
from oidc.app_grants import ending as grants
from oidc.core.context import grant_store
from relying_parties.models import AppRecord
from relying_parties.registry import current_app

GRANT = "oidc.grant"  # the app's grant on the session, read beside the session


class ProviderGrant:
    """What introspection asks of an OpenID Provider token, read in the session's own batch read: whether
    its app still holds the grant the token came from (a revocation, a code used twice or a refresh token
    reused after the grace revokes it: oidc.app_grants.ending); citylogin's own tokens have none to lose."""

    @staticmethod
    def reads(ctx: AppContext, claims: dict[str, Any]) -> dict[str, KeyRead[Any]]:
        client_id, session_id = claims.get("client_id"), claims.get("sid")
        if not (isinstance(client_id, str) and isinstance(session_id, str)):
            return {}
        return {GRANT: grant_store(ctx).read(session_id=session_id, client_id=client_id)}

    @staticmethod
    def still_granted(ctx: AppContext, claims: dict[str, Any], along: dict[str, Any]) -> bool:
        if claims.get("client_id") is None:
            return True
        return GRANT in along and _app_registered(ctx, claims) and grants.issued_from(along[GRANT], claims)


def _app_registered(ctx: AppContext, claims: dict[str, Any]) -> bool:
    """Whether the app an OpenID Provider token was issued to is still registered, as every host sees it
    within a second of its removal (relying_parties.registry; SPEC §14: a removed app's tokens are refused)."""
    return registered_app(ctx, claims) is not None


def registered_app(ctx: AppContext, claims: dict[str, Any]) -> AppRecord | None:
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 128:
        return None
    return current_app(ctx, client_id=client_id)
