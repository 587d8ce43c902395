"""What a finished account deletion must leave (SPEC §4 DELETE /account): nothing of the account in
any table but its ended session records (without the client's IP and user agent, kept so that an
old token meets 401 session_revoked, reason account_deleted), the events of those ends for the apps
(ids and reasons, 25 hours), the mail telling the person of the deletion, and every certificate it was ever
issued in the CRL. Tests only: these read whole tables with Scans."""
from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from common.crypto.tokens import token_digest
from common.database import dynamo


def _scan(client, table: str) -> list[dict]:
    return [dynamo.from_item(i) for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            for i in page["Items"]]


@dataclass(frozen=True)
class Deleted:
    """A deleted account as the checker looks for it; `deleted_at`: when the deletion answered 204."""
    user_uuid: str
    username: str
    email: str
    deleted_at: float | None = None

    def marks(self) -> tuple[str, ...]:
        address = token_digest(self.email.casefold(), purpose="reset-address")
        lockout = "user:" + token_digest(self.username.casefold(), purpose="lockout-user")
        return self.user_uuid, lockout, address, self.username


def leftovers(client, tables: dynamo.TableNames, *, user_uuid: str, username: str, email: str,
              deleted_at: float | None = None) -> list[str]:
    """Every item of the deleted account still stored, as "table: item" lines. Failed logins with
    the username made after `deleted_at` (the deletion's 204) count toward the lockout of a name
    that no longer belongs to anyone, as for any unknown name: those counters are not the account's."""
    return leftovers_of(client, tables, [Deleted(user_uuid, username, email, deleted_at)])[user_uuid]


def leftovers_of(client, tables: dynamo.TableNames, people: list[Deleted]) -> dict[str, list[str]]:
    """`leftovers` of several deleted accounts, each table scanned once: {user_uuid: lines}."""
    found: dict[str, list[str]] = {person.user_uuid: [] for person in people}
    marks = {person.user_uuid: person.marks() for person in people}
    for table in tables.all():
        if table == tables.key_ring:
            continue
        for item in _scan(client, table):
            text = repr(item)
            for person in people:
                line = _leftover(tables, table, item, text, person, marks[person.user_uuid])
                if line:
                    found[person.user_uuid].append(line)
    return found


def _leftover(tables: dynamo.TableNames, table: str, item: dict, text: str, person: Deleted,
              marks: tuple[str, ...]) -> str | None:
    if table == tables.devices and item["user_uuid"] == "#crl":
        return None  # the CRL's own entries, which must stay
    if table == tables.security_events:
        return None  # session ends kept 25 h for the apps (SPEC §11): ids and reasons, no client details
    if table == tables.mail_outbox and item.get("event") == "account_deleted":
        return None  # the notice that the account is deleted must still go; sent, it holds no contents
    if table == tables.sessions and item.get("user_uuid") == person.user_uuid:
        if item["status"] == "active" or "ip" in item or "user_agent" in item or item.get("device_name"):
            return f"{table}: live or detailed session {item['session_id']} {item['status']}"
        return None
    if table == tables.oidc_grants and item.get("user_uuid") == person.user_uuid:
        # an app's grant keeps its ids 24 h past the session's end (docs/reference/http-api.md DELETE /account)
        marks = marks[1:]
    if person.deleted_at is not None and table == tables.rate_limits \
            and item["limit_key"].startswith("fail#user:") and min(item["failures"]) >= int(person.deleted_at):
        return None
    if any(mark in text for mark in marks) or person.email.casefold() in text.casefold():
        return f"{table}: {sorted(item)} {item.get('kind') or item.get('limit_key') or ''}"
    return None


def serial_of(cert_pem: str) -> int:
    return x509.load_pem_x509_certificate(cert_pem.encode()).serial_number


def missing_from_crl(crl_pem: bytes, serials: set[int]) -> set[int]:
    crl = x509.load_pem_x509_crl(crl_pem)
    return {s for s in serials if crl.get_revoked_certificate_by_serial_number(s) is None}
