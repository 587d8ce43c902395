"""What the accounts domain stores about a person, as stored, for their data export
(flows/data_export.py): the users item, the claims on its names, the lockout of its username and its
passkeys. The export decides what of it leaves the service."""
from __future__ import annotations

from typing import Any

from accounts.credential_service import lockout_store, username_subject
from accounts.passkey_store import PasskeyStore
from accounts.user_service import user_store
from accounts.user_store import EMAIL_UNCLAIMED, email_claim, username_claim
from common.runtime.context import AppContext

RECOVERY_DIGESTS = "recovery_code_digests"  # accounts/store.py: the codes' digests, never exported


def user_item(ctx: AppContext, *, user_uuid: str) -> dict[str, Any] | None:
    """The users item as stored, None if there is none."""
    return user_store(ctx).item(user_uuid)


def items_of_names(ctx: AppContext, *, user: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The items keyed by the account's username or address, which no index lists: its claims
    (`claims`) and its username's failed logins and lock (`rate_limits`)."""
    claims = [username_claim(user["username"])]
    if user.get("email") and not user.get(EMAIL_UNCLAIMED):
        claims.append(email_claim(user["email"]))
    store, subject = lockout_store(ctx), username_subject(user["username"])
    lockout = store.read([store.lock_key(subject), store.failure_key(subject)])
    return {"claims": user_store(ctx).claim_items(claims), "rate_limits": list(lockout.values())}


def passkey_items(ctx: AppContext, *, user_uuid: str) -> list[dict[str, Any]]:
    return PasskeyStore(ctx.dynamodb, ctx.tables.passkeys).items(user_uuid)


def recovery_codes_left(user: dict[str, Any]) -> int:
    return len(user.get(RECOVERY_DIGESTS) or ())
