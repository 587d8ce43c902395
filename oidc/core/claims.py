"""The person's claims an app may read, by scope (OpenID Connect Core §5.4): `sub` always; `profile`
adds preferred_username, locale and zoneinfo; `email` adds email and email_verified (true) only for an
address the account holds and has verified (SPEC §14 Userinfo). An unverified address is never told: so
an account that registered with an address another account holds (never claimed, never verified) and one
with a free address it has not verified yet look the same to every app, and no app can probe which
addresses are taken.

An app's refresh token carries the claims of its grant's scope (oidc.token.refresh_tokens), so that a refresh's ID
token needs no read of the account: the rotation's write checks, in its own transaction, that the
account still gives those claims (still_given), and a refusal brings the account as it is, whose claims
the write is tried again with. No ID token tells a claim the account no longer gives."""
from __future__ import annotations

from typing import Any

from accounts import service as accounts
from accounts.models import AccountRecord
from common.database import dynamo
from common.database.guarded_write import GuardedWrite
from common.runtime.context import AppContext

ZONEINFO = "UTC"  # citylogin keeps no time zone of a person: every time it shows is UTC
PROFILE_CLAIMS = ("preferred_username", "locale", "zoneinfo")
EMAIL_CLAIMS = ("email", "email_verified")


class PersonChanged(dynamo.StoreRefusal):
    """The account no longer gives the claims a write was made with: `account` as it is now (None: gone)."""

    def __init__(self, account: AccountRecord | None) -> None:
        super().__init__("the person's claims changed")
        self.account = account


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


def narrowed(person: dict[str, Any], *, scope: str) -> dict[str, Any]:
    """The claims of `person` (the claims of a scope that includes `scope`) that `scope` asks for."""
    scopes = set(scope.split())
    kept = (PROFILE_CLAIMS if "profile" in scopes else ()) + (EMAIL_CLAIMS if "email" in scopes else ())
    return {name: value for name, value in person.items() if name in kept}


def still_given(ctx: AppContext, *, user_uuid: str, person: dict[str, Any], scope: str) -> GuardedWrite | None:
    """A check, for the write it joins, that the account still gives `person`, its claims of `scope`
    (of_account); None when `scope` asks for none. Refused: PersonChanged, with the account as it is."""
    scopes = set(scope.split())
    if not scopes & {"profile", "email"}:
        return None
    shown: dict[str, Any] = {}
    if "profile" in scopes:
        shown |= {"username": person["preferred_username"], "locale": person["locale"]}
    if "email" in scopes:
        shown |= {"usable_email": person["email"]} if "email" in person else {"email_withheld": True}
    return accounts.still_shown(ctx, user_uuid=user_uuid, refusal=PersonChanged, **shown)


def packed(person: dict[str, Any], *, scope: str) -> list[str | None] | None:
    """`person` (the claims of `scope`) as a refresh token carries it: [username, locale, e-mail], each
    None where the scope asks for none or the address is withheld; None if it is not such claims."""
    scopes = set(scope.split())
    username, locale, email = person.get("preferred_username"), person.get("locale"), person.get("email")
    if "profile" in scopes and not (isinstance(username, str) and isinstance(locale, str)):
        return None
    if email is not None and not ("email" in scopes and isinstance(email, str)):
        return None
    profile = "profile" in scopes
    return [username if profile else None, locale if profile else None, email]


def unpacked(values: object, *, scope: str) -> dict[str, Any] | None:
    """The claims of `scope` a refresh token carries (packed); None for anything else."""
    if not (isinstance(values, list) and len(values) == 3):
        return None
    username, locale, email = values
    scopes = set(scope.split())
    person: dict[str, Any] = {}
    if "profile" in scopes:
        if not (isinstance(username, str) and isinstance(locale, str)):
            return None
        person |= {"preferred_username": username, "locale": locale, "zoneinfo": ZONEINFO}
    elif username is not None or locale is not None:
        return None
    if email is not None:
        if not ("email" in scopes and isinstance(email, str)):
            return None
        person |= {"email": email, "email_verified": True}
    return person
