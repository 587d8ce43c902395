"""Registration rules: a new account with its first device, all-or-nothing. No Flask here."""
from __future__ import annotations

import uuid

from common.context import AppContext
from common.errors import Conflict, ErrorCode
from common.notifier import Message
from common.timefmt import iso
from device_manager import service as devices
from device_manager.models import DeviceCertificateResponse
from registration.models import UserRecord
from registration.store import NameTaken, UserStore


class UsernameTaken(Conflict):
    code, detail = ErrorCode.USERNAME_TAKEN, "This username is already taken."


class EmailTaken(Conflict):
    code, detail = ErrorCode.EMAIL_TAKEN, "An account with this e-mail address already exists."


def user_store(ctx: AppContext) -> UserStore:
    return UserStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims)


def register_user(ctx: AppContext, *, username: str, email: str, password: str,
                  device_name: str | None, public_key: str | None,
                  csr: str | None) -> DeviceCertificateResponse:
    """Create the user and its primary device; the username and e-mail are claimed atomically."""
    user_uuid = str(uuid.uuid4())
    issued = devices.issue_device(ctx, user_uuid=user_uuid, device_name=device_name, is_primary=True,
                                  public_key=public_key, csr=csr)
    user = UserRecord(user_uuid=user_uuid, username=username, email=email,
                      password_hash=ctx.passwords.hash(password), created_at=iso(ctx.now()))
    try:
        user_store(ctx).create(user, extra_writes=devices.new_device_writes(ctx, issued.record))
    except NameTaken as taken:
        raise (UsernameTaken() if taken.which == "username" else EmailTaken()) from None
    ctx.notifier.notify(Message(
        event="registered", user_uuid=user_uuid, email=email, subject="Welcome to citylogin",
        body=f"Your account {username} was created with the device {issued.record.device_name}."))
    return devices.certificate_response(ctx, issued, message="Registration successful.")


def find_user(ctx: AppContext, *, username: str) -> UserRecord | None:
    """The user named `username` (compared as at registration), read strongly consistent."""
    store = user_store(ctx)
    user_uuid = store.find_uuid_by_username(username)
    return store.get(user_uuid) if user_uuid else None


def get_user(ctx: AppContext, *, user_uuid: str) -> UserRecord | None:
    return user_store(ctx).get(user_uuid)


def update_password_hash(ctx: AppContext, *, user_uuid: str, password_hash: str) -> None:
    user_store(ctx).set_password_hash(user_uuid, password_hash)
