"""The person's claims an app may read, by scope (OpenID Connect Core §5.4): `sub` always; `profile`
adds preferred_username, locale and zoneinfo; `email` adds email and email_verified (true) only for an
address the account holds and has verified (SPEC §14 Userinfo). An unverified address is never told: so
an account that registered with an address another account holds (never claimed, never verified) and one
with a free address it has not verified yet look the same to every app, and no app can probe which
addresses are taken."""
from __future__ import annotations

from typing import Any

from accounts import service as accounts
from accounts.models import AccountRecord
from web.context import AppContext

ZONEINFO = "UTC"  # citylogin keeps no time zone of a person: every time it shows is UTC


def of_user(ctx: AppContext, *, user_uuid: str, scope: str) -> dict[str, Any]:
    if not set(scope.split()) & {"profile", "email"}:
        return {}
    return of_account(accounts.get_account(ctx, user_uuid=user_uuid), scope=scope)


def of_account(account: AccountRecord, *, scope: str) -> dict[str, Any]:
    """The claims of an account already read, by scope."""
    scopes = set(scope.split())
    found: dict[str, Any] = {}
    if "profile" in scopes:
        found |= {"preferred_username": account.username, "locale": account.locale, "zoneinfo": ZONEINFO}
    if "email" in scopes and released_email(account.email_held, account.email_verified):
        found |= {"email": account.email, "email_verified": True}
    return found


def released_email(held: bool, verified: bool) -> bool:
    """Whether an app may learn the account's address: a verified one it holds. Releasing a free but
    unverified address and withholding a held one would tell an app which addresses are taken."""
    return held and verified
