"""The writes of an import (SPEC §17) on the users and claims tables: each account one users item and its
username and e-mail claims (and the entries other domains add: identity claims), created together or not at
all, never over an item that exists. Several accounts go in one TransactWriteItems; a cancelled one is
written again account by account, so each gets its own answer. The reads that come first are one
BatchGetItem of the accounts' items and claims."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from accounts.user_store import email_claim, username_claim
from common.database import dynamo
from common.database.attribute_values import to_value
from common.database.batch_read import MAX_KEYS, KeyRead

MAX_ENTRIES = 100  # TransactWriteItems' limit; BatchGetItem's is the same (MAX_KEYS)
CONDITION_FAILED = "ConditionalCheckFailed"
_USABLE = "attribute_exists(user_uuid) AND attribute_not_exists(deleting_since)"


@dataclass(frozen=True)
class NewAccount:
    """An account to create: its users item (`attributes`, with user_uuid), its username and e-mail (""
    for none) and `extra` entries of other domains, each named for the refusal that tells it."""

    user_uuid: str
    username: str
    email: str
    attributes: dict[str, Any]
    extra: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def claims(self) -> list[str]:
        return [username_claim(self.username)] + ([email_claim(self.email)] if self.email else [])


@dataclass(frozen=True)
class Created:
    """The account was written, or (`exists`) an item of its uuid was there already: nothing written."""

    exists: bool = False


@dataclass(frozen=True)
class Taken:
    """Nothing written: `which` ("username", "email" or an extra entry's name) is held by another item."""

    which: str


@dataclass(frozen=True)
class AccountChange:
    """What an update sets on an imported account's users item, each only if it is still as read
    (`expected`: attribute -> the value read, None for absent): a change made in citylogin meanwhile wins."""

    user_uuid: str
    changes: dict[str, Any]
    expected: dict[str, Any] = field(default_factory=dict)
    old_email: str = ""
    new_email: str | None = None  # an address whose claim moves with it ("" gives the claim up)


class ImportStore:
    def __init__(self, client: Any, *, users_table: str, claims_table: str) -> None:
        self.client, self.users, self.claims = client, users_table, claims_table

    # --- reads --------------------------------------------------------------------------------

    def user_item_read(self, user_uuid: str) -> KeyRead[dict[str, Any] | None]:
        return KeyRead(self.users, {"user_uuid": {"S": user_uuid}}, dynamo.from_item)

    def claim_owner_read(self, claim: str) -> KeyRead[str | None]:
        return KeyRead(self.claims, {"claim": {"S": claim}}, _owner)

    # --- creation -----------------------------------------------------------------------------

    def entries(self, account: NewAccount) -> list[dict[str, Any]]:
        """The account's entries, in the order its refusals are told: the users item, its claims, the extras."""
        user = {"Put": {"TableName": self.users, "Item": dynamo.to_item(account.attributes),
                        "ConditionExpression": "attribute_not_exists(user_uuid)"}}
        claims = [{"Put": {"TableName": self.claims,
                           "Item": {"claim": {"S": claim}, "user_uuid": {"S": account.user_uuid}},
                           "ConditionExpression": "attribute_not_exists(claim)"}} for claim in account.claims]
        return [user, *claims, *(entry for _, entry in account.extra)]

    def create_together(self, accounts: list[NewAccount]) -> bool:
        """All of `accounts` in one transaction (their entries at most MAX_ENTRIES, no item twice); False if
        it was cancelled (an item there already, a claim taken): nothing of any of them was written."""
        items = [entry for account in accounts for entry in self.entries(account)]
        if len(items) > MAX_ENTRIES:
            raise ValueError(f"{len(items)} entries: a transaction holds at most {MAX_ENTRIES}")
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if CONDITION_FAILED in dynamo.cancellation_codes(exc):
                return False
            raise
        return True

    def create_one(self, account: NewAccount) -> Created | Taken:
        """The account in a transaction of its own: Created, Created(exists=True) when its users item is there
        already (an earlier run, another process), or Taken naming the first claim or extra held."""
        try:
            self.client.transact_write_items(TransactItems=self.entries(account))
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if CONDITION_FAILED not in codes:
                raise
            return self._refusal(account, codes)
        return Created()

    @staticmethod
    def _refusal(account: NewAccount, codes: list[str]) -> Created | Taken:
        names = ["user", "username"] + (["email"] if account.email else []) + [name for name, _ in account.extra]
        which = names[codes.index(CONDITION_FAILED)]
        return Created(exists=True) if which == "user" else Taken(which)

    # --- update -------------------------------------------------------------------------------

    def update(self, change: AccountChange) -> Created | Taken | None:
        """`change` in one transaction: the users item (only while usable and as read), and the e-mail claim
        moved with the address. Created(), Taken("email") if another account holds the new address, None if
        the item changed meanwhile (read it again)."""
        items = [self._user_update(change)]
        moves = change.new_email is not None and email_claim(change.new_email) != email_claim(change.old_email)
        if moves and change.old_email:
            items.append({"Delete": {"TableName": self.claims, "Key": {"claim": {"S": email_claim(change.old_email)}},
                                     "ConditionExpression": "user_uuid = :u",
                                     "ExpressionAttributeValues": {":u": {"S": change.user_uuid}}}})
        if moves and change.new_email:
            items.append({"Put": {"TableName": self.claims,
                                  "Item": {"claim": {"S": email_claim(change.new_email)},
                                           "user_uuid": {"S": change.user_uuid}},
                                  "ConditionExpression": "attribute_not_exists(claim)"}})
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if CONDITION_FAILED not in codes:
                raise
            claimed = moves and bool(change.new_email) and codes[-1] == CONDITION_FAILED
            return Taken("email") if claimed and codes[0] != CONDITION_FAILED else None
        return Created()

    def _user_update(self, change: AccountChange) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes, conditions = [], [], [_USABLE]
        for index, (attribute, value) in enumerate(sorted(change.changes.items())):
            names[f"#a{index}"] = attribute
            if value is None:
                removes.append(f"#a{index}")
            else:
                values[f":v{index}"] = to_value(value)
                sets.append(f"#a{index} = :v{index}")
        for index, (attribute, value) in enumerate(sorted(change.expected.items())):
            names[f"#e{index}"] = attribute
            if value is None:
                conditions.append(f"attribute_not_exists(#e{index})")
            else:
                values[f":e{index}"] = to_value(value)
                conditions.append(f"#e{index} = :e{index}")
        expression = " ".join(part for part in (f"SET {', '.join(sets)}" if sets else "",
                                                f"REMOVE {', '.join(removes)}" if removes else "") if part)
        update: dict[str, Any] = {"TableName": self.users, "Key": {"user_uuid": {"S": change.user_uuid}},
                                  "UpdateExpression": expression, "ConditionExpression": " AND ".join(conditions),
                                  "ExpressionAttributeNames": names}
        if values:
            update["ExpressionAttributeValues"] = values
        return {"Update": update}


def _owner(item: dict[str, Any] | None) -> str | None:
    return item["user_uuid"]["S"] if item and "user_uuid" in item else None


__all__ = ["MAX_ENTRIES", "MAX_KEYS", "AccountChange", "Created", "ImportStore", "NewAccount", "Taken"]
