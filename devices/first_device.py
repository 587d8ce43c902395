"""The first device of an account that has none, an imported one (SPEC §17): this way in is only for an
account without a registered device, and of ways in racing for one, one device is stored (the device count
limited to 1 in the device's own transaction). No Flask here."""
from __future__ import annotations

from collections.abc import Sequence

from common.database.guarded_write import GuardedWrite
from common.errors import Conflict, ErrorCode
from common.runtime.context import AppContext
from devices.models import IssuedDevice
from devices.service import DeviceLimitReached, device_store, store_new_device


class DeviceExists(Conflict):
    code = ErrorCode.DEVICE_EXISTS
    detail = ("This account has a device already: add this one by scanning the pairing code another of its "
              "devices shows, or with a recovery code.")


def has_registered_device(ctx: AppContext, *, user_uuid: str) -> bool:
    """Does the account hold a registered (unrevoked) device? Its device counter, read strongly consistent."""
    return device_store(ctx).registered_count(user_uuid) > 0


def no_device_write(ctx: AppContext, *, user_uuid: str) -> GuardedWrite:
    """The entry that refuses a caller's transaction (DeviceExists) once the account has a registered device."""
    return GuardedWrite(item=device_store(ctx).no_device_check(user_uuid), refusal=DeviceExists)


def store_first_device(ctx: AppContext, issued: IssuedDevice, *, extra_writes: Sequence[GuardedWrite] = ()) -> None:
    """Store the account's first device, with `extra_writes`, in one transaction whose device count is limited
    to 1: of any ways in racing for an account with no device, one device is stored and the others are
    DeviceExists; else the refusal of an extra entry that was refused."""
    try:
        store_new_device(ctx, issued, extra_writes=extra_writes, limit=1)
    except DeviceLimitReached:
        raise DeviceExists() from None
