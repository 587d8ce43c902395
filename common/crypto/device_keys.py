"""Device keys (P-256, Ed25519, ML-DSA-87) from PEMs and CSRs, and their signatures.

Pure: no Flask, no boto3, no environment reads; every value arrives as an argument."""
from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA87PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


DeviceKey = ec.EllipticCurvePublicKey | Ed25519PublicKey | MLDSA87PublicKey

_P256_RAW_SIGNATURE_LEN = 64  # r || s, 32 bytes each (WebCrypto / IEEE P1363 form)


class CryptoInputError(ValueError):
    """Bad client-supplied crypto input; ``field`` names the request field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


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


def public_key_pem(key: DeviceKey) -> str:
    """PEM SubjectPublicKeyInfo of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_type_name(key: object) -> str:
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
