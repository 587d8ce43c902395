"""A backup of the key ring in one file (`citylogin keys backup` / `keys restore`): every key and tombstone
of the ring and the ring's state (its version and retired keys), sealed under the key-encryption key as
the ring's items are, so that the file alone reveals no key.

The envelope: a random data key seals the keys (AES-256-GCM); the key-encryption key (AES-GCM or KMS,
the store's KeyEncryptor) seals the data key, bound to a digest of the file's clear part, and seals a
check value bound to the backup's id alone. So opening tells a wrong key-encryption key (the check does
not open) from an edited clear part (the data key does not open) and from edited or damaged keys (the
keys do not open), and each refusal names the file and what is wrong."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.config import ConfigError
from common.keys.encryption import KeyEncryptor, MalformedSeal, WrongKeyEncryptionKey
from common.keys.ring import RingContents
from common.keys.ring_store import STATE_ACTIVE, STATE_RETIRED, RingEntry, RingState

FORMAT = "citylogin-key-ring-backup"
FORMAT_VERSION = 1
_CHECK = b"citylogin-key-ring-backup"  # what the check seals
_NONCE_BYTES = 12
_CLEAR = ("format", "format_version", "backup_id", "made_at", "table", "ring_version", "sealed_with", "keys")
_MEMBERS = frozenset({*_CLEAR, "sealed"})
# The largest file `keys restore` reads. A new ring's backup is about 8 KB and each `keys rotate` adds about
# 1.1 KB (a JWT key and a refresh secret, kept as tombstones once retired): rotated daily for ten years,
# about 4 MB. Anything larger is no backup of ours, and a path such as /dev/zero has no end.
MAX_BACKUP_BYTES = 16 * 1024 * 1024


class BackupRefused(ConfigError):
    """A backup file that is not restored; the message names the file and what is wrong."""


@dataclass(frozen=True)
class RingBackup:
    """What a backup holds, opened: the keys (tombstones too) and the ring's state when it was made."""

    entries: tuple[RingEntry, ...]
    ring: RingState
    table: str  # the table it was made from
    made_at: str


def make_backup(contents: RingContents, *, table: str, encryptor: KeyEncryptor, now: datetime) -> str:
    """The backup file's text (JSON) of the ring as read."""
    backup_id = secrets.token_hex(16)
    clear = {"format": FORMAT, "format_version": FORMAT_VERSION, "backup_id": backup_id,
             "made_at": now.isoformat(), "table": table, "ring_version": contents.ring.version,
             "sealed_with": encryptor.method,
             "keys": [{"kind": e.kind, "kid": e.kid, "state": e.state} for e in contents.entries]}
    payload = json.dumps({"ring": _ring_json(contents.ring), "entries": [_entry_json(e) for e in contents.entries]})
    data_key, nonce = AESGCM.generate_key(bit_length=256), secrets.token_bytes(_NONCE_BYTES)
    keys = AESGCM(data_key).encrypt(nonce, payload.encode(), _canonical(clear))
    sealed = {"check": _b64(encryptor.seal(_CHECK, identity=_check_identity(backup_id))),
              "data_key": _b64(encryptor.seal(data_key, identity=_key_identity(clear))),
              "nonce": _text(nonce), "keys": _text(keys)}
    return json.dumps({**clear, "sealed": sealed}, indent=1) + "\n"


def open_backup(text: bytes, *, name: str, encryptor: KeyEncryptor) -> RingBackup:
    """The ring a backup file holds; BackupRefused naming `name` if it is not a backup, was sealed under
    another key-encryption key, or was edited or damaged."""
    document = _document(text, name)
    clear, sealed = {field: document[field] for field in _CLEAR}, document["sealed"]
    if clear["sealed_with"] != encryptor.method:
        raise BackupRefused(f"{name} was sealed with {clear['sealed_with']}, and this command seals with "
                            f"{encryptor.method}: set {encryptor.variable} to the key the backup was made with")
    try:
        check = encryptor.open(_bytes_of(sealed, "check", name), identity=_check_identity(clear["backup_id"]))
    except MalformedSeal:
        raise BackupRefused(f"{name} is damaged: its check value is not one sealing makes") from None
    except WrongKeyEncryptionKey:
        raise BackupRefused(f"{name} does not open under {encryptor.variable}: it was sealed under another "
                            "key-encryption key") from None
    if check != _CHECK:
        raise BackupRefused(f"{name} was edited: its check value is not a backup's")
    sealed_key = _bytes_of(sealed, "data_key", name)
    nonce, keys = _bytes(sealed.get("nonce"), name, "nonce"), _bytes(sealed.get("keys"), name, "keys")
    try:
        data_key = encryptor.open(sealed_key, identity=_key_identity(clear))
    except WrongKeyEncryptionKey:  # MalformedSeal too: the check opened, so the key is right
        raise BackupRefused(f"{name} was edited: its clear part (table, version, list of keys) is not what "
                            "was sealed") from None
    try:
        payload = AESGCM(data_key).decrypt(nonce, keys, _canonical(clear))
    except (InvalidTag, ValueError):  # ValueError: a nonce of another length
        raise BackupRefused(f"{name} was edited or damaged: its sealed keys do not open") from None
    return _ring_backup(payload, clear, name)


def _document(text: bytes, name: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"{name} is not a key ring backup: not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupRefused(f"{name} is not a key ring backup (no \"format\": \"{FORMAT}\")")
    if document.get("format_version") != FORMAT_VERSION:
        raise BackupRefused(f"{name} is a backup of format version {document.get('format_version')!r}; this "
                            f"citylogin reads version {FORMAT_VERSION}")
    unknown = sorted(set(document) - _MEMBERS)
    if unknown:
        raise BackupRefused(f"{name} is not a backup this citylogin made: it holds members a backup has not "
                            f"({_names(unknown)})")
    missing = [field for field in (*_CLEAR, "sealed") if field not in document]
    if missing or not isinstance(document["sealed"], dict) or not isinstance(document["backup_id"], str):
        raise BackupRefused(f"{name} is damaged: {', '.join(missing) or 'sealed'} missing or not of its kind")
    return document


def _names(members: list[str]) -> str:
    """Members of a file as a one-line message may name them: quoted and escaped, the first three, cut short."""
    shown = ", ".join(json.dumps(member[:40]) for member in members[:3])
    return shown + (f" and {len(members) - 3} more" if len(members) > 3 else "")


def _ring_backup(payload: bytes, clear: dict[str, Any], name: str) -> RingBackup:
    try:  # sealed by make_backup, so always of its form: read defensively all the same
        opened = json.loads(payload)
        entries = tuple(_entry_of(item) for item in opened["entries"])
        ring = _ring_of(opened["ring"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupRefused(f"{name} holds keys of a form this citylogin does not read ({exc!r})") from None
    listed = [{"kind": e.kind, "kid": e.kid, "state": e.state} for e in entries]
    if listed != clear["keys"]:  # sealed together, so never: a check that the format is read as written
        raise BackupRefused(f"{name} was edited: its list of keys is not the keys it holds")
    return RingBackup(entries, ring, clear["table"], clear["made_at"])


def _entry_json(entry: RingEntry) -> dict[str, Any]:
    return {"kind": entry.kind, "kid": entry.kid, "created_at": entry.created_at.isoformat(), "state": entry.state,
            "private": _text(entry.private), "public": entry.public,
            "known": _ring_json(entry.known) if entry.known is not None else None}


def _entry_of(item: dict[str, Any]) -> RingEntry:
    state = item["state"]
    if state not in (STATE_ACTIVE, STATE_RETIRED):
        raise ValueError(state)
    return RingEntry(kind=item["kind"], kid=item["kid"], created_at=datetime.fromisoformat(item["created_at"]),
                     private=base64.b64decode(item["private"]), public=item["public"], state=state,
                     known=_ring_of(item["known"]) if item["known"] is not None else None)


def _ring_json(ring: RingState) -> dict[str, Any]:
    return {"version": ring.version, "retired": sorted(ring.retired)}


def _ring_of(value: dict[str, Any]) -> RingState:
    return RingState(int(value["version"]), frozenset(value["retired"]))


def _canonical(clear: dict[str, Any]) -> bytes:
    return json.dumps(clear, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _check_identity(backup_id: str) -> str:
    return f"{FORMAT}:{backup_id}"


def _key_identity(clear: dict[str, Any]) -> str:
    """What the data key is bound to: the backup and a digest of its clear part (short, for a KMS context)."""
    return f"{FORMAT}:{clear['backup_id']}:{hashlib.sha256(_canonical(clear)).hexdigest()}"


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64(sealed: dict[str, bytes]) -> dict[str, str]:
    return {part: _text(value) for part, value in sealed.items()}


def _bytes(value: Any, name: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise BackupRefused(f"{name} is damaged: its {what} is not base64") from None


def _bytes_of(sealed: dict[str, Any], part: str, name: str) -> dict[str, bytes]:
    value = sealed.get(part)
    if not isinstance(value, dict):
        raise BackupRefused(f"{name} is damaged: its sealed {part} is missing")
    return {key: _bytes(raw, name, f"{part}.{key}") for key, raw in value.items()}
