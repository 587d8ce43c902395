"""The apps table: one partition ("apps") holding every app, so that listing them is one Query, and the
registry's version item, which every change of an app bumps in the change's own transaction: a process
learns that the registry moved with one GetItem (relying_parties.registry).

A stored record that cannot be read (a null or wrongly typed attribute, a number boto3 cannot convert, a
moment that is no timestamp, written by another release or by hand) is left out of every answer, as if
the app were not there, with one ERROR naming it per process: one bad record never fails the list, the
console or another app's delivery."""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import typing
from dataclasses import asdict
from typing import Any, Sequence

from botocore.exceptions import ClientError
from pydantic import TypeAdapter, ValidationError

from relying_parties.models import DEVICE_FLOW_CLASSES, PROFILES, AppRecord
from common.timefmt import parse_iso
from common.database import dynamo
from common.database.guarded_write import GuardedWrite, write_all

log = logging.getLogger(__name__)

REGISTRY = "apps"
# The version item's key: a partition of its own, so that the apps' Query never meets it.
VERSION_KEY = {"registry": {"S": "apps-version"}, "client_id": {"S": "-"}}


class AppExists(dynamo.StoreRefusal):
    """The client_id is taken (a collision of random ids: draw another)."""


class AppMissing(dynamo.StoreRefusal):
    """No app has this client_id."""


class AppChanged(dynamo.StoreRefusal):
    """The app was changed since the reading a change was computed from (its revision moved)."""


class UnreadableRecord(dynamo.StoreRefusal):
    """A stored app record that does not fit AppRecord; `problem` names the attributes, never their values."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


# Moments as common.timefmt.iso writes them: the console shows them as dates, and a page's Date refuses
# anything else (one such record once kept the console from listing any app).
_MOMENTS = ("created_at", "secret_rotated_at")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_ID_TOKEN_ALGS = ("RS256", "ES256", "EdDSA")  # what the key ring signs an app's ID and logout tokens with
_HINTS = typing.get_type_hints(AppRecord)
_FIELDS = {field.name: (TypeAdapter(_HINTS[field.name]),
                        field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING)
           for field in dataclasses.fields(AppRecord)}


def parse_record(data: dict[str, Any]) -> AppRecord:
    """The AppRecord of a stored item's attributes (others ignored): each of the type AppRecord declares,
    strictly (no coercion), the required ones present; UnreadableRecord otherwise."""
    problems = [f"{name}: missing" for name, (_, required) in _FIELDS.items() if required and data.get(name) is None]
    for name, (adapter, _) in _FIELDS.items():
        if data.get(name) is not None:
            try:
                adapter.validate_python(data[name], strict=True)
            except ValidationError as error:
                problems.append(f"{name}: {error.errors()[0]['type']}")
    if isinstance(data.get("jwks"), str) and not _is_json_object(data["jwks"]):
        problems.append("jwks: not a JSON object")
    problems += [f"{name}: not a moment" for name in _MOMENTS
                 if isinstance(data.get(name), str) and not _is_moment(data[name])]
    if isinstance(data.get("id_token_alg"), str) and data["id_token_alg"] not in _ID_TOKEN_ALGS:
        problems.append("id_token_alg: not an algorithm of the key ring")
    if isinstance(data.get("device_class"), str) and data["device_class"] not in DEVICE_FLOW_CLASSES:
        problems.append("device_class: not a device class")
    if isinstance(data.get("profile"), str) and data["profile"] not in PROFILES:
        problems.append("profile: not a profile")
    if problems:
        raise UnreadableRecord("; ".join(problems))
    return AppRecord(**{name: data[name] for name in _FIELDS if data.get(name) is not None})


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _is_moment(text: str) -> bool:
    if not _MOMENT.fullmatch(text):
        return False
    try:
        parse_iso(text)
    except ValueError:  # a month 13, a day 32
        return False
    return True


def _attributes(item: dict[str, Any]) -> dict[str, Any]:
    """The item's attributes as Python values; UnreadableRecord naming those boto3's converter refuses
    (a number beyond its 38 digits: DynamoDB Local hands 1E+125 back as 126 of them)."""
    try:
        return dynamo.from_item(item)
    except (ArithmeticError, TypeError, ValueError):
        pass
    problems: list[str] = []
    for name, value in item.items():
        try:
            dynamo.from_item({name: value})
        except (ArithmeticError, TypeError, ValueError):
            problems.append(f"{name}: not readable")
    raise UnreadableRecord("; ".join(problems))


class _Reported:
    """The unreadable records this process has logged: each once (per table, app and problem)."""

    def __init__(self) -> None:
        self._lock, self._seen = threading.Lock(), set[tuple[str, str, str]]()

    def first(self, key: tuple[str, str, str]) -> bool:
        with self._lock:
            if key in self._seen or len(self._seen) > 10_000:
                return False
            self._seen.add(key)
            return True


_reported = _Reported()


def _record(table: str, item: dict[str, Any]) -> AppRecord | None:
    try:
        return parse_record(_attributes(item))
    except UnreadableRecord as unreadable:
        client_id = str(item.get("client_id", {}).get("S"))[:80]
        if _reported.first((table, client_id, unreadable.problem)):
            log.error("app %s: its stored record cannot be read (%s); it is left out (as if removed) until "
                      "it is repaired or removed", client_id, unreadable.problem)
        return None


class AppStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def _key(self, client_id: str) -> dict[str, Any]:
        return {"registry": {"S": REGISTRY}, "client_id": {"S": client_id}}

    def _bump(self) -> dict[str, Any]:
        """The TransactWriteItems entry that moves the registry's version on."""
        return {"Update": {"TableName": self.table, "Key": VERSION_KEY, "UpdateExpression": "ADD version :one",
                           "ExpressionAttributeValues": {":one": {"N": "1"}}}}

    def _write(self, change: dict[str, Any], client_id: str, *, missing: type[dynamo.StoreRefusal]) -> None:
        """`change` and the version's bump in one transaction; `missing` if the change's condition fails."""
        try:
            self.client.transact_write_items(TransactItems=[change, self._bump()])
        except ClientError as exc:
            if dynamo.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                raise missing(client_id) from None
            raise

    def version(self) -> int:
        """The registry's version: it moved since a reading of it if any app was added, changed or removed."""
        item = self.client.get_item(TableName=self.table, Key=VERSION_KEY, ConsistentRead=True).get("Item")
        return int(item["version"]["N"]) if item and "version" in item else 0

    def create(self, app: AppRecord, *, along: Sequence[GuardedWrite] = ()) -> None:
        """The app, the version's bump and `along` (another domain's entries: their refusals come first) in one
        transaction; AppExists if the client_id is taken."""
        item = {"registry": REGISTRY, **{k: v for k, v in asdict(app).items() if v is not None}}
        put = {"Put": {"TableName": self.table, "Item": dynamo.to_item(item),
                       "ConditionExpression": "attribute_not_exists(client_id)"}}
        write_all(self.client, [*along, GuardedWrite(item=put, refusal=lambda: AppExists(app.client_id)),
                                GuardedWrite(item=self._bump(), refusal=lambda: AppExists(app.client_id))])

    def get(self, client_id: str) -> AppRecord | None:
        """The app, or None if there is none or its record cannot be read."""
        item = self.client.get_item(TableName=self.table, Key=self._key(client_id), ConsistentRead=True).get("Item")
        return _record(self.table, item) if item else None

    def list(self) -> list[AppRecord]:
        """Every app whose record can be read."""
        apps: list[AppRecord] = []
        args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "registry = :r",
                                "ExpressionAttributeValues": {":r": {"S": REGISTRY}}, "ConsistentRead": True}
        while True:
            page = self.client.query(**args)
            apps += [app for item in page["Items"] if (app := _record(self.table, item)) is not None]
            if not page.get("LastEvaluatedKey"):
                return apps
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def replace_secret(self, client_id: str, *, secret_digest: str, at: str) -> AppRecord:
        self._write({"Update": {"TableName": self.table, "Key": self._key(client_id),
                                "UpdateExpression": "SET secret_digest = :d, secret_rotated_at = :at",
                                "ConditionExpression": "attribute_exists(client_id)",
                                "ExpressionAttributeValues": {":d": {"S": secret_digest}, ":at": {"S": at}}}},
                    client_id, missing=AppMissing)
        return self._changed(client_id)

    def update(self, client_id: str, *, changes: dict[str, Any], revision: int | None = None) -> AppRecord:
        """Set the attributes `changes` gives (None removes one) and move the app's revision on; AppMissing if
        there is no such app (or its record still cannot be read); with `revision` (the revision read, 0 for
        a record that has none), AppChanged if the app's revision moved since."""
        names = {"#rev": "revision", **{f"#a{i}": name for i, name in enumerate(changes)}}
        sets = ["#rev = if_not_exists(#rev, :zero) + :one",
                *(f"#a{i} = :v{i}" for i, value in enumerate(changes.values()) if value is not None)]
        removes = [f"#a{i}" for i, value in enumerate(changes.values()) if value is None]
        values = {":zero": {"N": "0"}, ":one": {"N": "1"},
                  **{f":v{i}": dynamo.to_item({"v": value})["v"] for i, value in enumerate(changes.values())
                     if value is not None}}
        expression = " ".join(part for part in (f"SET {', '.join(sets)}",
                                                f"REMOVE {', '.join(removes)}" if removes else "") if part)
        condition = "attribute_exists(client_id)"
        if revision is not None:
            condition += " AND attribute_not_exists(#rev)" if revision == 0 else " AND #rev = :rev"
            if revision:
                values[":rev"] = {"N": str(revision)}
        update: dict[str, Any] = {"TableName": self.table, "Key": self._key(client_id),
                                  "UpdateExpression": expression, "ConditionExpression": condition,
                                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        try:
            self._write({"Update": update}, client_id, missing=AppMissing)
        except AppMissing:
            if revision is not None and self.get(client_id) is not None:
                raise AppChanged(client_id) from None
            raise
        return self._changed(client_id)

    def _changed(self, client_id: str) -> AppRecord:
        # A transaction returns no attributes: the record as it now stands is read back.
        app = self.get(client_id)
        if app is None:
            raise AppMissing(client_id)
        return app

    def registered_item(self, client_id: str) -> dict[str, Any]:
        """A TransactWriteItems entry refused unless the app is registered (removed meanwhile, or never)."""
        return {"ConditionCheck": {"TableName": self.table, "Key": self._key(client_id),
                                   "ConditionExpression": "attribute_exists(client_id)"}}

    def delete(self, client_id: str) -> None:
        self._write({"Delete": {"TableName": self.table, "Key": self._key(client_id),
                                "ConditionExpression": "attribute_exists(client_id)"}},
                    client_id, missing=AppMissing)
