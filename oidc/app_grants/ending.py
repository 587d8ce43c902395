"""An app's grant on a session ending while the session goes on (SPEC §14): a refresh token reused
after the grace, a code used twice, or the app giving its tokens back (RFC 7009). The grant's row
stays, marked revoked, until it would have expired: every token check finds no grant (its refresh
tokens are invalid_grant, its access tokens refused by userinfo and introspection at once), and the
back channel knows what it told. Every revocation writes its outbox event in its own transaction, so
no revocation goes untold and no event tells of a revocation that did not happen: the app's CAEP
streams hear it (its API servers' guards refuse the grant's access tokens), and its Back-Channel
Logout too unless the app asked. The device's session and other apps' grants are never touched."""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from common.errors import ServiceUnavailable
from common.crypto.tokens import digests_equal
from common.database.guarded_write import GuardedWrite, write_all
from oidc.core.models import Grant
from oidc.core.store import GrantMoved, GrantStore
from sessions import service as sessions
from common.runtime.context import AppContext

REFRESH_REUSE = "refresh_reuse"   # a rotated-out refresh token used after the grace
CODE_REPLAY = "code_replay"       # a code presented again after it was redeemed
REVOKED_BY_APP = "revoked"        # RFC 7009: the app asked; it is not told by back channel
CONSENT_WITHDRAWN = "consent_withdrawn"  # the person took back their consent on the Account page
SIGNED_OUT_BY_PERSON = "signed_out"  # the person signed the app out of one session (the Sessions tab)
REPLACED = "replaced"             # the app signed the person in again on the session: a new grant
# The person's own endings: a code given before one of them gives nothing (SPEC §14, oidc.token.redemption).
BY_PERSON = frozenset({CONSENT_WITHDRAWN, SIGNED_OUT_BY_PERSON})
# Revocations the app did not ask for: told at once by back channel, so the session's later end tells it
# nothing more there.
TOLD = frozenset({REFRESH_REUSE, CODE_REPLAY, CONSENT_WITHDRAWN, SIGNED_OUT_BY_PERSON})
ATTEMPTS = 3  # a grant replaced or revoked meanwhile is read again
# An app's access token names the grant it was issued from in its jti, `<grant_id>.<generation>`: the app
# signing in again on the session replaces the grant's row, and a revoked grant's tokens must stay refused.
_TOKEN_ID = re.compile(r"([0-9a-f]{16,32})\.(?:0|[1-9][0-9]{0,8})")  # the generation as str(int) writes it


def store(ctx: AppContext) -> GrantStore:
    return GrantStore(ctx.dynamodb, ctx.tables.oidc_grants)


def end_grant(ctx: AppContext, *, session_id: str, client_id: str, reason: str,
              grant_id: str | None = None, checks: Sequence[GuardedWrite] = ()) -> bool:
    """End the app's live grant on the session (only if it is `grant_id`, when given) for `reason`:
    True if this call ended it, False if there was none to end. `checks` go in the revocation's own
    transaction (a refused one raises its refusal, and nothing is written)."""
    for _ in range(ATTEMPTS):
        grant = store(ctx).get(session_id=session_id, client_id=client_id)
        if grant is None or (grant_id is not None and grant.grant_id != grant_id):
            return False
        try:
            revoke(ctx, grant, reason=reason, checks=checks)
            return True
        except GrantMoved:
            continue  # rotated, replaced or revoked meanwhile: read it again
    raise ServiceUnavailable("The app's grant is busy; try again.")


def revoke(ctx: AppContext, grant: Grant, *, reason: str, checks: Sequence[GuardedWrite] = ()) -> None:
    """Mark `grant` revoked and write its event for the app, in one transaction with `checks`;
    GrantMoved if the grant changed since it was read (nothing is written)."""
    # Written for the app's own RFC 7009 revocation too: its Back-Channel Logout skips that one (the
    # app asked), but its API servers' guards must refuse the access tokens it gave back.
    revocation = store(ctx).revoke_item(grant, reason=reason, now_ms=int(ctx.now().timestamp() * 1000),
                                        by_person=reason in BY_PERSON)
    writes = [GuardedWrite(item=revocation, refusal=GrantMoved), *checks,
              sessions.grant_ending(ctx.tables, session_id=grant.session_id, user_uuid=grant.user_uuid,
                                    device_id=grant.device_id, client_id=grant.client_id,
                                    grant_id=grant.grant_id, reason=reason, at_ms=ctx.epoch_ms())]
    write_all(ctx.dynamodb, writes)


def access_token_id(*, grant_id: str, generation: int) -> str:
    """The jti of an app's access token issued from `grant_id` at its refresh `generation` (the same
    again when a refresh's pair is formed again within the reuse grace)."""
    return f"{grant_id}.{generation}"


def named_grant(claims: dict[str, Any]) -> str | None:
    """The grant an app's access token (its verified claims) names; None for one whose jti names none
    (issued before jtis named their grant: an upgrade's access-token lifetime at most)."""
    named = _TOKEN_ID.fullmatch(str(claims.get("jti", "")))
    return named.group(1) if named else None


def issued_from(grant: Grant | None, claims: dict[str, Any]) -> bool:
    """Whether an app's access token was issued from `grant`, the app's live grant on the token's session
    (None: there is none); a token that names no grant counts the live one as its own."""
    if grant is None:
        return False
    named = named_grant(claims)
    return named is None or digests_equal(named, grant.grant_id)


def told_already(grant: Grant | None) -> bool:
    """Whether the app heard of this grant's end from its own revocation (Back-Channel Logout): the
    session's later end then tells it nothing more."""
    return grant is not None and grant.revoked in TOLD
