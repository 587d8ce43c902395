"""Linking an upstream identity to an account (SPEC §16), in one transaction: the identity's claim (the
pair linked to one account at most), its entry in the account's map, the mail and the history row, and
what the way in to the link must still hold when it commits (the signed-in session still live; a
ticket spent; a mailed link used up). Identity is the pair (issuer, sub): no e-mail ever links. No Flask here."""
from __future__ import annotations

from accounts import user_service as users
from accounts.models import UserRecord
from common.database.guarded_write import GuardedWrite, write_all
from common.runtime.context import AppContext
from common.timefmt import iso
from common.web.caller import Caller
from federation import identities
from federation.models import LinkedIdentity, UpstreamIdentity
from flows import identity_notices as notices
from sessions import service as sessions


def link_signed_in(ctx: AppContext, *, user_uuid: str, session_id: str, identity: UpstreamIdentity) -> LinkedIdentity:
    """Link `identity` to the account signed in with `session_id` (a provider's answer to "link another"),
    only while that session is live when the link commits (401 session_revoked with its reason once it
    ended); 409 identity_linked_elsewhere if the pair is linked already, to this account or another."""
    session = sessions.own_session(ctx, user_uuid=user_uuid, session_id=session_id)
    user = users.get_user(ctx, user_uuid=user_uuid)
    if user is None or user.deleting:
        raise sessions.AccountDeleted()
    return link(ctx, user=user, identity=identity, caller=Caller(ip=session.ip, user_agent=session.user_agent),
                device_id=session.device_id, first=[sessions.session_live_check(ctx, session)])


def link(ctx: AppContext, *, user: UserRecord, identity: UpstreamIdentity, caller: Caller | None,
         device_id: str | None, first: list[GuardedWrite]) -> LinkedIdentity:
    """Link `identity` to `user` in one transaction with `first` (what the way in must still hold, told
    first when refused), the mail and the history row."""
    linked_at = iso(ctx.now())
    told = notices.notice(ctx, user=user, linked=True, provider=notices.display_name(ctx, identity.provider),
                          identity=identity.email, caller=caller, device_id=device_id)
    write_all(ctx.dynamodb, [*first, *identities.link_writes(ctx, user=user, identity=identity, linked_at=linked_at),
                             *told.writes])
    notices.send(ctx, told)
    return LinkedIdentity(link_id=identities.link_id(identity.issuer, identity.sub), provider=identity.provider,
                          issuer=identity.issuer, sub=identity.sub, email=identity.email, linked_at=linked_at)
