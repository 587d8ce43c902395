"""Users: the record, its name claims, the operator's lock and limit, the password hash and
the deletion of the users item (SPEC §4, §8). No Flask here."""
from __future__ import annotations

import uuid
from typing import Any

from accounts.models import Role, UserRecord
from accounts.role_store import LastAdmin, RoleMoving, RoleStore
from accounts.user_store import ClaimMissing, NameTaken, UserStore, WriteRefused
from common.errors import Conflict, ErrorCode, Forbidden, NotFound, StorageUnavailable
from common.database.batch_read import KeyRead
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite
from sessions import service as sessions
from sessions.models import AdminAction, EndedBy, RevokeReason
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext


class UsernameTaken(Conflict):
    code, detail = ErrorCode.USERNAME_TAKEN, "This username is already taken."


class EmailTaken(Conflict):
    code, detail = ErrorCode.EMAIL_TAKEN, "An account with this e-mail address already exists."


class EmailNotTaken(Exception):
    """A new account was to be stored without its address, but no account holds that address (any
    more): the caller stores it holding the address instead. Never an answer of its own."""


class IdentityNotFound(NotFound):
    code, detail = ErrorCode.IDENTITY_NOT_FOUND, "No such linked identity on this account."


class LastWayIn(Conflict):
    code, detail = (ErrorCode.LAST_WAY_IN, "This is the account's last way to sign in: set a password, add a "
                    "passkey or link another identity first.")


class UserNotFound(NotFound):
    detail = "No such user."


class LastAdminRole(Forbidden):
    code = ErrorCode.FORBIDDEN
    detail = ("This is the last account with the admin role: grant the role to another account before "
              "taking it from this one.")


class LastAdminAccount(Conflict):
    code = ErrorCode.LAST_ADMIN
    detail = ("This account holds the admin role and no other account is counted as holding it: grant the role "
              "to another account (citylogin admin grant), then take it from this one (citylogin admin revoke) "
              "before deleting it.")


def count_admins(ctx: AppContext) -> int:
    """The accounts holding the admin role, counted once from the users table if they never were (an
    offline Scan, for `citylogin admin revoke`: the last admin's role is refused until they are counted)."""
    return role_store(ctx).seed_admin_count()


def user_store(ctx: AppContext) -> UserStore:
    return UserStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims)


def create_user(ctx: AppContext, *, user: UserRecord, extra_attributes: dict[str, Any],
                extra_writes: list[GuardedWrite], holds_email: bool = True) -> None:
    """Store the user (with `extra_attributes` on its item) and claim its username and e-mail,
    with `extra_writes`, in one transaction: UsernameTaken, EmailTaken, or a refused write's own error.
    `holds_email=False`: another account holds `user.email`, so the user is stored without its claim,
    as not holding it (SPEC §4), only while that claim exists (EmailNotTaken if it does not)."""
    try:
        user_store(ctx).create(user, extra_attributes=extra_attributes, extra_writes=[w.item for w in extra_writes],
                               holds_email=holds_email)
    except NameTaken as taken:
        raise (UsernameTaken() if taken.which == "username" else EmailTaken()) from None
    except ClaimMissing:
        raise EmailNotTaken() from None
    except WriteRefused as refused:
        raise extra_writes[refused.index].refusal() from None


def email_holder(ctx: AppContext, *, email: str) -> str | None:
    """The uuid of the account that holds `email` (case-insensitive), read strongly consistent."""
    return user_store(ctx).find_uuid_by_email(email)


def find_uuid_by_username(ctx: AppContext, *, username: str) -> str | None:
    """The uuid of the user named `username` (compared as at registration), read strongly consistent."""
    return user_store(ctx).find_uuid_by_username(username)


def find_user(ctx: AppContext, *, username: str) -> UserRecord | None:
    """The user named `username` (compared as at registration), read strongly consistent."""
    store = user_store(ctx)
    user_uuid = store.find_uuid_by_username(username)
    return store.get(user_uuid) if user_uuid else None


def get_user(ctx: AppContext, *, user_uuid: str) -> UserRecord | None:
    return user_store(ctx).get(user_uuid)


def user_read(tables: TableNames, *, user_uuid: str) -> KeyRead[UserRecord | None]:
    """The user's item, for a caller's batch read (common/database/batch_read.py)."""
    return KeyRead(tables.users, UserStore.user_key(user_uuid), UserStore.user_from_item)


def username_owner_read(tables: TableNames, *, username: str) -> KeyRead[str | None]:
    """The uuid of the user named `username` (compared as at registration), for a batch read."""
    return KeyRead(tables.claims, UserStore.username_key(username), UserStore.owner_from_claim_item)


def rehash_password(ctx: AppContext, *, user_uuid: str, verified_hash: str, password_hash: str) -> bool:
    """Replace `verified_hash` by a hash of the same password with the current parameters, only if
    it is still the stored one: a password changed or reset meanwhile is never put back."""
    return user_store(ctx).rehash_password(user_uuid, verified_hash, password_hash)


# --- operators (citylogin admin) ------------------------------------------------------------

def lock_account(ctx: AppContext, *, user_uuid: str) -> int:
    """Lock the account and end its sessions (reason admin, marked locked); returns how many ended.
    The flag goes first: a login committing after it fails the flag check of its transaction
    (`not_locked_write`), and one that committed before is in the presence read after it."""
    if not user_store(ctx).set_locked(user_uuid, True):
        raise UserNotFound()
    ended = sessions.end_all_sessions(ctx, user_uuid=user_uuid, reason=RevokeReason.ADMIN, locked=True,
                                      ended_by=EndedBy(admin_action=AdminAction.LOCKED))
    audit(AuditEvent.ACCOUNT_LOCKED, user_uuid=user_uuid, sessions_ended=ended)
    return ended


def unlock_account(ctx: AppContext, *, user_uuid: str) -> None:
    """Let the account log in again; the sessions the lock ended stay ended."""
    if not user_store(ctx).set_locked(user_uuid, False):
        raise UserNotFound()
    audit(AuditEvent.ACCOUNT_UNLOCKED, user_uuid=user_uuid)


def set_concurrent_limit(ctx: AppContext, *, user_uuid: str, limit: int | None) -> None:
    """The user's own concurrent-device limit (0 = unlimited), replacing the configured total
    (SPEC §5); None goes back to the default. Live sessions are kept; the next login obeys it."""
    if not user_store(ctx).set_max_concurrent_devices(user_uuid, limit):
        raise UserNotFound()
    audit(AuditEvent.CONCURRENT_LIMIT_SET, user_uuid=user_uuid, limit=limit)


def role_store(ctx: AppContext) -> RoleStore:
    return RoleStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims)


def set_role(ctx: AppContext, *, user_uuid: str, role: Role, granted: bool) -> None:
    """Grant the account an operator role (SPEC §15), or take it away; the next admin call obeys it.
    403 forbidden (LastAdminRole) for the admin role of the last account that holds it."""
    try:
        changed = role_store(ctx).set_role(user_uuid, role.value, granted=granted)
    except LastAdmin:
        raise LastAdminRole() from None
    if not changed:
        raise UserNotFound()
    if granted:
        audit(AuditEvent.ROLE_GRANTED, user_uuid=user_uuid, role=role.value)
    else:
        audit(AuditEvent.ROLE_REVOKED, user_uuid=user_uuid, role=role.value)


def password_upgrade_item(ctx: AppContext, *, user_uuid: str, verified_hash: str, password_hash: str
                          ) -> dict[str, Any]:
    """The users item's entry that stands for not_locked_write in a sign-in that also replaces an imported
    hash (UserStore.password_upgrade_item); accounts.credential_service gives it its refusal."""
    return user_store(ctx).password_upgrade_item(user_uuid, verified_hash=verified_hash, password_hash=password_hash)


def not_locked_write(ctx: AppContext, *, user_uuid: str) -> GuardedWrite:
    """The transaction entry that refuses a login or a new device of a locked account, or of one
    whose deletion has begun (for a caller's extra_writes); its refusal is AccountLocked or
    AccountDeleted, whichever holds."""
    def refused() -> Exception:
        user = get_user(ctx, user_uuid=user_uuid)
        return sessions.AccountDeleted() if user is None or user.deleting else sessions.AccountLocked()
    return GuardedWrite(item=user_store(ctx).not_locked_check(user_uuid), refusal=refused)


def not_deleting_write(ctx: AppContext, *, user_uuid: str) -> GuardedWrite:
    """The transaction entry that refuses a write of a session's own (say, a certificate
    renewal) once the account's deletion has begun: 401 session_revoked, reason account_deleted."""
    return GuardedWrite(item=user_store(ctx).usable_check(user_uuid), refusal=sessions.account_deleted_session)


# --- linked upstream identities (SPEC §16): the users item's map; federation/ composes the transaction ---

def identities_ready(ctx: AppContext, *, user: UserRecord) -> None:
    """Make sure the user's item has its map of identities (one write, the first time only)."""
    if user.identities is None and not user_store(ctx).identities_ready(user.user_uuid):
        raise sessions.AccountDeleted()


def identity_added_write(ctx: AppContext, *, user_uuid: str, link_id: str, entry: dict[str, Any]) -> GuardedWrite:
    """The entry for the transaction that links an identity: `entry` ({provider, issuer, sub, email,
    linked_at}) under `link_id` in the user's map (identities_ready first); refused (410 account_deleted)
    once the account's deletion has begun."""
    entry = {key: value for key, value in entry.items() if value is not None}
    return GuardedWrite(item=user_store(ctx).identity_added_item(user_uuid, link_id, entry),
                        refusal=sessions.AccountDeleted)


def identity_removed_write(ctx: AppContext, *, user_uuid: str, link_id: str, keeps: str) -> GuardedWrite:
    """The entry for the transaction that unlinks `link_id`, holding only while the account keeps the way
    in `keeps` ("password", "identity" or "passkey": see UserStore.identity_removed_item). Refused with
    404 identity_not_found when the link is gone (unlinked meanwhile), else 409 last_way_in."""
    def refusal_of(item: dict[str, Any] | None) -> Exception:
        user = UserStore.user_from_item(item)
        if user is None or user.deleting or link_id not in (user.identities or {}):
            return IdentityNotFound()
        return LastWayIn()
    return GuardedWrite(item=user_store(ctx).identity_removed_item(user_uuid, link_id, keeps=keeps),
                        refusal=IdentityNotFound, refusal_of_item=refusal_of)


def way_in_kept_write(ctx: AppContext, *, user_uuid: str, keeps: str) -> GuardedWrite:
    """A check, for the transaction that removes a passkey, that the account keeps `keeps` ("password" or
    "identity") when it commits; refused with 409 last_way_in (an unlink or a deletion came first)."""
    return GuardedWrite(item=user_store(ctx).way_in_kept_item(user_uuid, keeps=keeps), refusal=LastWayIn)


def set_first_password(ctx: AppContext, *, user_uuid: str, password_hash: str) -> bool:
    """The password of an account that had none; False if one was set meanwhile (or the account is gone)."""
    return user_store(ctx).set_first_password(user_uuid, password_hash)


# --- password reset and account deletion ----------------------------------------------------

def find_user_by_email(ctx: AppContext, *, email: str) -> UserRecord | None:
    """The user whose e-mail claim is `email` (case-insensitive), unless it is being deleted; an
    unknown address reads the users table too (a uuid no user has), so known and unknown cost the
    same calls. An account that was given the address but does not hold it is never the one."""
    store = user_store(ctx)
    user_uuid = store.find_uuid_by_email(email)
    user = store.get(user_uuid or str(uuid.UUID(int=0)))
    return user if user_uuid and user and not user.deleting else None


def mark_email_verified(ctx: AppContext, *, user_uuid: str, email: str) -> bool:
    """The account's address `email` proven by a code mailed to it (SPEC §17); False if it changed meanwhile."""
    return user_store(ctx).mark_email_verified(user_uuid, email)


def replace_password_hash(ctx: AppContext, *, user_uuid: str, password_hash: str) -> bool:
    """A changed password, which voids every outstanding reset link; False if the user no longer exists."""
    return user_store(ctx).replace_password_hash(user_uuid, password_hash)


def reset_password(ctx: AppContext, *, user_uuid: str, password_hash: str, reset_generation: int,
                   token_use: dict[str, Any]) -> bool:
    """The password set through a reset link made in `reset_generation`, with `token_use` (the
    entry that uses the link up) in one transaction; every other link is void after it. False if
    the link is used, or void (a reset or change since), or the user is gone."""
    return user_store(ctx).reset_password(user_uuid, password_hash, reset_generation=reset_generation,
                                          token_use=token_use)



def begin_deletion(ctx: AppContext, *, user_uuid: str, holds_admin: bool) -> bool:
    """Put the account into the deleting state (one conditional write; an admin's also lowers the count
    of admins, in one transaction); False if it already is, or is gone. 409 last_admin (LastAdminAccount)
    for the last account holding the admin role: SPEC §15, the last admin cannot lose the role."""
    start = user_store(ctx).deletion_start(user_uuid, since=ctx.epoch())
    try:
        return role_store(ctx).begin_deletion(user_uuid, start=start, holds_admin=holds_admin)
    except LastAdmin:
        raise LastAdminAccount() from None
    except RoleMoving:  # granted and taken away again under each attempt: a rare race, told as a busy database
        raise StorageUnavailable() from None


def release_names(ctx: AppContext, *, user: UserRecord) -> None:
    """Free the username and e-mail of an account being deleted."""
    user_store(ctx).release_names(user)


TOMBSTONE_TTL = 7 * 86400  # if no sweeper ever removes it


def leave_tombstone(ctx: AppContext, *, user: UserRecord) -> None:
    """Replace the users item (profile, hash, recovery codes) by the deletion's bare state."""
    now = ctx.epoch()
    user_store(ctx).leave_tombstone(user, finished=now, expires=now + TOMBSTONE_TTL)


def remove_tombstone(ctx: AppContext, *, user_uuid: str) -> None:
    user_store(ctx).remove_tombstone(user_uuid)


def users_being_deleted(ctx: AppContext, *, since_before: int) -> list[str]:
    return user_store(ctx).being_deleted(since_before=since_before)
