"""Operator roles on the users table (SPEC §15), and the count of accounts holding the admin role on the
claims table, moved in the same transaction as the role or as the write that starts an admin's account
deletion, so that the last admin can never lose it however many operators (or deleting admins) race."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo

ADMIN = "admin"
# The claims table's item that counts the admins. `seeded` says the count was once taken from the users
# table itself (an account made admin before the count was kept is in it); until then no admin loses the role.
ADMINS_CLAIM = "roles#admin"
HOLDERS, SEEDED = "holders", "seeded"
_USABLE = "attribute_exists(user_uuid) AND attribute_not_exists(deleting_since)"  # as accounts/user_store.py
_FAILED = "ConditionalCheckFailed"
_HOLDS_ADMIN = "contains(#r, :admin)"
# A deletion's start whose reading of the admin role a grant or a revocation overtook reads it again, this often.
START_ATTEMPTS = 3


class LastAdmin(dynamo.StoreRefusal):
    """Taking the admin role away would leave no account holding it (or the admins were never counted)."""


class RoleMoving(dynamo.StoreRefusal):
    """The account's admin role changed under every attempt to start its deletion: try again."""


class RoleStore:
    def __init__(self, client: Any, *, users_table: str, claims_table: str) -> None:
        self.client, self.users, self.claims = client, users_table, claims_table

    def set_role(self, user_uuid: str, role: str, *, granted: bool) -> bool:
        """Add `role` to the account's operator roles (a string set) or take it away; idempotent. False if
        there is no such account (or it is being deleted); LastAdmin if it is the last admin's admin role."""
        if role != ADMIN:
            return self._set(user_uuid, role, granted=granted, condition=_USABLE)
        held = "contains(#r, :r)"
        role_change = self._set_item(user_uuid, role, granted=granted,
                                     condition=f"{_USABLE} AND " + (f"NOT {held}" if granted else held))
        try:
            self.client.transact_write_items(TransactItems=[role_change, self._count_item(granted=granted)])
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes and codes[0] == _FAILED:  # nothing to change (or no such account): no count moves
                return self._usable(user_uuid)
            if len(codes) > 1 and codes[1] == _FAILED:
                raise LastAdmin() from None
            raise
        return True

    def seed_admin_count(self) -> int:
        """Count the admins once from the users table (a Scan: `citylogin admin` only, never a request) unless
        they are counted already; the count as it stands. A grant meanwhile may be missed (the count is then
        low, which refuses too much, never too little); a revocation waits for the count."""
        item = self._count()
        if item.get(SEEDED):
            return int(item.get(HOLDERS, 0))
        admins = sum(1 for page in self.client.get_paginator("scan").paginate(
            TableName=self.users, ConsistentRead=True, FilterExpression=f"{_USABLE} AND contains(#r, :r)",
            ExpressionAttributeNames={"#r": "roles"}, ExpressionAttributeValues={":r": {"S": ADMIN}},
            ProjectionExpression="user_uuid") for _ in page["Items"])
        try:
            self.client.update_item(
                TableName=self.claims, Key=_count_key(), ConditionExpression=f"attribute_not_exists({SEEDED})",
                UpdateExpression=f"SET {HOLDERS} = :n, {SEEDED} = :true",
                ExpressionAttributeValues={":n": {"N": str(admins)}, ":true": {"BOOL": True}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
            return int(self._count().get(HOLDERS, 0))  # another command seeded it first
        return admins

    def begin_deletion(self, user_uuid: str, *, start: dict[str, Any], holds_admin: bool) -> bool:
        """Write `start` (accounts/user_store.py: the update that puts the account into the deleting state)
        on condition that the account holds the admin role as `holds_admin` says, read again when a grant
        or a revocation came first. An admin's deletion lowers the count of admins in the same transaction,
        so the count never keeps an admin that is gone. False if the account is gone or already being
        deleted; LastAdmin if it is the last admin counted (or the admins were never counted); RoleMoving
        if the role changed under every attempt."""
        for _ in range(START_ATTEMPTS):
            try:
                return self._start_deletion(start, holds_admin=holds_admin)
            except _RoleMoved:
                held = self._holds_admin(user_uuid)
                if held is None:
                    return False
                holds_admin = held
        raise RoleMoving()

    def _start_deletion(self, start: dict[str, Any], *, holds_admin: bool) -> bool:
        update = {**start, "ConditionExpression": f"({start['ConditionExpression']}) AND "
                                                  + (_HOLDS_ADMIN if holds_admin else f"NOT {_HOLDS_ADMIN}"),
                  "ExpressionAttributeNames": {**start.get("ExpressionAttributeNames", {}), "#r": "roles"},
                  "ExpressionAttributeValues": {**start.get("ExpressionAttributeValues", {}), ":admin": {"S": ADMIN}}}
        try:
            if holds_admin:
                self.client.transact_write_items(TransactItems=[{"Update": update}, self._count_item(granted=False)])
            else:
                self.client.update_item(**update)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if dynamo.is_condition_failure(exc) or codes[:1] == [_FAILED] or "TransactionConflict" in codes:
                raise _RoleMoved() from None  # gone, being deleted, the role changed, or another write raced
            if codes[1:2] == [_FAILED]:
                raise LastAdmin() from None
            raise
        return True

    def _holds_admin(self, user_uuid: str) -> bool | None:
        """Whether the account holds the admin role (a strongly consistent read); None if it is gone or being
        deleted."""
        item = self.client.get_item(TableName=self.users, Key={"user_uuid": {"S": user_uuid}}, ConsistentRead=True,
                                    ProjectionExpression="user_uuid, deleting_since, #r",
                                    ExpressionAttributeNames={"#r": "roles"}).get("Item")
        if item is None or "deleting_since" in item:
            return None
        return ADMIN in item.get("roles", {}).get("SS", [])

    def _count(self) -> dict[str, Any]:
        item = self.client.get_item(TableName=self.claims, Key=_count_key(), ConsistentRead=True).get("Item")
        return dynamo.from_item(item) or {}

    def _count_item(self, *, granted: bool) -> dict[str, Any]:
        update: dict[str, Any] = {"TableName": self.claims, "Key": _count_key(),
                                  "UpdateExpression": f"ADD {HOLDERS} :step",
                                  "ExpressionAttributeValues": {":step": {"N": "1" if granted else "-1"}}}
        if not granted:  # one admin stays, counted from the users table itself
            update["ConditionExpression"] = f"attribute_exists({SEEDED}) AND {HOLDERS} > :one"
            update["ExpressionAttributeValues"][":one"] = {"N": "1"}
        return {"Update": update}

    def _set_item(self, user_uuid: str, role: str, *, granted: bool, condition: str) -> dict[str, Any]:
        return {"Update": {"TableName": self.users, "Key": {"user_uuid": {"S": user_uuid}},
                           "UpdateExpression": f"{'ADD' if granted else 'DELETE'} #r :s",
                           "ConditionExpression": condition, "ExpressionAttributeNames": {"#r": "roles"},
                           "ExpressionAttributeValues": {":s": {"SS": [role]}, ":r": {"S": role}}}}

    def _set(self, user_uuid: str, role: str, *, granted: bool, condition: str) -> bool:
        update = self._set_item(user_uuid, role, granted=granted, condition=condition)["Update"]
        del update["ExpressionAttributeValues"][":r"]
        try:
            self.client.update_item(**update)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def _usable(self, user_uuid: str) -> bool:
        item = self.client.get_item(TableName=self.users, Key={"user_uuid": {"S": user_uuid}}, ConsistentRead=True,
                                    ProjectionExpression="user_uuid, deleting_since").get("Item")
        return item is not None and "deleting_since" not in item


def _count_key() -> dict[str, Any]:
    return {"claim": {"S": ADMINS_CLAIM}}


class _RoleMoved(dynamo.StoreRefusal):
    """A deletion's start found the account not as read (its role, its state) or raced another write."""
