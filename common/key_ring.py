"""The key ring (SPEC §10): the service CA, the JWT signing keys and the refresh-token secrets,
shared by every process through DynamoDB. The newest key of a kind signs; every key verifies until
`citylogin keys retire` removes it, which is refused while tokens it signed may still be valid."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from common.certificates import CertificateAuthority, ca_from_pem, ca_private_key_pem, certificate_fingerprint
from common.config import ConfigError, Settings
from common.crypto import aware_utc
from common.dynamo import StoreRefusal
from common.jwt_keys import (CLOCK_SKEW_SECONDS, ES256, RS256, SigningKey, new_kid, new_signing_key,
                             private_key_pem, public_key_pem, signing_key_from_pem)
from common.key_ring_store import STATE_ACTIVE, STATE_RETIRED, KeyRingStore, RingEntry

CA, JWT, REFRESH = "ca", "jwt", "refresh"
# The ID-token keys of the OpenID Provider (SPEC §14): one kind per algorithm, so that each rotates and
# retires on its own; a ring made before them gets them when a process opens it (add_missing_kinds).
JWT_RSA, JWT_EC = "jwt_rsa", "jwt_ec"
ID_TOKEN_KINDS = {JWT_RSA: RS256, JWT_EC: ES256}
SIGNING_KINDS = (JWT, JWT_RSA, JWT_EC)
ROTATED_KINDS = (JWT, JWT_RSA, JWT_EC, REFRESH)
REQUIRED_KINDS = (CA, JWT, REFRESH)
REFRESH_SECRET_BYTES = 32


class RetireRefused(StoreRefusal):
    """`keys retire` must not remove this key (yet); the message says why."""


# --- entries ----------------------------------------------------------------------------

def ca_entry(ca: CertificateAuthority, *, created_at: datetime) -> RingEntry:
    kid = certificate_fingerprint(ca.certificate)[:16]
    return RingEntry(kind=CA, kid=kid, created_at=created_at, private=ca_private_key_pem(ca),
                     public=ca.certificate_pem())


def jwt_entry(key: SigningKey) -> RingEntry:
    kind = {alg: kind for kind, alg in ID_TOKEN_KINDS.items()}.get(key.algorithm, JWT)
    return RingEntry(kind=kind, kid=key.kid, created_at=key.created_at, private=private_key_pem(key),
                     public=public_key_pem(key))


def refresh_entry(secret: bytes, *, created_at: datetime, kid: str | None = None) -> RingEntry:
    return RingEntry(kind=REFRESH, kid=kid or new_kid(created_at), created_at=created_at, private=secret, public=None)


def imported_refresh_kid(secret: bytes, created_at: datetime) -> str:
    """A stable kid for a secret an older version kept in a file (the same on every importer)."""
    return f"{new_kid(created_at).rsplit('-', 1)[0]}-{hashlib.sha256(secret).hexdigest()[:8]}"


def new_entry(kind: str, *, created_at: datetime) -> RingEntry:
    if kind == JWT:
        return jwt_entry(new_signing_key(created_at))
    if kind in ID_TOKEN_KINDS:
        return jwt_entry(new_signing_key(created_at, ID_TOKEN_KINDS[kind]))
    if kind == REFRESH:
        return refresh_entry(secrets.token_bytes(REFRESH_SECRET_BYTES), created_at=created_at)
    raise ValueError(f"no new {kind} key is made by rotation")


# --- what was read --------------------------------------------------------------------------

@dataclass(frozen=True)
class RingContents:
    entries: tuple[RingEntry, ...]

    def of(self, kind: str) -> list[RingEntry]:
        """The keys of one kind that are not retired, oldest first."""
        return sorted((e for e in self.entries if e.kind == kind and e.state == STATE_ACTIVE),
                      key=lambda e: (e.created_at, e.kid))

    def retired(self) -> list[RingEntry]:
        return sorted((e for e in self.entries if e.state == STATE_RETIRED), key=lambda e: (e.created_at, e.kid))

    def without(self, key_ids: set[str]) -> "RingContents":
        """The ring with these keys counted as retired (a process never takes back a retirement it saw)."""
        return RingContents(tuple(e if e.key_id not in key_ids or e.state != STATE_ACTIVE else
                                  RingEntry(kind=e.kind, kid=e.kid, created_at=e.created_at, private=b"",
                                            public=None, state=STATE_RETIRED) for e in self.entries))

    def newest(self, kind: str) -> RingEntry:
        return self.of(kind)[-1]

    def certificate_authority(self) -> CertificateAuthority:
        entry = self.newest(CA)
        if entry.public is None:  # ca_entry always writes the certificate; an item without it was not written here
            raise ConfigError(f"the key ring's CA {entry.kid} has no certificate")
        return ca_from_pem(entry.public, entry.private.decode())

    def signing_keys(self) -> list[SigningKey]:
        return [signing_key_from_pem(e.private, kid=e.kid, created_at=e.created_at)
                for kind in SIGNING_KINDS for e in self.of(kind)]

    def refresh_secrets(self) -> list[tuple[str, bytes]]:
        """(kid, secret) oldest first."""
        return [(e.kid, e.private) for e in self.of(REFRESH)]

    def missing_kinds(self) -> list[str]:
        return [kind for kind in REQUIRED_KINDS if not self.of(kind)]

    def missing_id_token_kinds(self) -> list[str]:
        return [kind for kind in ID_TOKEN_KINDS if not self.of(kind)]


# --- opening, rotating, retiring -----------------------------------------------------------

def ensure_ring(store: KeyRingStore, *, initial: Callable[[], list[RingEntry]],
                now: datetime | None = None) -> tuple[RingContents, bool]:
    """The ring, created from `initial()` if there is none; True if this call created it.
    Race-safe: of several processes starting on an empty table, one transaction wins."""
    loaded = store.load()
    created = False
    if loaded is None:
        created = store.create(initial(), now=aware_utc(now))
        loaded = store.load()
    return _complete(store, loaded), created


def add_missing_kinds(store: KeyRingStore, contents: RingContents, *, now: datetime | None = None) -> RingContents:
    """The ring with an ID-token key of every algorithm (SPEC §14): a ring made by an older version
    gets its RSA and P-256 keys from the first process that opens it. Two processes doing so at once
    add two keys of a kind, which is harmless: the newest signs, both verify."""
    missing = contents.missing_id_token_kinds()
    for kind in missing:
        store.add(new_entry(kind, created_at=aware_utc(now)))
    return _complete(store, store.load()) if missing else contents


def read_ring(store: KeyRingStore) -> RingContents:
    """The existing ring; ConfigError telling to run `citylogin init` if there is none."""
    return _complete(store, store.load())


def _complete(store: KeyRingStore, loaded: list[RingEntry] | None) -> RingContents:
    if loaded is None:
        raise ConfigError(f"no key ring in the DynamoDB table {store.table}: run `citylogin init` first "
                          "(or set CITYLOGIN_CREATE_TABLES=true)")
    contents = RingContents(tuple(loaded))
    if contents.missing_kinds():
        raise ConfigError(f"the key ring in {store.table} has no {', '.join(contents.missing_kinds())} key")
    return contents


def rotate(store: KeyRingStore, *, now: datetime | None = None) -> list[RingEntry]:
    """Add a new key of each rotated kind (the JWT keys, the refresh secret); each becomes the newest of
    its kind. All are made at one moment, so they come into use together (an RSA key takes a while
    to generate: the next kind's clock must not run on meanwhile)."""
    contents, added, moment = read_ring(store), [], aware_utc(now)
    for kind in ROTATED_KINDS:
        created_at = moment
        newest = contents.newest(kind).created_at if contents.of(kind) else created_at - timedelta(seconds=1)
        if created_at <= newest:  # a clock stepped back must not leave an older key signing
            created_at = newest + timedelta(microseconds=1)
        entry = new_entry(kind, created_at=created_at)
        store.add(entry)
        added.append(entry)
    return added


def _find(contents: RingContents, kid: str) -> RingEntry:
    matches = [e for e in contents.entries if kid in (e.kid, e.key_id)]
    if len(matches) != 1:
        raise RetireRefused(f"no key {kid} in the ring" if not matches else f"{kid} is ambiguous: name it kind#kid")
    if matches[0].state != STATE_ACTIVE:
        raise RetireRefused(f"{matches[0].key_id} is already retired")
    return matches[0]


def retirable_at(contents: RingContents, entry: RingEntry, settings: Settings) -> datetime | None:
    """When tokens signed with `entry` can no longer be valid; None for the CA and the newest key."""
    if entry.kind not in ROTATED_KINDS:
        return None
    newer = [e for e in contents.of(entry.kind) if (e.created_at, e.kid) > (entry.created_at, entry.kid)]
    if not newer:
        return None
    # Processes go on signing with `entry` until they reload the ring after the next key appeared.
    signed_until = newer[0].created_at + timedelta(seconds=settings.key_ring_reload_seconds)
    if entry.kind == JWT:
        return signed_until + timedelta(seconds=settings.access_token_ttl + CLOCK_SKEW_SECONDS)
    if entry.kind in ID_TOKEN_KINDS:  # an ID token is checked once, when it arrives, and lives an hour at most
        return signed_until + timedelta(seconds=3600 + CLOCK_SKEW_SECONDS)
    return signed_until + timedelta(seconds=settings.session_max_lifetime)  # a session's refresh tokens end with it


def retire(store: KeyRingStore, *, kid: str, settings: Settings, force: bool = False,
           now: datetime | None = None) -> RingEntry:
    """Retire one key (its item becomes a tombstone without the key); RetireRefused for the CA, the
    newest of a kind, or (unless `force`) too early. Every process drops it within its reload interval."""
    contents = read_ring(store)
    entry = _find(contents, kid)
    if entry.kind == CA:
        raise RetireRefused("the CA cannot be retired: every device certificate was issued by it")
    until = retirable_at(contents, entry, settings)
    if until is None:
        raise RetireRefused(f"{entry.key_id} is the newest {entry.kind} key: rotate first")
    if not force and aware_utc(now) < until:
        raise RetireRefused(f"{entry.key_id} may still have signed valid tokens until {until:%Y-%m-%d %H:%M:%S} UTC "
                            "(--force retires it now and ends them)")
    if not store.retire(entry, now=aware_utc(now)):
        raise RetireRefused(f"{entry.key_id} was retired meanwhile")
    return entry


def describe(contents: RingContents, *, now: datetime | None = None) -> list[dict]:
    """Kind, kid, age and role of every key, retired ones last: never private material."""
    now = aware_utc(now)
    rows = []
    for kind in (CA, *ROTATED_KINDS):
        entries = contents.of(kind)
        for entry in entries:
            role = "signing" if entry is entries[-1] else "verify-only"
            rows.append({"kind": kind, "kid": entry.kid, "created_at": entry.created_at,
                         "age_seconds": int((now - entry.created_at).total_seconds()), "state": role})
    for entry in contents.retired():
        rows.append({"kind": entry.kind, "kid": entry.kid, "created_at": entry.created_at,
                     "age_seconds": int((now - entry.created_at).total_seconds()), "state": STATE_RETIRED})
    return rows
