"""What an import (SPEC §17) asks of the accounts domain: its store of batched conditional writes
(accounts/import_store.py), the claims an imported row takes, and what `--update` changes on an account an
import wrote before. flows/account_import.py composes it with the identity links of federation."""
from __future__ import annotations

from typing import Any

from accounts.email_store import LINK_GENERATION
from accounts.import_rows import ImportRow
from accounts.import_store import MAX_ENTRIES, AccountChange, Created, ImportStore, NewAccount, Taken
from accounts.user_store import email_claim, username_claim
from common.crypto.passwords import is_imported
from common.runtime.context import AppContext

__all__ = ["MAX_ENTRIES", "AccountChange", "Created", "NewAccount", "Taken", "account_change", "claims_of",
           "import_writer"]


def import_writer(ctx: AppContext) -> ImportStore:
    return ImportStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims)


def claims_of(row: ImportRow) -> list[str]:
    """The claims `row`'s account takes: its username's, and its address's if it has one."""
    return [username_claim(row.username)] + ([email_claim(row.email)] if row.email else [])


def account_change(row: ImportRow, stored: dict[str, Any]) -> AccountChange | None:
    """What --update sets on an account the import wrote before: what differs from the row, the hash only
    while the stored one is still imported (or there is none), never a password set in citylogin. None if
    nothing differs (the lock, told apart by the caller, aside)."""
    changes: dict[str, Any] = {}
    # What the row's export does not hold (Auth0's two exports each lack some) is left as stored.
    expected: dict[str, Any] = {"imported_from": row.source}
    old_email, new_email = stored.get("email", ""), None
    if row.email != old_email:
        changes.update(email=row.email, **{LINK_GENERATION: stored.get(LINK_GENERATION, 0) + 1})
        expected["email"], new_email = old_email, row.email
    for attribute, value in (("email_verified", row.email_verified), ("locale", row.locale)):
        if attribute in row.unstated:
            continue
        if stored.get(attribute, {"locale": "en"}.get(attribute, False)) != value:
            changes[attribute] = value
    stored_hash = stored.get("password_hash", "")
    replaceable = not stored_hash or is_imported(stored_hash)  # never a password set in citylogin
    if "password_hash" not in row.unstated and row.password_hash and row.password_hash != stored_hash and replaceable:
        changes["password_hash"], expected["password_hash"] = row.password_hash, stored_hash
    if not changes:
        return None
    return AccountChange(user_uuid=row.user_uuid, changes=changes, expected=expected, old_email=old_email,
                         new_email=new_email)
