"""An app's grant on a session ending while the session goes on (SPEC §14): a refresh token reused
after the grace, a code used twice, or the app giving its tokens back (RFC 7009). The grant's row
stays, marked revoked, until it would have expired: every token check finds no grant (its refresh
tokens are invalid_grant, its access tokens refused by userinfo and introspection at once), and the
back channel knows what it told. A revocation the app did not ask for tells the app at once by
Back-Channel Logout: its outbox event is written in the revocation's own transaction, so no
revocation goes untold and no event tells of a revocation that did not happen. The device's session
and other apps' grants are never touched."""
from __future__ import annotations

from collections.abc import Sequence

from common.context import AppContext
from common.errors import ServiceUnavailable
from common.guarded_write import GuardedWrite, write_all
from oidc.models import Grant
from oidc.store import GrantMoved, GrantStore
from sessions import service as sessions

REFRESH_REUSE = "refresh_reuse"   # a rotated-out refresh token used after the grace
CODE_REPLAY = "code_replay"       # a code presented again after it was redeemed
REVOKED_BY_APP = "revoked"        # RFC 7009: the app asked; it is not told by back channel
CONSENT_WITHDRAWN = "consent_withdrawn"  # the person took back their consent on the Account page
SIGNED_OUT_BY_PERSON = "signed_out"  # the person signed the app out of one session (the Sessions tab)
# Revocations the app did not ask for: told at once, so the session's later end tells it nothing more.
TOLD = frozenset({REFRESH_REUSE, CODE_REPLAY, CONSENT_WITHDRAWN, SIGNED_OUT_BY_PERSON})
ATTEMPTS = 3  # a grant replaced or revoked meanwhile is read again


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
    """Mark `grant` revoked and, unless the app asked, its logout event for the app, in one
    transaction with `checks`; GrantMoved if the grant changed since it was read (nothing is written)."""
    writes = [GuardedWrite(item=store(ctx).revoke_item(grant, reason=reason, now=int(ctx.now().timestamp())),
                           refusal=GrantMoved), *checks]
    if reason in TOLD:
        writes.append(sessions.grant_ending(ctx, session_id=grant.session_id, user_uuid=grant.user_uuid,
                                            device_id=grant.device_id, client_id=grant.client_id,
                                            grant_id=grant.grant_id, reason=reason))
    write_all(ctx.dynamodb, writes)


def told_already(grant: Grant | None) -> bool:
    """Whether the app heard of this grant's end from its own revocation (Back-Channel Logout): the
    session's later end then tells it nothing more."""
    return grant is not None and grant.revoked in TOLD
