"""A queued mail's recipient and parameters (a link's one-time token among them), sealed at rest in the
outbox: AES-256-GCM under a key derived (HKDF-SHA256) from the key ring's newest refresh secret, the
kid stored beside it, the mail's id and account as associated data. Every process that reads the key
ring opens what another sealed; nothing else can, and a sealed value moved to another item does not open."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.mail.message import LINK_KINDS, Link, Param

_INFO = b"citylogin mail outbox v1"
_NONCE_BYTES = 12


class SecretsByKid(Protocol):
    """The key ring's refresh secrets (common.keys.ring_reader.RefreshSecrets)."""

    def newest_kid(self) -> str: ...

    def get(self, kid: str) -> bytes | None: ...


class Unsealable(Exception):
    """A sealed value that does not open: its key left the ring, or it was not sealed for this item."""


@dataclass(frozen=True)
class Contents:
    email: str | None
    params: Mapping[str, Param]


def _key(secret: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret))


def _associated(mail_id: str, user_uuid: str) -> bytes:
    return f"mail:{mail_id}:{user_uuid}".encode()


def seal(contents: Contents, *, secrets: SecretsByKid, mail_id: str, user_uuid: str) -> tuple[str, bytes]:
    """(the kid, nonce + ciphertext) of `contents`."""
    kid = secrets.newest_kid()
    secret = secrets.get(kid)
    if secret is None:  # the ring names a kid it does not hold: a broken ring
        raise LookupError(f"refresh secret {kid} is not in the key ring")
    plain = json.dumps({"email": contents.email, "params": {name: _plain(value) for name, value in
                                                            contents.params.items()}}, separators=(",", ":"))
    nonce = os.urandom(_NONCE_BYTES)
    return kid, nonce + _key(secret).encrypt(nonce, plain.encode(), _associated(mail_id, user_uuid))


def open_sealed(kid: str, sealed: bytes, *, secrets: SecretsByKid, mail_id: str, user_uuid: str) -> Contents:
    secret = secrets.get(kid)
    if secret is None or len(sealed) <= _NONCE_BYTES:
        raise Unsealable(f"mail {mail_id}: its key {kid} is not in the key ring")
    try:
        plain = _key(secret).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _associated(mail_id, user_uuid))
    except InvalidTag:
        raise Unsealable(f"mail {mail_id}: its sealed contents do not open") from None
    data = json.loads(plain)
    return Contents(email=data["email"], params={name: _param(value) for name, value in data["params"].items()})


def _plain(value: Param) -> Any:
    return {"link": [value.kind, value.token]} if isinstance(value, Link) else value


def _param(value: Any) -> Param:
    if isinstance(value, dict):
        kind, token = value["link"]
        if kind not in LINK_KINDS:
            raise Unsealable(f"a link of an unknown kind {kind!r}")
        return Link(kind, token)
    return value
