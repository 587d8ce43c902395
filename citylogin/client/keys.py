"""citylogin.client.keys: a device's key pair, its signatures and its key file (SPEC §4, §5)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

LOGIN_PURPOSE = "citylogin-login:"  # the server verifies the signature over this prefix + challenge
RENEW_PURPOSE = "citylogin-renew:"  # ... and, to renew a certificate, over this one
KEY_MAKERS: dict[str, Callable[[], DevicePrivateKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ml-dsa-87": mldsa.MLDSA87PrivateKey.generate,
}
KEY_KINDS = tuple(KEY_MAKERS)
DevicePrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | mldsa.MLDSA87PrivateKey


# --- keys -------------------------------------------------------------------------------------

def generate_key(kind: str = "ecdsa-p256") -> DevicePrivateKey:
    """A new device key of `kind` (one of KEY_KINDS); ValueError for any other kind."""
    if kind not in KEY_MAKERS:
        raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")
    return KEY_MAKERS[kind]()


def key_kind_of(private_key: DevicePrivateKey) -> str:
    """The KEY_KINDS name of a device key."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return "ecdsa-p256"
    return "ed25519" if isinstance(private_key, ed25519.Ed25519PrivateKey) else "ml-dsa-87"


def sign_challenge(private_key: DevicePrivateKey, challenge: str, *, purpose: str = LOGIN_PURPOSE) -> str:
    """Base64 signature over purpose + challenge: ECDSA-SHA256 (DER), Ed25519 or ML-DSA-87."""
    message = (purpose + challenge).encode()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        signature = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(private_key, ed25519.Ed25519PrivateKey | mldsa.MLDSA87PrivateKey):
        signature = private_key.sign(message)
    else:
        raise TypeError(f"unsupported device key type {type(private_key).__name__}")
    return base64.b64encode(signature).decode()


def public_key_pem(private_key: DevicePrivateKey) -> str:
    """The PEM SubjectPublicKeyInfo the server takes as `public_key`."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_key_pem(private_key: DevicePrivateKey) -> str:
    """Unencrypted PKCS#8 PEM; the key file that holds it is mode 0600."""
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()


# --- DPoP proofs (RFC 9449, SPEC §12) ----------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key: DevicePrivateKey) -> dict[str, str]:
    """The device key's public JWK: EC P-256, OKP Ed25519 or AKP ML-DSA-87 (RFC 9964)."""
    public = private_key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _b64url(numbers.x.to_bytes(32, "big")),
                "y": _b64url(numbers.y.to_bytes(32, "big"))}
    if isinstance(public, ed25519.Ed25519PublicKey):
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public.public_bytes_raw())}
    return {"kty": "AKP", "alg": "ML-DSA-87", "pub": _b64url(public.public_bytes_raw())}


def _jws_signature(private_key: DevicePrivateKey, message: bytes) -> bytes:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):  # JWS ES256 is r || s, not DER
        r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return private_key.sign(message)


PROOF_ALGORITHMS = {"ecdsa-p256": "ES256", "ed25519": "EdDSA", "ml-dsa-87": "ML-DSA-87"}


def dpop_proof(private_key: DevicePrivateKey, *, method: str, url: str, access_token: str | None = None,
               nonce: str | None = None, now: float | None = None, jti: str | None = None) -> str:
    """A DPoP proof for one request: `url` without its query, `ath` when it carries `access_token`."""
    header = {"typ": "dpop+jwt", "alg": PROOF_ALGORITHMS[key_kind_of(private_key)], "jwk": public_jwk(private_key)}
    claims: dict[str, Any] = {"jti": jti or secrets.token_urlsafe(16), "htm": method,
                              "htu": url.split("?", 1)[0].split("#", 1)[0],
                              "iat": int(time.time() if now is None else now)}
    if access_token is not None:
        claims["ath"] = _b64url(hashlib.sha256(access_token.encode()).digest())
    if nonce is not None:
        claims["nonce"] = nonce
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    return f"{signing_input}.{_b64url(_jws_signature(private_key, signing_input.encode()))}"


# --- key file ---------------------------------------------------------------------------------

@dataclass
class KeyFile:
    """What one device keeps locally: where its account lives, its key and its certificate, and
    (for the CLI) its current session: `session_id`, `access_token`, `refresh_token`, `access_expires_at`."""

    base_url: str
    username: str
    user_uuid: str
    device_id: str
    device_name: str
    private_key_pem: str
    client_cert_pem: str
    fingerprint: str
    ca_cert_pem: str
    session: dict[str, Any] | None = None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as JSON, mode 0600 from creation on (also when the file existed with another mode),
        replacing an older file in one step: a renewal rewrites the only copy of the device key."""
        directory, name = os.path.split(os.path.abspath(path))
        # A temporary name of its own: two commands saving at once must not write into one file.
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(asdict(self), file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyFile:
        """Read a file written by `save`."""
        with open(path, encoding="utf-8") as file:
            return cls(**json.load(file))

    def private_key(self) -> DevicePrivateKey:
        """The device's private key as a cryptography key object; TypeError for a kind a device cannot have."""
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        if not isinstance(key, DevicePrivateKey):
            raise TypeError(f"unsupported device key type {type(key).__name__}")  # as sign_challenge refuses it
        return key

    def client_cert_b64(self) -> str:
        """The certificate as the API carries it: base64 of the PEM."""
        return base64.b64encode(self.client_cert_pem.encode()).decode()
