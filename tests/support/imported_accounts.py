"""An account as `citylogin accounts import` leaves it (SPEC §17), put straight into DynamoDB Local: the users
item with `imported_from` and `imported_at`, its username and e-mail claims, and no device. The tests of the
console and of a first device's enrolment need one without running an import."""
from __future__ import annotations

import uuid

from accounts import user_service as users
from accounts.models import UserRecord
from common.crypto.passwords import IMPORTED_PREFIX
from common.runtime.context import AppContext

IMPORTED_AT = "2025-03-03T09:30:00+00:00"
# A bcrypt hash (cost 4, the least bcrypt takes) as an Auth0 or CSV export carries it, of "not a password any test
# types": an account whose password is still the source's hash.
SOURCE_HASH = "$2b$04$rjLw.uEdKUHFvU5DlWg9H.l3viFMuI2JbNCJ.0FYrPXYKNElL6wz2"


def put_imported_account(ctx: AppContext, *, username: str, email: str, password_hash: str | None = None,
                         source: str = "keycloak", email_verified: bool = True, locale: str = "en") -> UserRecord:
    """The account, written as the import writes one (its password `password_hash` as stored; by default an
    imported hash, "imported:" + SOURCE_HASH), without a device."""
    user = UserRecord(user_uuid=str(uuid.uuid4()), username=username, email=email,
                      password_hash=password_hash if password_hash is not None else IMPORTED_PREFIX + SOURCE_HASH,
                      created_at=IMPORTED_AT, email_verified=email_verified, locale=locale, imported_from=source,
                      imported_at=IMPORTED_AT)
    users.create_user(ctx, user=user, extra_attributes={}, extra_writes=[])
    return user
