"""The person's claims an app may read, by scope (OpenID Connect Core §5.4): `sub` always; `profile`
adds preferred_username, locale and zoneinfo; `email` adds email and email_verified, if the account
holds its address (not one another account held when it registered with it)."""
from __future__ import annotations

from typing import Any

from accounts import service as accounts
from common.context import AppContext

ZONEINFO = "UTC"  # citylogin keeps no time zone of a person: every time it shows is UTC


def of_user(ctx: AppContext, *, user_uuid: str, scope: str) -> dict[str, Any]:
    scopes = set(scope.split())
    if not scopes & {"profile", "email"}:
        return {}
    account = accounts.get_account(ctx, user_uuid=user_uuid)
    found: dict[str, Any] = {}
    if "profile" in scopes:
        found |= {"preferred_username": account.username, "locale": account.locale, "zoneinfo": ZONEINFO}
    if "email" in scopes and account.email_held:  # an address the account does not hold is not its own to tell
        found |= {"email": account.email, "email_verified": account.email_verified}
    return found
