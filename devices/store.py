"""The devices table: key (user_uuid, device_id), GSI on fingerprint (SPEC §8)."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, overload

from botocore.exceptions import ClientError

from common.database import dynamo, item_listing
from devices.models import (DEFAULT_DEVICE_CLASS, DEVICE_STATUS_ACTIVE, DEVICE_STATUS_REVOKED, DeviceRecord,
                            RevokedCertificateRecord)


# One item per user, beside its devices, counts the registered ones (CITYLOGIN_MAX_REGISTERED_DEVICES).
COUNTER_ID = "#registered"
# The CRL's entries share one partition, so the whole list is one Query (no user_uuid is "#crl"):
# range key "serial:<hex>", TTL at the certificate's own expiry.
CRL_PARTITION = "#crl"


class DeviceStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    @overload
    @staticmethod
    def _record(item: dict[str, Any]) -> DeviceRecord: ...
    @overload
    @staticmethod
    def _record(item: dict[str, Any] | None) -> DeviceRecord | None: ...
    @staticmethod
    def _record(item: dict[str, Any] | None) -> DeviceRecord | None:
        data = dynamo.from_item(item)
        if data is None:
            return None
        fields = DeviceRecord.__dataclass_fields__
        return DeviceRecord(**{k: v for k, v in data.items() if k in fields})

    def owner_of(self, device_id: str) -> str | None:
        """The user_uuid of the device with this id (device ids are unique), from the id index."""
        response = self.client.query(TableName=self.table, IndexName=dynamo.DEVICES_BY_ID, Limit=2,
                                     KeyConditionExpression="device_id = :d",
                                     ExpressionAttributeValues={":d": {"S": device_id}})
        owners = [item["user_uuid"]["S"] for item in response["Items"] if not item["user_uuid"]["S"].startswith("#")]
        return owners[0] if owners else None

    def put_new_item(self, record: DeviceRecord) -> dict[str, Any]:
        """A TransactWriteItems entry that creates `record` if its id is new."""
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(asdict(record)),
                        "ConditionExpression": "attribute_not_exists(device_id)"}}

    def take_slot_item(self, user_uuid: str, *, limit: int) -> dict[str, Any]:
        """A TransactWriteItems entry counting one more registered device, refused at `limit`."""
        return {"Update": {"TableName": self.table, "Key": self.key(user_uuid, COUNTER_ID),
                           "UpdateExpression": "ADD registered :one",
                           "ConditionExpression": "attribute_not_exists(registered) OR registered < :limit",
                           "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}}}}

    def registered_count(self, user_uuid: str) -> int:
        """How many registered devices the user's counter holds (read strongly consistent)."""
        item = self.client.get_item(TableName=self.table, Key=self.key(user_uuid, COUNTER_ID), ConsistentRead=True,
                                    ProjectionExpression="registered").get("Item") or {}
        return int(item.get("registered", {}).get("N", "0"))

    def no_device_check(self, user_uuid: str) -> dict[str, Any]:
        """A TransactWriteItems entry refused once the user has a registered device."""
        return {"ConditionCheck": {"TableName": self.table, "Key": self.key(user_uuid, COUNTER_ID),
                                   "ConditionExpression": "attribute_not_exists(registered) OR registered < :one",
                                   "ExpressionAttributeValues": {":one": {"N": "1"}}}}

    def release_slot_item(self, user_uuid: str, *, keep_at_least: int) -> dict[str, Any]:
        """A TransactWriteItems entry counting one device less, refused if fewer than
        `keep_at_least` would remain."""
        return {"Update": {"TableName": self.table, "Key": self.key(user_uuid, COUNTER_ID),
                           "UpdateExpression": "ADD registered :minus", "ConditionExpression": "registered > :keep",
                           "ExpressionAttributeValues": {":minus": {"N": "-1"}, ":keep": {"N": str(keep_at_least)}}}}

    def recount_slots_item(self, user_uuid: str, *, expected: int, count: int) -> dict[str, Any]:
        """A TransactWriteItems entry setting the count to `count`, refused unless it is `expected`
        (the devices read meanwhile are still all there are)."""
        return {"Update": {"TableName": self.table, "Key": self.key(user_uuid, COUNTER_ID),
                           "UpdateExpression": "SET registered = :count",
                           "ConditionExpression": "registered = :expected",
                           "ExpressionAttributeValues": {":count": {"N": str(count)},
                                                         ":expected": {"N": str(expected)}}}}

    @staticmethod
    def key(user_uuid: str, device_id: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}, "device_id": {"S": device_id}}

    @classmethod
    def record_from_item(cls, item: dict[str, Any] | None) -> DeviceRecord | None:
        return cls._record(item)

    def get(self, *, user_uuid: str, device_id: str) -> DeviceRecord | None:
        response = self.client.get_item(TableName=self.table, Key=self.key(user_uuid, device_id),
                                        ConsistentRead=True)
        return self._record(response.get("Item"))

    def list_for_user(self, user_uuid: str) -> list[DeviceRecord]:
        """All devices of one user, strongly consistent (a user has at most a few dozen)."""
        records, start = [], None
        while True:
            args: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                    "KeyConditionExpression": "#u = :u",
                                    "ExpressionAttributeNames": {"#u": "user_uuid"},
                                    "ExpressionAttributeValues": {":u": {"S": user_uuid}}}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            records += [self._record(item) for item in page["Items"] if item["device_id"]["S"] != COUNTER_ID]
            start = page.get("LastEvaluatedKey")
            if not start:
                return records

    def last_login_update(self, record: DeviceRecord, *, at: str) -> dict[str, Any]:
        """A TransactWriteItems entry stamping the device's last login; it fails the whole
        transaction if the device was unbound, its certificate renewed or its class changed
        meanwhile (so no session outlives an unbind, a superseded certificate cannot slip in, and
        a session never counts under a class its device no longer has)."""
        return {"Update": {"TableName": self.table, "Key": self.key(record.user_uuid, record.device_id),
                           "UpdateExpression": "SET last_login_at = :at",
                           "ConditionExpression": "#s = :active AND fingerprint = :fp AND " + self._class_is(record),
                           "ExpressionAttributeNames": {"#s": "status"},
                           "ExpressionAttributeValues": {":at": {"S": at}, ":active": {"S": DEVICE_STATUS_ACTIVE},
                                                         ":fp": {"S": record.fingerprint},
                                                         ":class": {"S": record.device_class}}}}

    @staticmethod
    def _class_is(record: DeviceRecord) -> str:
        # Devices stored before classes existed have no attribute and count as the default.
        if record.device_class == DEFAULT_DEVICE_CLASS:
            return "(attribute_not_exists(device_class) OR device_class = :class)"
        return "device_class = :class"

    def rename(self, *, user_uuid: str, device_id: str, device_name: str) -> bool:
        """Set the name; False if the user has no such device."""
        try:
            self.client.update_item(
                TableName=self.table, Key=self.key(user_uuid, device_id), UpdateExpression="SET device_name = :n",
                ConditionExpression="attribute_exists(device_id)", ExpressionAttributeValues={":n": {"S": device_name}})
            return True
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise

    def relabel_item(self, *, user_uuid: str, device_id: str, device_name: str, device_class: str) -> dict[str, Any]:
        """A TransactWriteItems entry setting the name and the class of an existing device."""
        return {"Update": {"TableName": self.table, "Key": self.key(user_uuid, device_id),
                           "UpdateExpression": "SET device_name = :n, device_class = :c",
                           "ConditionExpression": "attribute_exists(device_id)",
                           "ExpressionAttributeValues": {":n": {"S": device_name}, ":c": {"S": device_class}}}}

    def revoke_item(self, *, user_uuid: str, device_id: str, at: str, fingerprint: str) -> dict[str, Any]:
        """Revoke the device if it is active and still holds the certificate `fingerprint`."""
        return {"Update": {"TableName": self.table, "Key": self.key(user_uuid, device_id),
                           "UpdateExpression": "SET #s = :revoked, revoked_at = :at",
                           "ConditionExpression": "#s = :active AND fingerprint = :fp",
                           "ExpressionAttributeNames": {"#s": "status"},
                           "ExpressionAttributeValues": {":revoked": {"S": DEVICE_STATUS_REVOKED},
                                                         ":active": {"S": DEVICE_STATUS_ACTIVE}, ":at": {"S": at},
                                                         ":fp": {"S": fingerprint}}}}

    def revoke(self, *, record: DeviceRecord, at: str, keep_at_least: int,
               revoked_certificate: RevokedCertificateRecord) -> None:
        """Revoke the device, free its slot and list its certificate in the CRL, unless fewer than
        `keep_at_least` would remain (LastDeviceRefused), or the device is no longer active with this
        certificate (DeviceChanged: revoked before, or renewed since `record` was read)."""
        try:
            self.client.transact_write_items(TransactItems=[
                self.revoke_item(user_uuid=record.user_uuid, device_id=record.device_id, at=at,
                                 fingerprint=record.fingerprint),
                self.release_slot_item(record.user_uuid, keep_at_least=keep_at_least),
                self.revoked_certificate_put(revoked_certificate)])
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise DeviceChanged() from None
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise LastDeviceRefused() from None
            raise

    def renew(self, *, record: DeviceRecord, renewed: DeviceRecord, superseded: RevokedCertificateRecord,
              extra_writes: list[dict[str, Any]]) -> None:
        """Give the device its new certificate and list the old one in the CRL, with `extra_writes`,
        in one transaction; DeviceChanged if the device is no longer active with `record`'s
        certificate (so of parallel renewals exactly one wins), WriteRefused(i) if extra entry i was
        refused."""
        update = {"Update": {
            "TableName": self.table, "Key": self.key(record.user_uuid, record.device_id),
            "UpdateExpression": "SET fingerprint = :new_fp, cert_pem = :pem, cert_expires_at = :exp, key_type = :kt",
            "ConditionExpression": "#s = :active AND fingerprint = :old_fp",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":new_fp": {"S": renewed.fingerprint}, ":pem": {"S": renewed.cert_pem},
                ":exp": {"S": renewed.cert_expires_at}, ":kt": {"S": renewed.key_type},
                ":active": {"S": DEVICE_STATUS_ACTIVE}, ":old_fp": {"S": record.fingerprint}}}}
        try:
            self.client.transact_write_items(TransactItems=[update, self.revoked_certificate_put(superseded),
                                                            *extra_writes])
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise DeviceChanged() from None
            if "ConditionalCheckFailed" in codes[2:]:
                raise WriteRefused(codes.index("ConditionalCheckFailed", 2) - 2) from None
            raise

    def items(self, user_uuid: str) -> list[dict[str, Any]]:
        """Every item of the user's partition (its devices and their counter) as stored (a data export)."""
        return item_listing.partition_items(self.client, self.table, partition=("user_uuid", user_uuid))

    def crl_items_of(self, user_uuid: str, *, now_epoch: int) -> list[dict[str, Any]]:
        """The CRL's entries of the user's certificates that have not expired, as stored: the CRL's one
        Query (what GET /device/crl reads), kept to the user's (no index names a user's entries)."""
        return [item for item in item_listing.partition_items(self.client, self.table,
                                                              partition=("user_uuid", CRL_PARTITION))
                if item.get("revoked_user_uuid") == user_uuid and item["expires_epoch"] > now_epoch]

    # --- the CRL's entries -------------------------------------------------------------------

    def revoked_certificate_put(self, entry: RevokedCertificateRecord) -> dict[str, Any]:
        """A TransactWriteItems entry listing a certificate in the CRL until it expires."""
        # The key attributes are the CRL's own; the device's ids are kept under other names.
        item = {"user_uuid": CRL_PARTITION, "device_id": f"serial:{entry.serial}", "serial": entry.serial,
                "revoked_at": entry.revoked_at, "reason": entry.reason, "revoked_user_uuid": entry.user_uuid,
                "revoked_device_id": entry.device_id, "expires_epoch": entry.expires_epoch,
                dynamo.TTL_ATTRIBUTE: entry.expires_epoch}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item)}}

    def revoked_certificates(self, *, now_epoch: int) -> list[RevokedCertificateRecord]:
        """Every listed certificate that has not expired: one Query (paged), no Scan."""
        entries, start = [], None
        while True:
            args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "#u = :crl",
                                    "ExpressionAttributeNames": {"#u": "user_uuid"},
                                    "ExpressionAttributeValues": {":crl": {"S": CRL_PARTITION}}}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            for item in page["Items"]:
                data = dynamo.from_item(item)
                if data["expires_epoch"] > now_epoch:  # TTL deletes late (SPEC §8)
                    entries.append(RevokedCertificateRecord(
                        serial=data["serial"], revoked_at=data["revoked_at"], reason=data["reason"],
                        user_uuid=data["revoked_user_uuid"], device_id=data["revoked_device_id"],
                        expires_epoch=data["expires_epoch"]))
            start = page.get("LastEvaluatedKey")
            if not start:
                return entries

    # --- account deletion ---------------------------------------------------------------------

    def list_certificates_and_delete_user(self, user_uuid: str, entries: list[RevokedCertificateRecord]) -> None:
        """List `entries` in the CRL, then delete every item of the user's partition (its devices
        and their counter): a Query of the keys and BatchWriteItem, no Scan. A login racing this
        fails its last_login_update condition on the deleted device."""
        puts = [{"PutRequest": {"Item": self.revoked_certificate_put(e)["Put"]["Item"]}} for e in entries]
        dynamo.batch_write(self.client, self.table, puts)
        keys = dynamo.query_keys(self.client, self.table, key_names=("user_uuid", "device_id"),
                                 partition=("user_uuid", user_uuid))
        dynamo.batch_write(self.client, self.table, [{"DeleteRequest": {"Key": k}} for k in keys])

    def transact(self, items: list[dict[str, Any]]) -> None:
        """Run a transaction whose first entry is take_slot_item; LimitReached if it was refused,
        WriteRefused(index) if another entry's condition failed."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise LimitReached() from None
            if "ConditionalCheckFailed" in codes:
                raise WriteRefused(codes.index("ConditionalCheckFailed")) from None
            raise


class DeviceChanged(dynamo.StoreRefusal):
    """The device is no longer active with the certificate it was read with (revoked or renewed)."""


class LastDeviceRefused(dynamo.StoreRefusal):
    """Revoking would leave fewer devices than asked to keep."""


class LimitReached(dynamo.StoreRefusal):
    """The user already has the maximum number of registered devices."""


class WriteRefused(dynamo.StoreRefusal):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index
