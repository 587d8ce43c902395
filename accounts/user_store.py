"""The users table and the unique-name claims table (SPEC §8): the one place that writes the
username and e-mail claims (accounts/email_store.py moves the e-mail claim with this key)."""
from __future__ import annotations

import unicodedata
from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from accounts.models import UserRecord
from common.database import dynamo, item_listing


# A users item that an account can use: it exists and no deletion has begun (SPEC §4).
_USABLE = "attribute_exists(user_uuid) AND attribute_not_exists(deleting_since)"
DELETION, DELETION_PENDING = "deletion", "pending"  # the sparse index's key: only accounts being deleted


class NameTaken(dynamo.StoreRefusal):
    """A username or e-mail claim already exists; `.which` is "username" or "email"."""

    def __init__(self, which: str) -> None:
        super().__init__(which)
        self.which = which


class ClaimMissing(dynamo.StoreRefusal):
    """No account holds the e-mail address that the new account was to be stored without."""


class WriteRefused(dynamo.StoreRefusal):
    """A caller's extra transaction entry failed its condition; `.index` counts from 0 in it."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def username_claim(username: str) -> str:
    # The same normalisation as at registration (SPEC §4: NFKC), then case-insensitive.
    return "username#" + unicodedata.normalize("NFKC", username).strip().casefold()


def email_claim(email: str) -> str:
    return "email#" + email.casefold()


# On the users item of an account that does not hold the address in its `email` (SPEC §4): one given
# at registration while another account held it. Only a verification removes it (email_store.py).
EMAIL_UNCLAIMED = "email_unclaimed"

# The users item's map of linked upstream identities (SPEC §16), {link_id: {provider, issuer, sub, email, linked_at}}.
IDENTITIES = "identities"

# Generations on the users item: a link records the one it was made in and is void once it moved on.
RESET_GENERATION = "reset_generation"


def generation_condition(attribute: str, generation: int) -> tuple[str, dict[str, Any]]:
    """A condition that `attribute` is still `generation` (0: never set), and its values."""
    if generation == 0:
        return f"(attribute_not_exists({attribute}) OR {attribute} = :generation)", {":generation": {"N": "0"}}
    return f"{attribute} = :generation", {":generation": {"N": str(generation)}}


class UserStore:
    def __init__(self, client: Any, *, users_table: str, claims_table: str) -> None:
        self.client, self.users, self.claims = client, users_table, claims_table

    def _claim_put(self, claim: str, user_uuid: str) -> dict[str, Any]:
        return {"Put": {"TableName": self.claims,
                        "Item": {"claim": {"S": claim}, "user_uuid": {"S": user_uuid}},
                        "ConditionExpression": "attribute_not_exists(claim)"}}

    def create(self, user: UserRecord, *, extra_writes: list[dict[str, Any]],
               extra_attributes: dict[str, Any] | None = None, holds_email: bool = True) -> None:
        """User (with `extra_attributes` of other domains on its item), username claim, e-mail
        claim and `extra_writes` in one transaction. NameTaken, or WriteRefused for an extra entry.
        `holds_email=False`: `user.email` is an address another account holds; the item is marked
        as not holding it and, in the claim's place, the transaction checks that the claim still
        exists (ClaimMissing if not), so the transaction has the same entries either way. A user without
        an address (`user.email` "": an upstream identity that gave none) has no e-mail entry."""
        given = bool(user.email)
        attributes = {**asdict(user), **(extra_attributes or {}),
                      **({} if holds_email or not given else {EMAIL_UNCLAIMED: True})}
        email_entry = (self._claim_put(email_claim(user.email), user.user_uuid) if holds_email
                       else self._claim_check(email_claim(user.email)))
        items = [
            {"Put": {"TableName": self.users, "Item": dynamo.to_item(attributes),
                     "ConditionExpression": "attribute_not_exists(user_uuid)"}},
            self._claim_put(username_claim(user.username), user.user_uuid),
            *([email_entry] if given else []),
            *extra_writes,
        ]
        extras = 3 if given else 2  # where the extra entries begin
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise NameTaken("username") from None
            if given and len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                raise (NameTaken("email") if holds_email else ClaimMissing()) from None
            if "ConditionalCheckFailed" in codes[extras:]:
                raise WriteRefused(codes.index("ConditionalCheckFailed", extras) - extras) from None
            raise

    def _claim_check(self, claim: str) -> dict[str, Any]:
        return {"ConditionCheck": {"TableName": self.claims, "Key": {"claim": {"S": claim}},
                                   "ConditionExpression": "attribute_exists(claim)"}}

    @staticmethod
    def user_key(user_uuid: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}}

    @staticmethod
    def username_key(username: str) -> dict[str, Any]:
        return {"claim": {"S": username_claim(username)}}

    @staticmethod
    def user_from_item(item: dict[str, Any] | None) -> UserRecord | None:
        data = dynamo.from_item(item)
        if data is None:
            return None
        # A deleted account's tombstone keeps none of the personal attributes.
        personal = {"username": "", "email": "", "password_hash": "", "created_at": ""}
        fields = {k: v for k, v in data.items() if k in UserRecord.__dataclass_fields__}
        if data.get(EMAIL_UNCLAIMED):  # an address it does not hold: never where its mail goes
            fields.update(email="", unclaimed_email=data.get("email", ""))
        return UserRecord(**{**personal, **fields})

    @staticmethod
    def owner_from_claim_item(item: dict[str, Any] | None) -> str | None:
        return item["user_uuid"]["S"] if item else None

    def get(self, user_uuid: str) -> UserRecord | None:
        item = self.client.get_item(TableName=self.users, Key=self.user_key(user_uuid), ConsistentRead=True).get("Item")
        return self.user_from_item(item)

    def item(self, user_uuid: str) -> dict[str, Any] | None:
        """The user's item as stored (a person's data export)."""
        return dynamo.from_item(self.client.get_item(TableName=self.users, Key=self.user_key(user_uuid),
                                                     ConsistentRead=True).get("Item"))

    def claim_items(self, claims: list[str]) -> list[dict[str, Any]]:
        """The items of `claims` that exist, as stored (a person's data export)."""
        return item_listing.items_of_keys(self.client, self.claims, [{"claim": {"S": c}} for c in claims])

    def find_uuid_by_username(self, username: str) -> str | None:
        item = self.client.get_item(TableName=self.claims, Key=self.username_key(username),
                                    ConsistentRead=True).get("Item")
        return self.owner_from_claim_item(item)

    def _update_existing(self, user_uuid: str, expression: str, values: dict[str, Any] | None = None, *,
                         condition: str | None = None, names: dict[str, str] | None = None) -> bool:
        """Apply `expression` to an existing user; False if there is no such user (or it is being deleted)."""
        args: dict[str, Any] = {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                                "UpdateExpression": expression,
                                "ConditionExpression": f"{_USABLE} AND {condition}" if condition else _USABLE}
        if values:
            args["ExpressionAttributeValues"] = values
        if names:
            args["ExpressionAttributeNames"] = names
        try:
            self.client.update_item(**args)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def set_locked(self, user_uuid: str, locked: bool) -> bool:
        if locked:
            return self._update_existing(user_uuid, "SET locked = :true", {":true": {"BOOL": True}})
        return self._update_existing(user_uuid, "REMOVE locked")

    def set_max_concurrent_devices(self, user_uuid: str, limit: int | None) -> bool:
        """The user's own concurrent-device limit; None removes it (the configured default applies)."""
        if limit is None:
            return self._update_existing(user_uuid, "REMOVE max_concurrent_devices")
        return self._update_existing(user_uuid, "SET max_concurrent_devices = :n", {":n": {"N": str(limit)}})

    def not_locked_check(self, user_uuid: str) -> dict[str, Any]:
        """A transaction entry that fails if the user is locked, being deleted or gone."""
        return {"ConditionCheck": {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                                   "ConditionExpression":
                                       f"{_USABLE} AND (attribute_not_exists(locked) OR locked = :false)",
                                   "ExpressionAttributeValues": {":false": {"BOOL": False}}}}

    def usable_check(self, user_uuid: str) -> dict[str, Any]:
        """A transaction entry that fails if the user is being deleted or gone."""
        return {"ConditionCheck": {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                                   "ConditionExpression": _USABLE}}

    def password_upgrade_item(self, user_uuid: str, *, verified_hash: str, password_hash: str) -> dict[str, Any]:
        """A transaction entry in a sign-in's own transaction, in place of not_locked_check: refused like it
        (the user locked, being deleted or gone), and unless `verified_hash` is still the stored hash (a
        change or a reset came first); else the hash becomes `password_hash` (an imported one replaced by
        citylogin's Argon2id, SPEC §17)."""
        return {"Update": {"TableName": self.users, "Key": self.user_key(user_uuid),
                           "UpdateExpression": "SET password_hash = :h",
                           "ConditionExpression": f"{_USABLE} AND (attribute_not_exists(locked) OR locked = :false) "
                                                  "AND password_hash = :verified",
                           "ExpressionAttributeValues": {":false": {"BOOL": False}, ":h": {"S": password_hash},
                                                         ":verified": {"S": verified_hash}}}}

    def mark_email_verified(self, user_uuid: str, email: str) -> bool:
        """Mark the address verified if it is still `email` and the account holds it; False if not."""
        return self._update_existing(user_uuid, "SET #v = :t", {":t": {"BOOL": True}, ":e": {"S": email}},
                                     condition="#m = :e AND attribute_not_exists(#u)",
                                     names={"#v": "email_verified", "#m": "email", "#u": EMAIL_UNCLAIMED})

    def rehash_password(self, user_uuid: str, verified_hash: str, password_hash: str) -> bool:
        """Set `password_hash` if `verified_hash` is still the stored hash; False if not (a change,
        a reset or the account's deletion came first)."""
        return self._update_existing(user_uuid, "SET password_hash = :h",
                                     {":h": {"S": password_hash}, ":verified": {"S": verified_hash}},
                                     condition="password_hash = :verified")

    # --- linked upstream identities (SPEC §16): the map on the users item ------------------

    def identities_ready(self, user_uuid: str) -> bool:
        """Give the item an empty `identities` map unless it has one (a nested SET needs its map);
        False if there is no such user (or it is being deleted)."""
        return self._update_existing(user_uuid, f"SET {IDENTITIES} = if_not_exists({IDENTITIES}, :empty)",
                                     {":empty": {"M": {}}})

    def identity_added_item(self, user_uuid: str, link_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        """The entry `link_id` put into the user's map, for a transaction: refused if the user is gone
        or being deleted, or the map is missing (identities_ready first)."""
        return {"Update": {"TableName": self.users, "Key": self.user_key(user_uuid),
                           "UpdateExpression": f"SET {IDENTITIES}.#l = :entry",
                           "ConditionExpression": f"{_USABLE} AND attribute_exists({IDENTITIES})",
                           "ExpressionAttributeNames": {"#l": link_id},
                           "ExpressionAttributeValues": {":entry": {"M": dynamo.to_item(entry)}}}}

    def identity_removed_item(self, user_uuid: str, link_id: str, *, keeps: str) -> dict[str, Any]:
        """The entry `link_id` taken out of the user's map, for a transaction, only while it is there
        and the account keeps a way in: `keeps` "password" (its hash is not ""), "identity" (another
        entry stays) or "passkey" (the caller's transaction checks that one). Refused otherwise, with the
        item as it was (ReturnValuesOnConditionCheckFailure), so the refusal can say which."""
        condition = f"{_USABLE} AND attribute_exists({IDENTITIES}.#l)"
        values: dict[str, Any] = {}
        if keeps == "password":
            condition += " AND password_hash <> :none"
            values[":none"] = {"S": ""}
        elif keeps == "identity":
            condition += f" AND size({IDENTITIES}) > :one"
            values[":one"] = {"N": "1"}
        update: dict[str, Any] = {"TableName": self.users, "Key": self.user_key(user_uuid),
                                  "UpdateExpression": f"REMOVE {IDENTITIES}.#l", "ConditionExpression": condition,
                                  "ExpressionAttributeNames": {"#l": link_id},
                                  "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        if values:
            update["ExpressionAttributeValues"] = values
        return {"Update": update}

    def way_in_kept_item(self, user_uuid: str, *, keeps: str) -> dict[str, Any]:
        """A check, for a transaction that takes another way in away (a passkey's removal), that the account
        still has `keeps` when it commits: "password" (its hash is not "") or "identity" (a linked one)."""
        condition, values = ("password_hash <> :none", {":none": {"S": ""}}) if keeps == "password" else \
            (f"size({IDENTITIES}) > :zero", {":zero": {"N": "0"}})
        return {"ConditionCheck": {"TableName": self.users, "Key": self.user_key(user_uuid),
                                   "ConditionExpression": f"{_USABLE} AND {condition}",
                                   "ExpressionAttributeValues": values}}

    def set_first_password(self, user_uuid: str, password_hash: str) -> bool:
        """Set the password of an account that has none (password_hash ""); False if it has one by now,
        or is gone: a first password never overwrites one set meanwhile."""
        return self._update_existing(user_uuid, f"SET password_hash = :h, {RESET_GENERATION} = "
                                                f"if_not_exists({RESET_GENERATION}, :zero) + :one",
                                     {":h": {"S": password_hash}, ":none": {"S": ""}, ":zero": {"N": "0"},
                                      ":one": {"N": "1"}}, condition="password_hash = :none")

    # --- password reset and account deletion ----------------------------------------------

    def find_uuid_by_email(self, email: str) -> str | None:
        """The account holding `email`'s claim; an account that was only given it has none."""
        item = self.client.get_item(TableName=self.claims, Key={"claim": {"S": email_claim(email)}},
                                    ConsistentRead=True).get("Item")
        return item["user_uuid"]["S"] if item else None

    def replace_password_hash(self, user_uuid: str, password_hash: str) -> bool:
        """Set a new password hash and void every outstanding reset link (the reset generation
        moves on); False if there is no such user (or it is being deleted)."""
        return self._update_existing(user_uuid, f"SET password_hash = :h, {RESET_GENERATION} = "
                                                f"if_not_exists({RESET_GENERATION}, :zero) + :one",
                                     {":h": {"S": password_hash}, ":zero": {"N": "0"}, ":one": {"N": "1"}})

    def reset_password(self, user_uuid: str, password_hash: str, *, reset_generation: int,
                       token_use: dict[str, Any]) -> bool:
        """One transaction: `token_use` (the entry that uses up a reset link) and the new hash, if
        the reset generation is still the link's `reset_generation` (no reset or change since); it
        moves on, voiding every other link. False if either is refused."""
        condition, values = generation_condition(RESET_GENERATION, reset_generation)
        update = {"Update": {"TableName": self.users, "Key": self.user_key(user_uuid),
                             "UpdateExpression": f"SET password_hash = :h, {RESET_GENERATION} = :next",
                             "ConditionExpression": f"{_USABLE} AND {condition}",
                             "ExpressionAttributeValues": {**values, ":h": {"S": password_hash},
                                                           ":next": {"N": str(reset_generation + 1)}}}}
        try:
            self.client.transact_write_items(TransactItems=[token_use, update])
        except ClientError as exc:
            if "ConditionalCheckFailed" in dynamo.cancellation_codes(exc):
                return False
            raise
        return True

    def _claim_delete(self, claim: str, user_uuid: str) -> dict[str, Any]:
        # Only this user's claim: never one that someone else took meanwhile.
        return {"Delete": {"TableName": self.claims, "Key": {"claim": {"S": claim}},
                           "ConditionExpression": "attribute_not_exists(claim) OR user_uuid = :u",
                           "ExpressionAttributeValues": {":u": {"S": user_uuid}}}}

    def deletion_start(self, user_uuid: str, *, since: int) -> dict[str, Any]:
        """The update that puts the account into the deleting state (and into the sparse index the
        sweeper reads), conditional on its not being in it: accounts/role_store.py writes it, conditional
        on the admin role too (the count of admins moves with it)."""
        return {"TableName": self.users, "Key": self.user_key(user_uuid), "ConditionExpression": _USABLE,
                "UpdateExpression": "SET #d = :pending, deleting_since = :since",
                "ExpressionAttributeNames": {"#d": DELETION},
                "ExpressionAttributeValues": {":pending": {"S": DELETION_PENDING}, ":since": {"N": str(since)}}}

    def release_names(self, user: UserRecord) -> None:
        """Free the username and e-mail claims of `user` (only while they are still its own); an
        account that holds no address has only its username's."""
        claims = [username_claim(user.username)] + ([email_claim(user.email)] if user.email else [])
        self.client.transact_write_items(TransactItems=[self._claim_delete(c, user.user_uuid) for c in claims])

    def leave_tombstone(self, user: UserRecord, *, finished: int, expires: int) -> None:
        """Replace the users item of an account being deleted by its tombstone: the deletion's
        state only, no personal attribute (a TTL removes it if no sweeper does)."""
        item = {"user_uuid": user.user_uuid, DELETION: DELETION_PENDING, "deleting_since": user.deleting_since,
                "deletion_finished": finished, dynamo.TTL_ATTRIBUTE: expires}
        try:
            self.client.put_item(TableName=self.users, Item=dynamo.to_item(item),
                                 ConditionExpression="attribute_exists(deleting_since)")
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):  # removed meanwhile by a sweeper: done
                raise

    def remove_tombstone(self, user_uuid: str) -> None:
        try:
            self.client.delete_item(TableName=self.users, Key=self.user_key(user_uuid),
                                    ConditionExpression="attribute_exists(deletion_finished)")
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise

    def being_deleted(self, *, since_before: int) -> list[str]:
        """The uuids of the accounts whose deletion began before `since_before`: a Query of the
        sparse deletion index (eventually consistent; the sweeper reads each item again)."""
        uuids, start = [], None
        while True:
            args: dict[str, Any] = {
                "TableName": self.users, "IndexName": dynamo.USERS_BEING_DELETED,
                "KeyConditionExpression": "#d = :pending AND deleting_since < :before",
                "ExpressionAttributeNames": {"#d": DELETION},
                "ExpressionAttributeValues": {":pending": {"S": DELETION_PENDING}, ":before": {"N": str(since_before)}}}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            uuids += [item["user_uuid"]["S"] for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return uuids
