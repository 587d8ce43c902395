"""People for the admin API's tests (SPEC §15): an operator with a role, and a person acted upon,
each registered and signed in over HTTP."""
from __future__ import annotations

from accounts import user_service as users
from accounts.models import Role
from citylogin.client import Client
from tests.support.live import PASSWORD, register_device


def operator(url: str, ctx, role: Role | None) -> Client:
    """A signed-in person whose account holds `role` (None: no role)."""
    client = register_device(url)
    if role is not None:
        users.set_role(ctx, user_uuid=client.key_file.user_uuid, role=role, granted=True)
    client.login(PASSWORD)
    return client


def person(url: str) -> Client:
    """A signed-in person without a role."""
    client = register_device(url)
    client.login(PASSWORD)
    return client
