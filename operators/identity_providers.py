"""Operators and upstream providers (SPEC §16): an admin lists, adds, changes and removes them through the
admin API with the service functions `citylogin idp` uses. Every change is audited with the operator; no
answer holds a secret."""
from __future__ import annotations

from typing import Any

from accounts.models import Role
from common.runtime.context import AppContext
from common.web.audit import AuditEvent, audit, operator_acting
from federation import providers
from operators.identity_provider_models import NewProvider, ProviderChange
from operators.service import Operator, need


def _audited(operator: Operator, action: str, name: str, reason: str | None) -> None:
    audit(AuditEvent.OPERATOR_ACTION, action=action, provider=name, **operator.details(),
          reason=(reason or "").strip() or None)


def list_providers(ctx: AppContext, *, operator: Operator) -> list[dict[str, Any]]:
    need(operator, Role.ADMIN)
    return [providers.provider_view(ctx.settings, p) for p in providers.list_providers(ctx, include_disabled=True)]


def show_provider(ctx: AppContext, *, operator: Operator, name: str) -> dict[str, Any]:
    need(operator, Role.ADMIN)
    return providers.provider_view(ctx.settings, providers.get_provider(ctx, name, include_disabled=True))


def add_provider(ctx: AppContext, *, operator: Operator, request: NewProvider) -> dict[str, Any]:
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        added = providers.add_provider(ctx, name=request.name, preset=request.preset, **request.given())
        _audited(operator, "idp_add", added.name, request.reason)
    return providers.provider_view(ctx.settings, added)


def change_provider(ctx: AppContext, *, operator: Operator, name: str, request: ProviderChange) -> dict[str, Any]:
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        changed = providers.update_provider(ctx, name=name, **request.given())
        _audited(operator, "idp_change", name, request.reason)
    return providers.provider_view(ctx.settings, changed)


def remove_provider(ctx: AppContext, *, operator: Operator, name: str, reason: str | None) -> None:
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        providers.remove_provider(ctx, name=name)
        _audited(operator, "idp_remove", name, reason)
