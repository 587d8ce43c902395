"""What the OpenID Provider stores about a person, as stored, for their data export
(flows/data_export.py): the apps they allowed (consents) and the apps signed in on their sessions
(grants, revoked ones too while they are kept)."""
from __future__ import annotations

from typing import Any

from oidc.app_grants.consents import ConsentStore
from oidc.app_grants.ending import store as grant_store
from oidc.core.store import GRANT_KEPT_SECONDS
from common.runtime.context import AppContext

# How long a grant is kept past its session, for the export's words (flows/export_retention.py)
__all__ = ["GRANT_KEPT_SECONDS", "consent_items", "grant_items"]


def consent_items(ctx: AppContext, *, user_uuid: str) -> list[dict[str, Any]]:
    return ConsentStore(ctx.dynamodb, ctx.tables.oidc_consents).items(user_uuid)


def grant_items(ctx: AppContext, *, session_ids: list[str]) -> list[dict[str, Any]]:
    """The grants on each of these sessions: one Query per session (the table is keyed by session)."""
    store = grant_store(ctx)
    return [item for session_id in session_ids for item in store.items_of(session_id)]
