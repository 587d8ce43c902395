"""The key-encryption key that seals the private half of the key ring (SPEC §10): AES-256-GCM
under CITYLOGIN_KEY_ENCRYPTION_KEY, or AWS KMS under CITYLOGIN_KMS_KEY_ID. It never goes into DynamoDB."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.config import ConfigError, Settings, decode_key_encryption_key, env_name

log = logging.getLogger(__name__)

LOCAL_KEK_FILE = "key-encryption.key"
_NONCE_BYTES = 12  # 96 bits, the GCM nonce size (NIST SP 800-38D 8.2)
_TAG_BYTES = 16  # what AESGCM appends to every ciphertext
_KMS_CIPHERTEXT_BYTES = 6144  # the longest CiphertextBlob KMS Decrypt takes (a longer one: ValidationException)
_KMS_CONTEXT_KEY = "citylogin-key-ring"
# KMS answers these when the ciphertext was sealed under another key or another context.
_KMS_WRONG_KEY_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException",
                                  "AccessDeniedException", "NotFoundException", "DisabledException"})


class WrongKeyEncryptionKey(ConfigError):
    """The configured key-encryption key does not open the key ring; the message names the variable."""


class MalformedSeal(WrongKeyEncryptionKey):
    """A sealed value that no key-encryption key made: a part missing, not bytes, or of a length the cipher
    refuses (written without the key). Refused as a forged one; it says nothing of the configured key."""


def _part(sealed: dict[str, bytes], name: str, *, shortest: int, longest: int | None, identity: str) -> bytes:
    """One part of a sealed value, checked before it reaches the cipher (which raises ValueError, or
    sends KMS a request it refuses, for a part of the wrong kind)."""
    value = sealed.get(name)
    if not isinstance(value, bytes) or len(value) < shortest or (longest is not None and len(value) > longest):
        raise MalformedSeal(f"the sealed value of {identity} has no {name} of the length sealing gives it: "
                            "it was not sealed under a key-encryption key")
    return value


class KeyEncryptor(Protocol):
    method: str
    variable: str

    def seal(self, plaintext: bytes, *, identity: str) -> dict[str, bytes]: ...

    def open(self, sealed: dict[str, bytes], *, identity: str) -> bytes: ...


class AesGcmKeyEncryptor:
    """AES-256-GCM with a random 96-bit nonce; the item's identity is the associated data."""

    method = "aes-gcm"

    def __init__(self, key: bytes, *, variable: str) -> None:
        self._aead, self.variable = AESGCM(key), variable

    def seal(self, plaintext: bytes, *, identity: str) -> dict[str, bytes]:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return {"nonce": nonce, "ciphertext": self._aead.encrypt(nonce, plaintext, identity.encode())}

    def open(self, sealed: dict[str, bytes], *, identity: str) -> bytes:
        """The plaintext; WrongKeyEncryptionKey if it does not open under this key as `identity`'s,
        MalformedSeal if it could not have been sealed by any key."""
        nonce = _part(sealed, "nonce", shortest=_NONCE_BYTES, longest=_NONCE_BYTES, identity=identity)
        ciphertext = _part(sealed, "ciphertext", shortest=_TAG_BYTES, longest=None, identity=identity)
        try:
            return self._aead.decrypt(nonce, ciphertext, identity.encode())
        except InvalidTag:
            raise WrongKeyEncryptionKey(f"{self.variable} does not decrypt the key ring ({identity}): "
                                        "it was sealed under another key-encryption key") from None


class KmsKeyEncryptor:
    """AWS KMS Encrypt/Decrypt; the encryption context names the item, so a sealed value moved to
    another item does not open."""

    method = "kms"

    def __init__(self, client: Any, key_id: str) -> None:
        self._client, self._key_id, self.variable = client, key_id, env_name("kms_key_id")

    def _context(self, identity: str) -> dict[str, str]:
        return {_KMS_CONTEXT_KEY: identity}

    def seal(self, plaintext: bytes, *, identity: str) -> dict[str, bytes]:
        answer = self._client.encrypt(KeyId=self._key_id, Plaintext=plaintext,
                                      EncryptionContext=self._context(identity))
        return {"ciphertext": answer["CiphertextBlob"]}

    def open(self, sealed: dict[str, bytes], *, identity: str) -> bytes:
        """The plaintext; WrongKeyEncryptionKey if KMS does not open it under this key as `identity`'s,
        MalformedSeal if it could not have been sealed by KMS (checked first: KMS would refuse the request)."""
        ciphertext = _part(sealed, "ciphertext", shortest=1, longest=_KMS_CIPHERTEXT_BYTES, identity=identity)
        try:
            return self._client.decrypt(KeyId=self._key_id, CiphertextBlob=ciphertext,
                                        EncryptionContext=self._context(identity))["Plaintext"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _KMS_WRONG_KEY_CODES:
                raise
            raise WrongKeyEncryptionKey(f"{self.variable} does not decrypt the key ring ({identity}): "
                                        "it was sealed under another KMS key, or this key is not usable") from None


def local_key_encryption_key(keys_dir: Path) -> bytes:
    """The key-encryption key a local engine's process keeps in keys_dir (mode 0600), made on first use."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / LOCAL_KEK_FILE
    if write_file_once(path, secrets.token_bytes(32), mode=0o600):
        log.warning("generated a key-encryption key in %s (local DynamoDB only); hosts that share this "
                    "DynamoDB need the same key: set %s", path, env_name("key_encryption_key"))
    key = path.read_bytes()
    if len(key) != 32:
        raise ConfigError(f"{path} is not a key-encryption key (32 bytes); remove it or set "
                          f"{env_name('key_encryption_key')}")
    return key


def key_encryptor(settings: Settings, *, kms_client: Any = None) -> KeyEncryptor:
    """The configured key-encryption key; against Amazon DynamoDB one must be configured."""
    if settings.kms_key_id:
        return KmsKeyEncryptor(kms_client or boto3.client("kms", region_name=settings.aws_region), settings.kms_key_id)
    if settings.key_encryption_key is not None:
        return AesGcmKeyEncryptor(decode_key_encryption_key(settings.key_encryption_key),
                                  variable=env_name("key_encryption_key"))
    if settings.uses_dynamodb_local:
        return AesGcmKeyEncryptor(local_key_encryption_key(settings.data_dir / "keys"),
                                  variable=f"the key-encryption key in {settings.data_dir / 'keys' / LOCAL_KEK_FILE} "
                                           f"(or {env_name('key_encryption_key')})")
    raise ConfigError(f"{env_name('key_encryption_key')} (base64 of 32 random bytes) or {env_name('kms_key_id')} "
                      "is required against Amazon DynamoDB")


def write_file_once(path: Path, data: bytes, *, mode: int) -> bool:
    """Atomically create ``path`` holding ``data`` with ``mode``; False if it already exists."""
    # The content is written to a private temp file first (O_EXCL, never wider than `mode`)
    # and then hard-linked into place: link() fails if the name exists, so a racing loser
    # never overwrites the winner and no reader ever sees a half-written key.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # umask may have narrowed a public file's mode
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
