"""A person's data export (access and portability requests): one JSON document of everything stored
about them, table by table in the terms of docs/security/storage.md, without a secret, hash or digest.
Read top-down: the account (404 without one, 409 while it is being deleted), then every table's items
at once (Queries on the keys and indexes the tables have, never a Scan), then the account again: one
whose deletion began meanwhile answers 409, never a document with parts already erased. Nothing is
answered until every read has: a failed one is a 503, never a partial document."""
from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from boto3.dynamodb.types import Binary

from accounts import export_service as accounts
from relying_parties.registry import current_app
from common.errors import Conflict, ErrorCode, NotFound
from common.timefmt import iso
from common.database.one_time_tokens import OneTimeTokenStore
from devices import export_service as devices
from federation import identities
from common.mail.outbox_store import OutboxStore
from oidc.app_grants import export as oidc
from sessions import export_service as sessions
from common.web.background import background
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore

FORMAT = "citylogin-export/1"
# The document's sections, one per table that holds something about a person, in the storage page's order
SECTIONS = ("users", "claims", "devices", "sessions", "presence", "login_history", "one_time_tokens",
            "pairing_tokens", "rate_limits", "passkeys", "oidc_grants", "oidc_consents", "mail_outbox")
# Attributes that never leave, by table: a secret's hash or digest (docs/security/storage.md, "Your data
# export"). Any attribute whose name holds one of WITHHELD_WORDS is left out too, in every table.
WITHHELD = {
    "users": {"password_hash", accounts.RECOVERY_DIGESTS},
    "sessions": {"refresh_digest", "prev_refresh_digest"},
    "one_time_tokens": {"token_digest", "newest", "code_challenge"},
    "pairing_tokens": {"token_digest"},
    "oidc_grants": {"request_digest", "redeemed_requests"},
    # a waiting mail's address and parameters (a link's one-time token among them), sealed; and its lease
    "mail_outbox": {"sealed", "sealed_kid", "lease_owner", "lease_until"},
}
WITHHELD_WORDS = ("digest", "hash", "secret", "password")
# Who acted and why, on an operator's row: the person's own export leaves them out, as their History does
# (SPEC §15); an operator's export for them keeps them.
OPERATOR_DETAILS = frozenset({"operator", "operator_uuid", "operator_username", "operator_session",
                              "operator_client", "operator_role", "reason"})
LOCKOUT_PREFIXES = ("fail#user:", "lock#user:")  # the lockout's keys: a digest of the username follows
# one_time_tokens whose attributes are a secret in use, not the person's data: only their kind and expiry show
# (a provider round trip's state, while it lives: its nonce and PKCE verifier, which never leave the server)
KIND_ONLY = frozenset({"federation_state"})


class ExportAccountNotFound(NotFound):
    detail = "No such account."


class AccountDeleting(Conflict):
    code, detail = ErrorCode.ACCOUNT_DELETING, "This account is being deleted: nothing of it can be exported."


def export(ctx: AppContext, *, user_uuid: str, for_operator: bool = False) -> dict[str, Any]:
    """Everything stored about the account, as one document; 404 without it, 409 while it is being deleted."""
    user = _live_user(ctx, user_uuid)
    tables = _read_tables(ctx, user_uuid, user)
    _live_user(ctx, user_uuid)  # its deletion may have begun while the tables were read
    document: dict[str, Any] = {"format": FORMAT, "exported_at": iso(ctx.now()), "user_uuid": user_uuid}
    for section in SECTIONS:
        document[section] = [_shown(section, item, for_operator=for_operator) for item in tables[section]]
    document["users"][0]["recovery_codes_left"] = accounts.recovery_codes_left(user)
    document["app_names"] = _app_names(ctx, tables)
    return document


def _app_names(ctx: AppContext, tables: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The names of the apps the grants and consents name by client_id (None: removed since), from the
    registry every process holds."""
    client_ids = sorted({item["client_id"] for section in ("oidc_grants", "oidc_consents") for item in tables[section]})
    return [{"client_id": client_id, "name": app.name if (app := current_app(ctx, client_id=client_id)) else None}
            for client_id in client_ids]


def _live_user(ctx: AppContext, user_uuid: str) -> dict[str, Any]:
    user = accounts.user_item(ctx, user_uuid=user_uuid)
    if user is None or user.get("deletion_finished") is not None or not user.get("username"):
        raise ExportAccountNotFound()
    if user.get("deleting_since") is not None:
        raise AccountDeleting()
    return user


def _read_tables(ctx: AppContext, user_uuid: str, user: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every table's items of the account, the reads at once; the first failure raised."""
    pool = background(ctx)

    def start(read: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        return pool.submit(read, *args, **kwargs)

    tokens = OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)
    counters = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits)
    reads = {"names": start(accounts.items_of_names, ctx, user=user),
             "identities": start(identities.claim_items, ctx, user_item=user),
             "devices": start(devices.device_items, ctx, user_uuid=user_uuid),
             "sessions": start(sessions.session_items, ctx, user_uuid=user_uuid),
             "login_history": start(sessions.history_items, ctx, user_uuid=user_uuid),
             "one_time_tokens": start(tokens.items_of_user, user_uuid),
             "pairing_tokens": start(devices.pairing_items, ctx, user_uuid=user_uuid),
             "rate_limits": start(counters.items_of_user, user_uuid),
             "passkeys": start(accounts.passkey_items, ctx, user_uuid=user_uuid),
             "oidc_consents": start(oidc.consent_items, ctx, user_uuid=user_uuid),
             "mail_outbox": start(OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox).items_of_user, user_uuid)}
    session_items, presence = reads["sessions"].result()
    grants = start(oidc.grant_items, ctx, session_ids=[s["session_id"] for s in session_items])
    names = reads["names"].result()
    return {"users": [user], "claims": names["claims"] + reads["identities"].result(),
            "devices": reads["devices"].result(),
            "sessions": session_items, "presence": [presence] if presence else [],
            "login_history": reads["login_history"].result(), "one_time_tokens": reads["one_time_tokens"].result(),
            "pairing_tokens": reads["pairing_tokens"].result(),
            "rate_limits": names["rate_limits"] + reads["rate_limits"].result(),
            "passkeys": reads["passkeys"].result(), "oidc_grants": grants.result(),
            "oidc_consents": reads["oidc_consents"].result(), "mail_outbox": reads["mail_outbox"].result()}


def _shown(section: str, item: dict[str, Any], *, for_operator: bool) -> dict[str, Any]:
    """The item as the export shows it: without what is withheld, in JSON's own types."""
    withheld = WITHHELD.get(section, set())
    if section == "one_time_tokens" and item.get("kind") in KIND_ONLY:
        item = {name: item[name] for name in ("kind", "expires_epoch") if name in item}
    if section == "login_history" and not for_operator:
        withheld = withheld | OPERATOR_DETAILS
    shown = {name: _plain(value) for name, value in sorted(item.items())
             if name not in withheld and not _secret_name(name)}
    if section == "rate_limits" and str(shown.get("limit_key", "")).startswith(LOCKOUT_PREFIXES):
        shown["limit_key"] = shown["limit_key"].split(":")[0]  # fail#user / lock#user: the rest is a digest
    return shown


def _secret_name(name: str) -> bool:
    return any(word in name.lower() for word in WITHHELD_WORDS)


def _plain(value: Any) -> Any:
    """JSON's types: bytes (a passkey's public key) as unpadded base64url, sets as sorted lists, and
    within maps and lists, names that hold a secret left out."""
    if isinstance(value, (bytes, bytearray, Binary)):
        return base64.urlsafe_b64encode(bytes(value)).decode().rstrip("=")
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not _secret_name(str(k))}
    return value
