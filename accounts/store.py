"""Account attributes of the users table: the recovery codes (SPEC §4, §8).

The users item is created by UserStore (user_store.py); this store owns the recovery attributes
on it and reads the profile. The code digests are a string set on the users item, so that a
redemption is one conditional write and the count needs no Scan."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from accounts.email_store import LINK_GENERATION
from accounts.models import AccountRecord
from accounts.user_store import EMAIL_UNCLAIMED
from common.database import dynamo

DEFAULT_LOCALE = "en"  # an account that never chose one
DIGESTS = "recovery_code_digests"
GENERATION = "recovery_generation"
_NAMES = {"#d": DIGESTS, "#g": GENERATION}


class CodesChanged(dynamo.StoreRefusal):
    """The recovery codes were replaced meanwhile (or the account is gone)."""


class AccountStore:
    def __init__(self, client: Any, *, users_table: str) -> None:
        self.client, self.users = client, users_table

    @staticmethod
    def _key(user_uuid: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}}

    @staticmethod
    def initial_attributes(digests: list[str]) -> dict[str, Any]:
        """Attributes for the users item as registration creates it (generation 1)."""
        return {DIGESTS: set(digests), GENERATION: 1}

    def get(self, user_uuid: str) -> AccountRecord | None:
        return self.from_item(self.client.get_item(TableName=self.users, Key=self._key(user_uuid),
                                                   ConsistentRead=True).get("Item"))

    @staticmethod
    def key(user_uuid: str) -> dict[str, Any]:
        return AccountStore._key(user_uuid)

    @staticmethod
    def from_item(item: dict[str, Any] | None) -> AccountRecord | None:
        data = dynamo.from_item(item)
        if data is None or "deleting_since" in data:  # an account being deleted shows nothing
            return None
        return AccountRecord(
            user_uuid=data["user_uuid"], username=data["username"], email=data["email"],
            created_at=data["created_at"], recovery_codes_left=len(data.get(DIGESTS, ())),
            recovery_generation=data.get(GENERATION, 0), email_verified=bool(data.get("email_verified", False)),
            locale=data.get("locale", DEFAULT_LOCALE), max_concurrent_devices=data.get("max_concurrent_devices"),
            email_link_generation=data.get(LINK_GENERATION, 0), roles=sorted(data.get("roles", ())),
            email_held=not data.get(EMAIL_UNCLAIMED, False), has_password=bool(data.get("password_hash")))

    def shown_check_item(self, user_uuid: str, *, username: str | None = None, locale: str | None = None,
                         usable_email: str | None = None, email_withheld: bool = False) -> dict[str, Any]:
        """A TransactWriteItems ConditionCheck that the account (not being deleted) still has `username` and
        `locale` (each when given), still holds and has verified `usable_email` (when given), or still has no
        address it both holds and has verified (`email_withheld`), as from_item reads them; a refusal comes
        with the item as it is."""
        names: dict[str, str] = {"#x": "deleting_since"}
        values: dict[str, dict[str, Any]] = {}
        condition = ["attribute_exists(user_uuid)", "attribute_not_exists(#x)"]
        if username is not None:
            names["#n"], values[":n"] = "username", {"S": username}
            condition.append("#n = :n")
        if locale is not None:
            names["#l"], values[":l"] = "locale", {"S": locale}
            condition.append("(#l = :l OR attribute_not_exists(#l))" if locale == DEFAULT_LOCALE else "#l = :l")
        if usable_email is not None or email_withheld:
            names["#v"], names["#u"], values[":t"] = "email_verified", EMAIL_UNCLAIMED, {"BOOL": True}
            usable = "(#v = :t AND NOT #u = :t)"  # verified, and not an address another account holds
            if usable_email is not None:
                names["#e"], values[":e"] = "email", {"S": usable_email}
                condition.append(f"#e = :e AND {usable}")
            else:
                condition.append(f"NOT {usable}")
        check = {"TableName": self.users, "Key": self._key(user_uuid), "ConditionExpression": " AND ".join(condition),
                 "ExpressionAttributeNames": names, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        return {"ConditionCheck": check | ({"ExpressionAttributeValues": values} if values else {})}

    def replace_codes(self, user_uuid: str, digests: list[str], *, expected_generation: int) -> None:
        """Set a new set of digests (the old codes void) if the generation is still the one read."""
        condition = "attribute_exists(user_uuid) AND " + (
            "#g = :g" if expected_generation else "attribute_not_exists(#g)")
        values: dict[str, Any] = {":d": {"SS": digests}, ":next": {"N": str(expected_generation + 1)}}
        if expected_generation:
            values[":g"] = {"N": str(expected_generation)}
        try:
            self.client.update_item(TableName=self.users, Key=self._key(user_uuid),
                                    UpdateExpression="SET #d = :d, #g = :next", ConditionExpression=condition,
                                    ExpressionAttributeNames=_NAMES, ExpressionAttributeValues=values)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise CodesChanged() from None
            raise

    def redeem_item(self, user_uuid: str, digest: str) -> dict[str, Any]:
        """A TransactWriteItems entry that removes one code digest, refused unless it is there
        (of parallel redemptions of one code exactly one passes) and no deletion has begun."""
        return {"Update": {"TableName": self.users, "Key": self._key(user_uuid),
                           "UpdateExpression": "DELETE #d :set",
                           "ConditionExpression": "contains(#d, :digest) AND attribute_not_exists(deleting_since)",
                           "ExpressionAttributeNames": {"#d": DIGESTS},
                           "ExpressionAttributeValues": {":set": {"SS": [digest]}, ":digest": {"S": digest}}}}

    # --- profile settings (PATCH /account) ---------------------------------------------------

    def set_locale(self, user_uuid: str, locale: str) -> bool:
        """Store the locale messages use; False if there is no such account."""
        try:
            self.client.update_item(TableName=self.users, Key=self._key(user_uuid), UpdateExpression="SET #l = :l",
                                    ConditionExpression="attribute_exists(user_uuid)",
                                    ExpressionAttributeNames={"#l": "locale"},
                                    ExpressionAttributeValues={":l": {"S": locale}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True
