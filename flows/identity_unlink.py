"""The account's linked identities (SPEC §16): listed, and one unlinked while a way in remains — its
password, a passkey or another identity — which the unlink's transaction itself holds to (two unlinks racing
for the last two identities: one commits, the other is 409 last_way_in), with its mail and history row.
No Flask here."""
from __future__ import annotations

from accounts import passkey_service as passkeys
from accounts import user_service as users
from common.database.batch_read import read_together
from common.database.guarded_write import write_all
from common.runtime.context import AppContext
from common.web.caller import Caller
from federation import identities
from federation.flow_models import LinkedIdentityView
from flows import identity_notices as notices
from sessions import service as sessions
from sessions.models import Principal

USER, PASSKEYS = "unlink.user", "unlink.passkeys"


def list_identities(ctx: AppContext, *, user_uuid: str) -> list[LinkedIdentityView]:
    """The account's linked identities, oldest link first, each with its provider's display name."""
    return [LinkedIdentityView(link_id=linked.link_id, provider=linked.provider, email=linked.email,
                               display_name=notices.display_name(ctx, linked.provider), linked_at=linked.linked_at)
            for linked in identities.list_identities(ctx, user_uuid=user_uuid)]


def unlink(ctx: AppContext, *, principal: Principal, link_id: str, caller: Caller) -> None:
    """Unlink `link_id` from the caller's account: 404 identity_not_found, 409 last_way_in."""
    facts = read_together(ctx.dynamodb, {
        USER: users.user_read(ctx.tables, user_uuid=principal.user_uuid),
        PASSKEYS: passkeys.passkey_count_read(ctx.tables, user_uuid=principal.user_uuid)})
    user = facts[USER]
    if user is None or user.deleting:
        raise sessions.AccountDeleted()
    writes = identities.unlink_writes(ctx, user=user, link=link_id, passkey_count=facts[PASSKEYS])
    entry = (user.identities or {})[link_id]
    told = notices.notice(ctx, user=user, linked=False, provider=notices.display_name(ctx, entry.get("provider", "")),
                          identity=entry.get("email"), caller=caller, device_id=principal.device_id)
    write_all(ctx.dynamodb, [sessions.still_live(ctx, principal), *writes, *told.writes])
    notices.send(ctx, told)
