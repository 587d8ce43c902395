"""The key ring (SPEC §10): the service CA, the JWT signing keys and the refresh-token secrets,
shared by every process through DynamoDB. The newest key of a kind signs; every key verifies until
`citylogin keys retire` removes it, which is refused while tokens it signed may still be valid.
A retirement stays: a key that any record of the ring names as retired is retired, whatever its own
item says (common.keys.ring_store: what each record carries)."""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from common.config import ConfigError, Settings
from common.timefmt import aware_utc
from common.crypto.certificates import CertificateAuthority, ca_from_pem, ca_private_key_pem, certificate_fingerprint
from common.database.dynamo import StoreRefusal
from common.keys.jwt_keys import (CLOCK_SKEW_SECONDS, ES256, RS256, ParsedSigningKeys, SigningKey, new_kid,
                                  new_signing_key, private_key_pem, public_key_pem, signing_key_from_pem)
from common.keys.ring_store import (MANIFEST_KEY_ID, STATE_ACTIVE, STATE_RETIRED, KeyRingStore, LoadedRing, Refusal,
                                    RingEntry, RingMoved, RingState)

log = logging.getLogger(__name__)

CA, JWT, REFRESH = "ca", "jwt", "refresh"
# The ID-token keys of the OpenID Provider (SPEC §14): one kind per algorithm, so that each rotates and
# retires on its own; a ring made before them gets them when a process opens it (add_missing_kinds).
JWT_RSA, JWT_EC = "jwt_rsa", "jwt_ec"
ID_TOKEN_KINDS = {JWT_RSA: RS256, JWT_EC: ES256}
SIGNING_KINDS = (JWT, JWT_RSA, JWT_EC)
ROTATED_KINDS = (JWT, JWT_RSA, JWT_EC, REFRESH)
REQUIRED_KINDS = (CA, JWT, REFRESH)
REFRESH_SECRET_BYTES = 32
RETIRE_ATTEMPTS = 5  # retirements racing: each loser reads the ring again and retires on top of the winner


class NoKeyRing(ConfigError):
    """The table holds no key ring (`citylogin init` makes one)."""


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
    ring: RingState = RingState()  # what its records say together: the newest version, every retired key
    contradicted: frozenset[str] = frozenset()  # keys whose active item the records say were retired: refused
    manifest_behind: bool = False  # a record names a newer version than the manifest (or there is none)
    manifest_stored: str | None = None  # the manifest's version as stored: the next retirement's condition
    refused: tuple[Refusal, ...] = ()  # items written or edited without the key-encryption key: never learnt

    def of(self, kind: str) -> list[RingEntry]:
        """The keys of one kind that are not retired, oldest first."""
        return sorted((e for e in self.entries if e.kind == kind and e.state == STATE_ACTIVE),
                      key=lambda e: (e.created_at, e.kid))

    def retired(self) -> list[RingEntry]:
        return sorted((e for e in self.entries if e.state == STATE_RETIRED), key=lambda e: (e.created_at, e.kid))

    def without(self, key_ids: set[str]) -> "RingContents":
        """The ring with these keys counted as retired (a process never takes back a retirement it saw)."""
        return replace(self, entries=tuple(e if e.key_id not in key_ids or e.state != STATE_ACTIVE else
                                           replace(e, private=b"", public=None, state=STATE_RETIRED)
                                           for e in self.entries))

    def contradictions(self) -> frozenset[str]:
        """What a process reports once: each contradicted key, the manifest if it is behind, and each item
        refused."""
        return (self.contradicted | ({MANIFEST_KEY_ID} if self.manifest_behind else frozenset())
                | {refusal.key for refusal in self.refused})

    def newest(self, kind: str) -> RingEntry:
        return self.of(kind)[-1]

    def certificate_authority(self) -> CertificateAuthority:
        entry = self.newest(CA)
        if entry.public is None:  # ca_entry always writes the certificate; an item without it was not written here
            raise ConfigError(f"the key ring's CA {entry.kid} has no certificate")
        try:
            return ca_from_pem(entry.public, entry.private.decode())
        except ValueError:  # the certificate is not sealed: edited without the key-encryption key
            raise ConfigError(f"the key ring's CA {entry.kid} has a certificate that is not its key's") from None

    def signing_keys(self, parsed: ParsedSigningKeys | None = None) -> list[SigningKey]:
        """The signing keys, oldest first within each kind; through `parsed`, each parsed once per process."""
        entries = [(e.private, e.kid, e.created_at) for kind in SIGNING_KINDS for e in self.of(kind)]
        if parsed is not None:
            return parsed.keys(entries)
        return [signing_key_from_pem(pem, kid=kid, created_at=created_at, from_ring=True)
                for pem, kid, created_at in entries]

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
    return _complete(store, loaded, reported=set()), created


def add_missing_kinds(store: KeyRingStore, contents: RingContents, *, now: datetime | None = None) -> RingContents:
    """The ring with an ID-token key of every algorithm (SPEC §14): a ring made by an older version
    gets its RSA and P-256 keys from the first process that opens it. Two processes doing so at once
    add two keys of a kind, which is harmless: the newest signs, both verify."""
    missing = contents.missing_id_token_kinds()
    for kind in missing:
        store.add(_added(new_entry(kind, created_at=aware_utc(now)), contents))
    return read_ring(store, reported=set(contents.contradictions())) if missing else contents


def read_ring(store: KeyRingStore, *, reported: set[str] | None = None) -> RingContents:
    """The existing ring; ConfigError telling to run `citylogin init` if there is none. Each
    contradiction is logged (an ERROR) unless `reported` holds it already; it is added there."""
    return _complete(store, store.load(), reported=set() if reported is None else reported)


def report_contradictions(store: KeyRingStore, contents: RingContents, reported: set[str]) -> None:
    """One ERROR for each contradiction not in `reported` (then added to it): a key whose active item
    the ring's records say was retired, a manifest behind those records, or an item refused (it does not
    open, or is malformed). Names keys, never secrets."""
    for refusal in contents.refused:
        if refusal.key not in reported:
            reported.add(refusal.key)
            log.error("%s", refusal.message(store.table))
    for key_id in sorted(contents.contradicted - reported):
        log.error("key ring item %s in %s contradicts the ring, whose records say the key was retired: it was put "
                  "back without the key-encryption key or from a backup. Refused: the key neither signs nor "
                  "verifies (`citylogin keys retire %s` writes its tombstone again)", key_id, store.table, key_id)
    if contents.manifest_behind and MANIFEST_KEY_ID not in reported:
        log.error("the key ring's manifest in %s is missing or older than the records of the ring (version %s): "
                  "put back or deleted without the key-encryption key, or from a backup. The retirements those "
                  "records name still hold; the next retirement writes it again", store.table, contents.ring.version)
    reported |= contents.contradictions()


def _complete(store: KeyRingStore, loaded: LoadedRing | None, *, reported: set[str]) -> RingContents:
    """The ring as recorded, its contradictions reported (before a kind found missing stops the start)."""
    if loaded is None:
        raise NoKeyRing(f"no key ring in the DynamoDB table {store.table}: run `citylogin init` first "
                          "(or set CITYLOGIN_CREATE_TABLES=true)")
    contents = _as_recorded(loaded)
    report_contradictions(store, contents, reported)
    if contents.missing_kinds():
        raise ConfigError(f"the key ring in {store.table} has no {', '.join(contents.missing_kinds())} key")
    return contents


def _as_recorded(loaded: LoadedRing) -> RingContents:
    """The ring as its records say together: the union of the retired keys that the manifest, every
    tombstone and every key added since a retirement name (each sealed; an older copy put back still
    names what it named then). An active item of a key in that union was put back: it counts as retired."""
    records = [e.known for e in loaded.entries if e.known is not None]
    records += [loaded.manifest] if loaded.manifest is not None else []
    retired = frozenset({e.key_id for e in loaded.entries if e.state == STATE_RETIRED}.union(
        *(record.retired for record in records)))
    version = max((record.version for record in records), default=0)
    contradicted = frozenset(e.key_id for e in loaded.entries if e.state == STATE_ACTIVE and e.key_id in retired)
    return RingContents(tuple(loaded.entries), ring=RingState(version, retired), contradicted=contradicted,
                        manifest_behind=version > (loaded.manifest.version if loaded.manifest else 0),
                        manifest_stored=loaded.manifest_stored, refused=loaded.refused).without(set(contradicted))


def _added(entry: RingEntry, contents: RingContents) -> RingEntry:
    """A new key carrying the ring's retired keys (bound into its item's key), once there are any."""
    return replace(entry, known=contents.ring) if contents.ring.retired else entry


def rotate(store: KeyRingStore, *, now: datetime | None = None,
           kinds: tuple[str, ...] = ROTATED_KINDS) -> list[RingEntry]:
    """Add a new key of each rotated kind (the JWT keys, the refresh secret), or of the `kinds` named; each
    becomes the newest of its kind. All are made at one moment, so they come into use together (an RSA
    key takes a while to generate: the next kind's clock must not run on meanwhile)."""
    unknown = sorted(set(kinds) - set(ROTATED_KINDS))
    if unknown or not kinds:
        raise ValueError(f"kinds to rotate: some of {', '.join(ROTATED_KINDS)} (not {', '.join(unknown)})")
    contents, added, moment = read_ring(store), [], aware_utc(now)
    for kind in (kind for kind in ROTATED_KINDS if kind in kinds):
        created_at = moment
        newest = contents.newest(kind).created_at if contents.of(kind) else created_at - timedelta(seconds=1)
        if created_at <= newest:  # a clock stepped back must not leave an older key signing
            created_at = newest + timedelta(microseconds=1)
        entry = _added(new_entry(kind, created_at=created_at), contents)
        store.add(entry)
        added.append(entry)
    return added


def _find(contents: RingContents, kid: str) -> RingEntry:
    """The key to retire: an active one, or one whose active item contradicts the ring (put back)."""
    matches = [e for e in contents.entries if kid in (e.kid, e.key_id)]
    if len(matches) != 1:
        raise RetireRefused(f"no key {kid} in the ring" if not matches else f"{kid} is ambiguous: name it kind#kid")
    if matches[0].state != STATE_ACTIVE and matches[0].key_id not in contents.contradicted:
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
    """Retire one key: its item becomes a tombstone without the key, and the ring's manifest names it, in
    one transaction. RetireRefused for the CA, the newest of a kind, or (unless `force`) too early.
    Every process drops it within its reload interval. A key whose old item was put back over its
    tombstone (refused already) gets its tombstone again, without the checks."""
    moment, reported = aware_utc(now), set[str]()
    for _ in range(RETIRE_ATTEMPTS):
        contents = read_ring(store, reported=reported)
        entry = _find(contents, kid)
        if entry.key_id not in contents.contradicted:
            _check_retirable(contents, entry, settings, force=force, now=moment)
        try:
            if not store.retire(entry, ring=contents.ring.after_retiring(entry.key_id),
                                manifest_read=contents.manifest_stored, now=moment):
                raise RetireRefused(f"{entry.key_id} was retired meanwhile")
            return entry
        except RingMoved:
            continue  # another key was retired meanwhile: this one goes on top of it
    raise RetireRefused(f"the key ring in {store.table} kept changing during {RETIRE_ATTEMPTS} attempts: try again")


def _check_retirable(contents: RingContents, entry: RingEntry, settings: Settings, *, force: bool,
                     now: datetime) -> None:
    if entry.kind == CA:
        raise RetireRefused("the CA cannot be retired: every device certificate was issued by it")
    until = retirable_at(contents, entry, settings)
    if until is None:
        raise RetireRefused(f"{entry.key_id} is the newest {entry.kind} key: rotate first")
    if not force and now < until:
        raise RetireRefused(f"{entry.key_id} may still have signed valid tokens until {until:%Y-%m-%d %H:%M:%S} UTC "
                            "(--force retires it now and ends them)")


def describe(contents: RingContents, *, now: datetime | None = None) -> list[dict[str, Any]]:
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
