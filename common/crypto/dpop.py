"""DPoP proofs (RFC 9449) with the device keys citylogin certifies (SPEC §12): reading and checking a
proof, RFC 7638 thumbprints of the device keys, `ath`, and the server nonces (`DPoP-Nonce`).

Pure: no Flask, no boto3. The replay check (a proof's `jti`, once on every host) is the caller's:
sessions.proof_store holds it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA87PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from common.crypto.device_keys import DeviceKey
from common.crypto.tokens import digests_equal, keyed_token

PROOF_TYPE = "dpop+jwt"
MAX_AGE = 60  # seconds a proof's iat may lie from the server's clock, either way (SPEC §12)
MAX_PROOF_LENGTH = 16384  # an ML-DSA-87 proof is about 10 KB: its key is 2592 bytes, its signature 4627
MAX_JTI_LENGTH = 256
NONCE_PERIOD = 30  # a nonce is current for its 30-s period and the next one
INVALID_PROOF, USE_NONCE = "invalid_dpop_proof", "use_dpop_nonce"  # RFC 9449's error codes
_MLDSA87 = "ML-DSA-87"
_P256_COORDINATE = 32


class ProofError(Exception):
    """A proof is refused; ``code`` is "invalid_dpop_proof" or "use_dpop_nonce" (RFC 9449 §7.1, §9)."""

    def __init__(self, message: str, *, code: str = INVALID_PROOF) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Proof:
    """A proof whose signature verified with the key in its header; its claims are not checked yet."""

    jkt: str  # the RFC 7638 thumbprint of its key
    jti: str
    htm: str
    htu: str
    iat: int
    ath: str | None
    nonce: str | None
    alg: str = ""  # its header's, one of ALGORITHMS (a FAPI 2.0 app's proofs are held to two of them)


# --- keys as JWKs, and their thumbprints ----------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: object, *, what: str) -> bytes:
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise ProofError(f"{what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProofError(f"{what} is not base64url") from None
    if _b64url(raw) != text:  # '+', '/' or unused low bits set: another spelling of the same bytes
        raise ProofError(f"{what} is not base64url")
    return raw


def public_jwk(key: DeviceKey) -> dict[str, str]:
    """The public JWK of a device key with only its required members (RFC 7638 §3.2): EC P-256,
    OKP Ed25519, or AKP ML-DSA-87 (RFC 9964)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {"crv": "P-256", "kty": "EC", "x": _b64url(numbers.x.to_bytes(_P256_COORDINATE, "big")),
                "y": _b64url(numbers.y.to_bytes(_P256_COORDINATE, "big"))}
    if isinstance(key, Ed25519PublicKey):
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(key.public_bytes_raw())}
    if isinstance(key, MLDSA87PublicKey):
        return {"alg": _MLDSA87, "kty": "AKP", "pub": _b64url(key.public_bytes_raw())}
    raise TypeError(f"unsupported device key type {type(key).__name__}")


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: base64url SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(dict(sorted(jwk.items())), separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def key_thumbprint(key: DeviceKey) -> str:
    """The `jkt` of a device key: what a bound session's `cnf` names."""
    return jwk_thumbprint(public_jwk(key))


def access_token_hash(access_token: str) -> str:
    """`ath`: base64url SHA-256 of the access token's ASCII."""
    return _b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


# --- reading a proof ------------------------------------------------------------------------------

def _ec_key(jwk: dict[str, Any]) -> DeviceKey:
    if jwk.get("crv") != "P-256":
        raise ProofError("an EC proof key must be on P-256")
    x, y = _unb64url(jwk.get("x"), what="jwk x"), _unb64url(jwk.get("y"), what="jwk y")
    if len(x) != _P256_COORDINATE or len(y) != _P256_COORDINATE:
        raise ProofError("a P-256 coordinate is 32 bytes")
    try:  # checks the point is on the curve
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                             ec.SECP256R1()).public_key()
    except ValueError:
        raise ProofError("the jwk is not a P-256 point") from None


def _okp_key(jwk: dict[str, Any]) -> DeviceKey:
    if jwk.get("crv") != "Ed25519":
        raise ProofError("an OKP proof key must be Ed25519")
    try:
        return Ed25519PublicKey.from_public_bytes(_unb64url(jwk.get("x"), what="jwk x"))
    except ValueError:
        raise ProofError("the jwk is not an Ed25519 key") from None


def _akp_key(jwk: dict[str, Any]) -> DeviceKey:
    if jwk.get("alg") != _MLDSA87:
        raise ProofError("an AKP proof key must be ML-DSA-87")
    try:
        return MLDSA87PublicKey.from_public_bytes(_unb64url(jwk.get("pub"), what="jwk pub"))
    except ValueError:
        raise ProofError("the jwk is not an ML-DSA-87 key") from None


def _verify_es256(key: DeviceKey, message: bytes, signature: bytes) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 2 * _P256_COORDINATE:
        raise InvalidSignature()  # JWS ES256: r || s, 32 bytes each (RFC 7518 §3.4), never DER
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.verify(der, message, ec.ECDSA(hashes.SHA256()))


def _verify_raw(key: DeviceKey, message: bytes, signature: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidSignature()
    key.verify(signature, message)  # Ed25519, and ML-DSA-87 with the empty context (RFC 9964)


# alg -> (the JWK's kty, how to build its key, how to verify)
_ALGORITHMS: dict[str, tuple[str, Callable[[dict[str, Any]], DeviceKey], Callable[[DeviceKey, bytes, bytes], None]]] = {
    "ES256": ("EC", _ec_key, _verify_es256),
    "EdDSA": ("OKP", _okp_key, _verify_raw),
    _MLDSA87: ("AKP", _akp_key, _verify_raw),
}
ALGORITHMS = tuple(_ALGORITHMS)


def _json_part(part: str, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64url(part, what=what))
    except (ValueError, UnicodeDecodeError):
        raise ProofError(f"the proof's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise ProofError(f"the proof's {what} is not a JSON object")
    return value


@lru_cache(maxsize=4096)
def _key_of(alg: str, jwk_json: str) -> tuple[DeviceKey, str]:
    """(key, thumbprint) of a header's JWK: a device signs many proofs with one key, so building it
    (a point check for P-256) is paid once per process and key."""
    kty, build, _ = _ALGORITHMS[alg]
    jwk = json.loads(jwk_json)
    if jwk.get("kty") != kty:
        raise ProofError(f"alg {alg} needs a {kty} key")
    if any(name in jwk for name in ("d", "priv", "p", "q")):
        raise ProofError("the jwk holds a private key")
    key = build(jwk)
    return key, key_thumbprint(key)


def read_proof(proof: str) -> tuple[Proof, DeviceKey]:
    """The proof in a `DPoP` header, its signature verified with the key in its header; ProofError if
    it is not a well-formed, well-signed dpop+jwt (RFC 9449 §4.3 checks 1-7; the caller checks the rest)."""
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_LENGTH or not proof.isascii():
        raise ProofError("the DPoP header is not a proof")
    parts = proof.split(".")
    if len(parts) != 3:
        raise ProofError("the DPoP header is not a JWS compact serialization")
    header, claims = _json_part(parts[0], what="header"), _json_part(parts[1], what="claims")
    if header.get("typ") != PROOF_TYPE:
        raise ProofError("a proof's typ is dpop+jwt")
    alg = header.get("alg")
    if alg not in _ALGORITHMS:
        raise ProofError(f"a proof's alg is one of {', '.join(ALGORITHMS)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or not all(isinstance(v, str) for v in jwk.values()):
        raise ProofError("a proof's header carries its public key as jwk")
    if "crit" in header:
        raise ProofError("no crit header parameter is understood")
    key, jkt = _key_of(alg, json.dumps(jwk, sort_keys=True))
    signature = _unb64url(parts[2], what="signature")
    try:
        _ALGORITHMS[alg][2](key, f"{parts[0]}.{parts[1]}".encode(), signature)
    except (InvalidSignature, ValueError):
        raise ProofError("the proof's signature does not verify with its key") from None
    return _claims(claims, jkt, alg), key


def _claims(claims: dict[str, Any], jkt: str, alg: str) -> Proof:
    jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get("iat")
    if not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH):
        raise ProofError("a proof carries a jti")
    if not (isinstance(htm, str) and htm and isinstance(htu, str) and htu):
        raise ProofError("a proof carries htm and htu")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
        raise ProofError("a proof carries iat")  # json reads Infinity and NaN too
    ath, nonce = claims.get("ath"), claims.get("nonce")
    if ath is not None and not isinstance(ath, str) or nonce is not None and not isinstance(nonce, str):
        raise ProofError("ath and nonce are strings")
    return Proof(jkt=jkt, jti=jti, htm=htm, htu=htu, iat=int(iat), ath=ath, nonce=nonce, alg=alg)


# --- checking it against the request ---------------------------------------------------------------

@lru_cache(maxsize=1024)  # a server is known by a few URLs; a client's htu repeats too
def normalized_url(url: str) -> str | None:
    """scheme://host[:port]/path of a URL without query and fragment, scheme and host lowercased and a
    default port dropped (RFC 9449 §4.3 check 9, RFC 3986 §6.2.2-6.2.3); None if it is not http(s)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def check_proof(proof: Proof, *, method: str, urls: list[str], now: int, access_token: str | None = None,
                jkt: str | None = None, fresh_by_nonce: bool = False) -> None:
    """RFC 9449 §4.3 checks 8-12 and §7.1 for a request: its method, its URL (any of `urls`, the
    names it has), `iat` within MAX_AGE, `ath` for `access_token`, and the key `jkt` if one is bound.
    A proof over a current server nonce (`fresh_by_nonce`) is fresh whatever its iat says: a device
    whose clock is off answers a USE_NONCE refusal with such a proof (RFC 9449 §11.1). The nonce's
    own check and the replay check are the caller's (they need the server's secrets and store)."""
    if proof.htm != method:
        raise ProofError("the proof is for another method")
    htu = normalized_url(proof.htu)
    if htu is None or htu not in {normalized_url(url) for url in urls}:
        raise ProofError("the proof is for another URL")
    if abs(now - proof.iat) > MAX_AGE and not fresh_by_nonce:
        raise ProofError("the proof's iat is not within 60 seconds of the server's clock: make it over "
                         "the DPoP-Nonce of this answer", code=USE_NONCE)
    if access_token is not None and not (proof.ath and digests_equal(proof.ath, access_token_hash(access_token))):
        raise ProofError("the proof's ath is not this access token's hash")
    if access_token is None and proof.ath is not None:
        raise ProofError("an ath without an access token")
    if jkt is not None and not digests_equal(proof.jkt, jkt):
        raise ProofError("the proof is signed by another key than the token's")


def replay_key(proof: Proof) -> str:
    """What the replay check remembers of a proof: its key and jti, digested (RFC 9449 §11.1)."""
    return hashlib.sha256(f"dpop-jti:{proof.jkt}:{proof.jti}".encode()).hexdigest()


# --- server nonces (RFC 9449 §8, §9) ---------------------------------------------------------------

def _period(now: int) -> int:
    return now // NONCE_PERIOD


def make_nonce(*, secret: bytes, kid: str, now: int) -> str:
    """The current `DPoP-Nonce`: <period>.<kid>.<MAC over the period>, the same on every host."""
    period = _period(now)
    return f"{period}.{kid}.{keyed_token(secret, f'dpop-nonce:{period}')[:22]}"


def nonce_is_current(nonce: str, *, secret_of: Callable[[str], bytes | None], now: int) -> bool:
    """True if `nonce` was made by make_nonce in this period or the one before (30-60 s ago at most)."""
    period_text, _, rest = nonce.partition(".")
    kid, _, mac = rest.partition(".")
    if not (period_text.isdigit() and kid and mac and len(nonce) <= 128):
        return False
    period = int(period_text)
    secret = secret_of(kid) if period in (_period(now), _period(now) - 1) else None
    return secret is not None and digests_equal(mac, keyed_token(secret, f"dpop-nonce:{period}")[:22])
