"""Identities linked to accounts (SPEC §16): who an upstream identity (issuer, sub) is here, and the write
entries that link and unlink one, for the flows' transactions. A link is two entries that commit together:
the identity's claim (federation/identity_store.py; its creation is the uniqueness of the pair) and its
entry in the account's map (accounts.user_service). Identity is the pair, never the e-mail. No Flask here."""
from __future__ import annotations

import json
from typing import Any

from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import UserRecord
from common.crypto.tokens import token_digest
from common.database.batch_read import KeyRead
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite
from common.errors import Conflict, ErrorCode
from common.runtime.context import AppContext
from federation.identity_store import IdentityStore
from federation.models import LinkedIdentity, UpstreamIdentity

IdentityNotFound, LastWayIn = users.IdentityNotFound, users.LastWayIn


class IdentityLinkedElsewhere(Conflict):
    code, detail = ErrorCode.IDENTITY_LINKED_ELSEWHERE, "This identity is already linked to another account."


def link_id(issuer: str, sub: str) -> str:
    """The identity's id: a digest of the pair (JSON, so no issuer and sub can run into each other)."""
    return token_digest(json.dumps([issuer, sub]), purpose="upstream-identity")[:32]


def identity_store(ctx: AppContext) -> IdentityStore:
    return IdentityStore(ctx.dynamodb, ctx.tables.claims)


def owner_of(ctx: AppContext, *, issuer: str, sub: str) -> str | None:
    """The user_uuid of the account the pair is linked to, read strongly consistent; None if none."""
    return identity_store(ctx).owner(link_id(issuer, sub))


def owner_read(tables: TableNames, *, issuer: str, sub: str) -> KeyRead[str | None]:
    """owner_of for a caller's batch read."""
    return KeyRead(tables.claims, IdentityStore.key(link_id(issuer, sub)), IdentityStore.owner_from_item)


def linked_check(ctx: AppContext, *, user_uuid: str, identity: UpstreamIdentity,
                 refusal: type[Exception]) -> GuardedWrite:
    """A check, for a transaction, that `identity` is still linked to `user_uuid` when it commits (an unlink
    meanwhile: `refusal`)."""
    item = identity_store(ctx).held_check_item(link_id(identity.issuer, identity.sub), user_uuid=user_uuid)
    return GuardedWrite(item=item, refusal=refusal)


def map_entry(identity: UpstreamIdentity, *, linked_at: str) -> dict[str, Any]:
    """The identity as the account's map keeps it (users item `identities`)."""
    return {"provider": identity.provider, "issuer": identity.issuer, "sub": identity.sub, "email": identity.email,
            "linked_at": linked_at}


def claim_write(ctx: AppContext, *, user_uuid: str, identity: UpstreamIdentity) -> GuardedWrite:
    """The identity's claim for `user_uuid`, for a transaction; 409 identity_linked_elsewhere if it is
    linked already (to this account or another: the answer names neither)."""
    item = identity_store(ctx).claim_item(link_id(identity.issuer, identity.sub), user_uuid=user_uuid,
                                          issuer=identity.issuer, sub=identity.sub, provider=identity.provider)
    return GuardedWrite(item=item, refusal=IdentityLinkedElsewhere)


def link_writes(ctx: AppContext, *, user: UserRecord, identity: UpstreamIdentity, linked_at: str) -> list[GuardedWrite]:
    """The entries that link `identity` to the existing account `user`: the claim first (so a pair linked
    already is told as such), then the map's entry (the map made first if the account has none)."""
    users.identities_ready(ctx, user=user)
    return [claim_write(ctx, user_uuid=user.user_uuid, identity=identity),
            users.identity_added_write(ctx, user_uuid=user.user_uuid, link_id=link_id(identity.issuer, identity.sub),
                                       entry=map_entry(identity, linked_at=linked_at))]


def unlink_writes(ctx: AppContext, *, user: UserRecord, link: str, passkey_count: int) -> list[GuardedWrite]:
    """The entries that unlink `link` from `user` while a way in remains (SPEC §16: a password, a passkey or
    another identity), the one the account has as read; each is a condition of the transaction, so two
    unlinks racing for the last two identities cannot both commit. 404 identity_not_found, 409 last_way_in."""
    linked = user.identities or {}
    if link not in linked:
        raise IdentityNotFound()
    keeps = "password" if user.has_password else "identity" if len(linked) > 1 else \
        "passkey" if passkey_count > 0 else None
    if keeps is None:
        raise LastWayIn()
    writes = [GuardedWrite(item=identity_store(ctx).release_item(link, user_uuid=user.user_uuid),
                           refusal=IdentityNotFound),
              users.identity_removed_write(ctx, user_uuid=user.user_uuid, link_id=link, keeps=keeps)]
    if keeps == "passkey":
        writes.append(passkeys.passkey_kept_write(ctx, user_uuid=user.user_uuid))
    return writes


def linked_identities(user: UserRecord) -> list[LinkedIdentity]:
    """The account's linked identities, oldest link first."""
    listed = [LinkedIdentity(link_id=key, provider=entry.get("provider", ""), issuer=entry.get("issuer", ""),
                             sub=entry.get("sub", ""), email=entry.get("email"), linked_at=entry.get("linked_at", ""))
              for key, entry in (user.identities or {}).items()]
    return sorted(listed, key=lambda linked: (linked.linked_at, linked.link_id))


def list_identities(ctx: AppContext, *, user_uuid: str) -> list[LinkedIdentity]:
    """The account's linked identities, read strongly consistent (none for an unknown account)."""
    user = users.get_user(ctx, user_uuid=user_uuid)
    return linked_identities(user) if user else []


def claim_items(ctx: AppContext, *, user_item: dict[str, Any]) -> list[dict[str, Any]]:
    """The claims of the identities the account's map names, as stored (a person's data export)."""
    return identity_store(ctx).items(sorted(user_item.get("identities") or {}))


def release_all(ctx: AppContext, *, user: UserRecord) -> None:
    """Remove the claims of every identity linked to `user` (its deletion): the pairs are free again."""
    identity_store(ctx).release_all(sorted(user.identities or {}), user_uuid=user.user_uuid)
