"""Passwords, opaque tokens and digests, device keys and their signatures.

Pure: no Flask, no boto3, no environment reads; every value arrives as an argument.
Certificates live in ``common.certificates``, JWT signing keys in ``common.jwt_keys``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence
from pathlib import Path

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA87PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from common.hash_slots import QUEUE_PER_SLOT, HashSlots, available_cores

log = logging.getLogger(__name__)

DeviceKey = ec.EllipticCurvePublicKey | Ed25519PublicKey | MLDSA87PublicKey

_P256_RAW_SIGNATURE_LEN = 64  # r || s, 32 bytes each (WebCrypto / IEEE P1363 form)


class CryptoInputError(ValueError):
    """Bad client-supplied crypto input; ``field`` names the request field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# --- time and files -------------------------------------------------------------------


def aware_utc(now: datetime | None = None) -> datetime:
    """Return ``now`` (or the current time) as a timezone-aware UTC datetime; naive is refused."""
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime given; pass a timezone-aware UTC datetime")
    return now.astimezone(timezone.utc)


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


def keyed_token(secret: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``secret``, as unpadded URL-safe base64."""
    mac = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


# --- passwords ------------------------------------------------------------------------


Argon2Parameters = tuple[int, int, int]  # (time_cost, memory_cost KiB, parallelism)


def hash_parameters(stored_hash: str) -> Argon2Parameters | None:
    """The Argon2 parameters a stored hash was made with; None if it is not an Argon2 hash."""
    try:
        found = argon2.extract_parameters(stored_hash)
    except InvalidHashError:
        return None
    return found.time_cost, found.memory_cost, found.parallelism


def _dummy_hash(parameters: Argon2Parameters) -> str:
    t, m, p = parameters
    return argon2.PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=argon2.Type.ID).hash(new_token())


class PasswordHasher:
    """Argon2id password hashing with the parameters from config; every hash and verify runs in
    one of `slots` (common/hash_slots.py), so a burst queues or is refused instead of thrashing.

    Hashes made with earlier parameters (until every such account has logged in again) verify more
    slowly or quickly than current ones, so `check` makes every password check verify once per
    parameter set in use: the stored hash for its own set, a dummy for each other. An unknown user,
    a current hash and an older one then cost the same. The sets in use are the current one,
    `legacy` and those `learn` adds (common.password_parameters: the sets the deployment has hashed
    with); a hash of a set not among them calls `on_unknown_set` once per set, from the check."""

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int, slots: HashSlots | None = None,
                 legacy: Sequence[Argon2Parameters] = (),
                 on_unknown_set: Callable[[Argon2Parameters], None] | None = None):
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self.parameters: Argon2Parameters = (time_cost, memory_cost, parallelism)
        self._slots = slots or HashSlots(slots=available_cores(), queue=QUEUE_PER_SLOT * available_cores())
        # One dummy hash per parameter set in use, current first: what a check pays for the sets
        # the stored hash was not made with (for an unknown user, all of them). Replaced whole by
        # `learn`, never changed in place: a check iterates the dict it took.
        self._dummies: dict[Argon2Parameters, str] = {}
        self._learning = threading.Lock()
        self.learn([self.parameters, *legacy])
        self._unknown_seen: set[Argon2Parameters] = set()
        self.on_unknown_set = on_unknown_set

    def known_sets(self) -> list[Argon2Parameters]:
        """The parameter sets every check verifies once, current first."""
        return list(self._dummies)

    def learn(self, sets: Iterable[Argon2Parameters]) -> list[Argon2Parameters]:
        """Make every later check verify a dummy of each of `sets` too; returns those that were new.
        One hash each, outside the slots: call it at start or from a background thread."""
        with self._learning:
            new = [parameters for parameters in dict.fromkeys(sets) if parameters not in self._dummies]
            if new:
                self._dummies = {**self._dummies, **{parameters: _dummy_hash(parameters) for parameters in new}}
        return new

    def hash(self, password: str) -> str:
        """Return the encoded Argon2id hash of ``password`` (random salt)."""
        return self._slots.run(lambda: self._hasher.hash(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """True if ``password`` matches ``stored_hash``; False on mismatch or an unusable hash."""
        return self._slots.run(lambda: self._verified(stored_hash, password))

    def _verified(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        # UnicodeEncodeError: a hash is ASCII, so anything else is not one of ours.
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return False

    def check(self, stored_hash: str | None, password: str) -> bool:
        """``verify`` for a password check that must not tell by its time whether the user exists
        (``stored_hash`` None) or which parameters made the hash: one verify per parameter set in use."""
        dummies = self._dummies
        own = self._parameters(stored_hash, dummies) if stored_hash else None
        # The sets in one order whatever the user: the stored hash takes its own set's turn, so that
        # the same sizes of memory are taken and given back in the same order for every name.
        matched = self.verify(stored_hash, password) if stored_hash and own not in dummies else False
        for parameters, dummy in dummies.items():
            if parameters == own and stored_hash:
                matched = self.verify(stored_hash, password)
            else:
                self.verify(dummy, password)
        return matched

    def _parameters(self, stored_hash: str, known: Mapping[Argon2Parameters, str]) -> Argon2Parameters | None:
        parameters = hash_parameters(stored_hash)
        if parameters is None or parameters in known or parameters in self._unknown_seen:
            return parameters
        self._unknown_seen.add(parameters)  # once per process and set
        log.warning("a stored password hash has Argon2id parameters t=%d,m=%d,p=%d that this process did not "
                    "know: until it does, a failed check of such a hash takes longer than one of an unknown name",
                    *parameters)
        if self.on_unknown_set is not None:
            self.on_unknown_set(parameters)
        return parameters

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if ``stored_hash`` was made with other parameters (or cannot be parsed)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


# --- opaque tokens --------------------------------------------------------------------


def new_token(nbytes: int = 32) -> str:
    """Return ``nbytes`` of CSPRNG output as unpadded URL-safe base64."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str, *, purpose: str) -> str:
    """Lowercase hex SHA-256 of ``f"{purpose}:{token}"``; a distinct purpose per token kind."""
    # A ':' in the purpose would let ("a:b", "c") and ("a", "b:c") share a digest.
    if not purpose or ":" in purpose:
        raise ValueError("purpose must be non-empty and contain no ':'")
    return hashlib.sha256(f"{purpose}:{token}".encode()).hexdigest()


# Lowercase letters and digits without the look-alikes 0/o, 1/i/l: 31 symbols, so 12 of them
# carry 59 bits, read aloud in groups of four (SPEC §4: recovery codes of >= 50 bits).
RECOVERY_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_LENGTH = 12


def new_recovery_code() -> str:
    """A random recovery code such as ``k7qm-x2vd-9hfp``."""
    chars = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(chars[i:i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def compact_recovery_code(text: str) -> str:
    """A typed recovery code without case, spaces or hyphens: the form that is digested."""
    return "".join(ch for ch in text.casefold() if ch not in " -\t")

def digests_equal(a: str, b: str) -> bool:
    """Constant-time equality of two digests (or any two strings)."""
    # Encoding first: compare_digest refuses non-ASCII str instead of returning False.
    return hmac.compare_digest(a.encode(), b.encode())


# --- device keys ----------------------------------------------------------------------


def _key_type_or_none(key: object) -> str | None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa-p256" if isinstance(key.curve, ec.SECP256R1) else None
    if isinstance(key, Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, MLDSA87PublicKey):
        return "ml-dsa-87"
    return None


def _require_supported(key: object, *, field: str) -> DeviceKey:
    if _key_type_or_none(key) is None:
        raise CryptoInputError(
            field, "unsupported key type; use ECDSA P-256, Ed25519 or ML-DSA-87"
        )
    assert isinstance(key, (ec.EllipticCurvePublicKey, Ed25519PublicKey, MLDSA87PublicKey))  # as named above
    return key


def _pem_bytes(pem: object, *, field: str) -> bytes:
    # The value comes straight from a JSON body, so it may be any JSON type.
    if not isinstance(pem, str):
        raise CryptoInputError(field, "must be a PEM string")
    return pem.encode()


def load_device_public_key(pem: str) -> DeviceKey:
    """Parse a supported PEM SubjectPublicKeyInfo, else CryptoInputError("public_key")."""
    data = _pem_bytes(pem, field="public_key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise CryptoInputError("public_key", "not a PEM public key") from None
    return _require_supported(key, field="public_key")


def public_key_from_csr(pem: str) -> DeviceKey:
    """Return the key of a self-signed PEM PKCS#10 request, else CryptoInputError("csr")."""
    data = _pem_bytes(pem, field="csr")
    try:
        csr = x509.load_pem_x509_csr(data)
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CryptoInputError("csr", "not a PEM certificate signing request") from None
    key = _require_supported(key, field="csr")
    try:
        signed_by_key = csr.is_signature_valid  # proves the requester holds the private key
    except (ValueError, UnsupportedAlgorithm):
        signed_by_key = False
    if not signed_by_key:
        raise CryptoInputError("csr", "the request's signature does not verify")
    return key


def generate_device_key() -> tuple[str, DeviceKey]:
    """New ECDSA P-256 key pair: (unencrypted PKCS#8 PEM of the private key, public key)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private_pem.decode(), private_key.public_key()


def public_key_pem(key) -> str:
    """PEM SubjectPublicKeyInfo of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_type_name(key) -> str:
    """"ecdsa-p256", "ed25519" or "ml-dsa-87"; TypeError for any other key."""
    name = _key_type_or_none(key)
    if name is None:
        raise TypeError(f"unsupported device key type {type(key).__name__}")
    return name


# --- signatures -----------------------------------------------------------------------


def _ecdsa_signature_candidates(signature: bytes) -> list[bytes]:
    # Browsers' WebCrypto signs as raw r||s, native stacks as DER; a 64-byte value may
    # (rarely) be a short DER encoding too, so both readings are tried.
    candidates = [signature]
    if len(signature) == _P256_RAW_SIGNATURE_LEN:
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        candidates.insert(0, encode_dss_signature(r, s))
    return candidates


def _verify_ecdsa(key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes) -> bool:
    for candidate in _ecdsa_signature_candidates(signature):
        try:
            key.verify(candidate, message, ec.ECDSA(hashes.SHA256()))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def verify_device_signature(key: DeviceKey, *, message: bytes, signature: bytes) -> bool:
    """True if ``signature`` over ``message`` verifies with ``key``; else False (never raises)."""
    if not isinstance(message, bytes) or not isinstance(signature, bytes):
        return False
    key_type = _key_type_or_none(key)
    if key_type is None:
        return False
    if isinstance(key, ec.EllipticCurvePublicKey):  # "ecdsa-p256", the one curve named above
        return _verify_ecdsa(key, message, signature)
    try:
        # Ed25519 and ML-DSA-87 (empty context) sign the message itself, no pre-hash.
        key.verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def newest_published(items: list, *, created_at: Callable[[Any], datetime], published_for: float,
                     now: datetime | None = None):
    """The newest of `items` (oldest first) created at least `published_for` seconds before `now`,
    else the oldest: a rotated key signs only once every process has had time to read it, so no
    host meets a token whose key it does not know yet (SPEC §10)."""
    cutoff = aware_utc(now).timestamp() - published_for
    published = [item for item in items if created_at(item).timestamp() <= cutoff]
    return published[-1] if published else items[0]
