"""What the devices domain stores about a person, as stored, for their data export
(flows/data_export.py): their devices and the counter beside them, the CRL's entries of their
certificates and their pairing codes."""
from __future__ import annotations

from typing import Any

from devices.pairing_service import pairing_store
from devices.service import device_store
from common.runtime.context import AppContext


def device_items(ctx: AppContext, *, user_uuid: str) -> list[dict[str, Any]]:
    """The user's devices and their `#registered` counter, then the CRL's entries of their certificates."""
    store = device_store(ctx)
    return store.items(user_uuid) + store.crl_items_of(user_uuid, now_epoch=ctx.epoch())


def pairing_items(ctx: AppContext, *, user_uuid: str) -> list[dict[str, Any]]:
    return pairing_store(ctx).items_of_user(user_uuid)
