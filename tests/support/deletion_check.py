"""What a finished account deletion must leave (SPEC §4 DELETE /account): nothing of the account in
any table but its ended session records (without the client's IP and user agent, kept so that an
old token meets 401 session_revoked, reason account_deleted), the events of those ends for the apps
(ids and reasons, 25 hours), and every certificate it was ever
issued in the CRL. Tests only: these read whole tables with Scans."""
from __future__ import annotations

from cryptography import x509

from common import dynamo
from common.crypto import token_digest


def _scan(client, table: str) -> list[dict]:
    return [dynamo.from_item(i) for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
            for i in page["Items"]]


def leftovers(client, tables: dynamo.TableNames, *, user_uuid: str, username: str, email: str,
              deleted_at: float | None = None) -> list[str]:
    """Every item of the deleted account still stored, as "table: item" lines. Failed logins with
    the username made after `deleted_at` (the deletion's 204) count toward the lockout of a name
    that no longer belongs to anyone, as for any unknown name: those counters are not the account's."""
    address = token_digest(email.casefold(), purpose="reset-address")
    lockout = "user:" + token_digest(username.casefold(), purpose="lockout-user")
    marks = (user_uuid, lockout, address, username)
    found = []
    for table in tables.all():
        if table == tables.key_ring:
            continue
        for item in _scan(client, table):
            if table == tables.devices and item["user_uuid"] == "#crl":
                continue  # the CRL's own entries, which must stay
            if table == tables.security_events:
                continue  # session ends kept 25 h for the apps (SPEC §11): ids and reasons, no client details
            if table == tables.sessions and item.get("user_uuid") == user_uuid:
                if item["status"] == "active" or "ip" in item or "user_agent" in item or item.get("device_name"):
                    found.append(f"{table}: live or detailed session {item['session_id']} {item['status']}")
                continue
            if deleted_at is not None and table == tables.rate_limits and item["limit_key"].startswith("fail#user:") \
                    and min(item["failures"]) >= int(deleted_at):
                continue
            text = repr(item)
            if any(mark in text for mark in marks) or email.casefold() in text.casefold():
                found.append(f"{table}: {sorted(item)} {item.get('kind') or item.get('limit_key') or ''}")
    return found


def serial_of(cert_pem: str) -> int:
    return x509.load_pem_x509_certificate(cert_pem.encode()).serial_number


def missing_from_crl(crl_pem: bytes, serials: set[int]) -> set[int]:
    crl = x509.load_pem_x509_crl(crl_pem)
    return {s for s in serials if crl.get_revoked_certificate_by_serial_number(s) is None}
