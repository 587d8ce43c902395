"""What an import reads from a file (SPEC §17): each row an account to bring, or the reason it cannot be.
The readers (Keycloak's realm export, Auth0's user export, CSV) make these; the import writes them. No
hash is computed here or later: a row carries the source's hash as citylogin stores it."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

# The formats `citylogin accounts import --format` takes, and the users item's `imported_from`.
FORMATS = ("keycloak", "auth0", "csv")

# Every imported account's user_uuid is made from where it comes from, so that a second run of a file,
# or one resumed after a kill, finds the accounts the first wrote instead of writing them twice.
IMPORT_NAMESPACE = uuid.UUID("6f1d3c8e-2b47-5a0e-9c61-5e2f8d7a4b13")


def imported_user_uuid(source: str, source_id: str) -> str:
    """The user_uuid of the account `source_id` of `source` ("keycloak", "auth0", "csv"): the same on
    every run (a version-5 UUID; registration's are version 4, so none collides with a registered one).
    Auth0's two exports of one person (the user export's `auth0|<id>`, the password export's `_id`) give
    the same `source_id`: the reader strips the connection's prefix."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"{source}:{source_id}"))


@dataclass(frozen=True)
class ImportedIdentity:
    """An upstream identity the source had linked to the person (Keycloak's federatedIdentities, Auth0's
    social identities): `provider` as the source names it (Keycloak's alias, Auth0's provider, e.g.
    "google-oauth2"), `sub` the provider's subject. It becomes a §16 link when a provider is configured
    for it; else the row's report says it was left."""

    provider: str
    sub: str
    email: str = ""


@dataclass(frozen=True)
class ImportRow:
    """An account to write. `where` says where it is in the file ("line 17", "users[3]"), for the report.
    `password_hash` is common.crypto.passwords.IMPORTED_PREFIX + the canonical form of the source's hash
    (common.crypto.imported_hashes), or "" for a person the source held no password for. `notes` say what
    of the row was not brought (an OTP secret, a passkey): reported, not refused."""

    where: str
    source: str
    source_id: str
    username: str
    email: str
    email_verified: bool
    password_hash: str
    locale: str = "en"
    disabled: bool = False
    created_at: str | None = None
    identities: tuple[ImportedIdentity, ...] = ()
    notes: tuple[str, ...] = ()
    # The fields above that this kind of file does not hold, whose value here is only a default: Auth0's
    # user export holds no hash, its password export no locale, state, date or identity. An --update
    # leaves them as they are stored, so the second export of one person does not undo the first.
    unstated: frozenset[str] = frozenset()

    @property
    def user_uuid(self) -> str:
        return imported_user_uuid(self.source, self.source_id)


class RefusalReason(StrEnum):
    """Why a row is not imported: each is a stable word in the report (`--json`) beside its detail."""

    NOT_THE_FORMAT = "not_the_format"  # the row (or the file) is not what --format says
    MISSING_FIELD = "missing_field"
    INVALID_USERNAME = "invalid_username"  # empty, too long, a NUL or other control character...
    INVALID_EMAIL = "invalid_email"
    UNKNOWN_HASH_SCHEME = "unknown_hash_scheme"
    INVALID_HASH = "invalid_hash"  # a known scheme whose string does not parse, or beyond its bounds
    LINE_TOO_LONG = "line_too_long"
    DUPLICATE_IN_FILE = "duplicate_in_file"  # a username, address or id an earlier row of the file has
    SERVICE_ACCOUNT = "service_account"  # Keycloak's user of a client's credentials grant: no person signs in as it
    USERNAME_TAKEN = "username_taken"  # by an account that is not this row's (the import never overwrites)
    EMAIL_TAKEN = "email_taken"


@dataclass(frozen=True)
class RowRefusal:
    """A row not imported: where, why (a RefusalReason) and a detail a person can act on. Never a hash, a
    secret or a whole line in it."""

    where: str
    reason: RefusalReason
    detail: str


class FileRefused(Exception):
    """The file as a whole is not what --format says (not JSON, not a realm export, not CSV with the
    header...), or cannot be read: the import writes nothing and says why in one line."""
