"""DPoP proofs (RFC 9449) as citylogin's clients make them with their device keys (SPEC §12):
reading a proof, checking it against a request, RFC 7638 thumbprints and `ath`. Pure: the same
checks as the server's common/crypto/dpop.py, which the guard cannot import (it installs alone)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Collection, Union
from urllib.parse import quote, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA87PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

PROOF_TYPE = "dpop+jwt"
MAX_AGE = 60  # seconds a proof's iat may lie from this host's clock, either way (SPEC §12)
MAX_PROOF_LENGTH = 16384  # an ML-DSA-87 proof is about 10 KB: its key is 2592 bytes, its signature 4627
MAX_JTI_LENGTH = 256
_MLDSA87 = "ML-DSA-87"
_P256_COORDINATE = 32
# RFC 3986 pchar less the unreserved (which quote() keeps anyway) and "%": a path is compared as its
# decoded characters, percent-encoded the one same way (RFC 3986 §6.2.2)
_PATH_SAFE = "/:@!$&'()*+,;="
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WEB_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}  # a WebSocket's origin is its HTTP one

PublicKey = Union[ec.EllipticCurvePublicKey, Ed25519PublicKey, MLDSA87PublicKey]


class ProofError(Exception):
    """A proof refused, and why (English, for the problem's detail)."""


class NotFresh(ProofError):
    """A proof good but for its iat, off this host's clock: the guard's nonce would make it fresh."""


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof whose signature verified with the key in its header; its claims not yet checked
    against the request."""

    jkt: str  # the RFC 7638 thumbprint of its key
    jti: str
    htm: str
    htu: str
    iat: int
    ath: str | None
    nonce: str | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: object, *, what: str) -> bytes:
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise ProofError(f"{what} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProofError(f"{what} is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:  # '+', '/' or unused low bits: a second spelling
        raise ProofError(f"{what} is not base64url")
    return raw


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The JWK of a key with only its required members (RFC 7638 §3.2; AKP: RFC 9964)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {"crv": "P-256", "kty": "EC", "x": b64url(numbers.x.to_bytes(_P256_COORDINATE, "big")),
                "y": b64url(numbers.y.to_bytes(_P256_COORDINATE, "big"))}
    if isinstance(key, Ed25519PublicKey):
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url(key.public_bytes_raw())}
    return {"alg": _MLDSA87, "kty": "AKP", "pub": b64url(key.public_bytes_raw())}


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 `jkt`: base64url SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(dict(sorted(public_jwk(key).items())), separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(access_token: str) -> str:
    """`ath`: base64url SHA-256 of the access token's ASCII."""
    return b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


# --- the key in a proof's header -------------------------------------------------------------------

def _ec_key(jwk: dict[str, Any]) -> PublicKey:
    if jwk.get("crv") != "P-256":
        raise ProofError("an EC proof key must be on P-256")
    x, y = _unb64url(jwk.get("x"), what="jwk x"), _unb64url(jwk.get("y"), what="jwk y")
    if len(x) != _P256_COORDINATE or len(y) != _P256_COORDINATE:
        raise ProofError("a P-256 coordinate is 32 bytes")
    try:  # checks that the point is on the curve
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                             ec.SECP256R1()).public_key()
    except ValueError:
        raise ProofError("the jwk is not a P-256 point") from None


def _okp_key(jwk: dict[str, Any]) -> PublicKey:
    if jwk.get("crv") != "Ed25519":
        raise ProofError("an OKP proof key must be Ed25519")
    try:
        return Ed25519PublicKey.from_public_bytes(_unb64url(jwk.get("x"), what="jwk x"))
    except ValueError:
        raise ProofError("the jwk is not an Ed25519 key") from None


def _akp_key(jwk: dict[str, Any]) -> PublicKey:
    if jwk.get("alg") != _MLDSA87:
        raise ProofError("an AKP proof key must be ML-DSA-87")
    try:
        return MLDSA87PublicKey.from_public_bytes(_unb64url(jwk.get("pub"), what="jwk pub"))
    except ValueError:
        raise ProofError("the jwk is not an ML-DSA-87 key") from None


def _verify_es256(key: PublicKey, message: bytes, signature: bytes) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 2 * _P256_COORDINATE:
        raise InvalidSignature()  # JWS ES256 is r || s, 32 bytes each (RFC 7518 §3.4), never DER
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.verify(der, message, ec.ECDSA(hashes.SHA256()))


def _verify_raw(key: PublicKey, message: bytes, signature: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidSignature()
    key.verify(signature, message)  # Ed25519, and ML-DSA-87 with the empty context (RFC 9964)


Verify = Callable[[PublicKey, bytes, bytes], None]
# alg -> (its JWK's kty, how to build the key, how to verify with it)
_ALGORITHMS: dict[str, tuple[str, Callable[[dict[str, Any]], PublicKey], Verify]] = {
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
def _header_key(header_part: str) -> tuple[PublicKey, str, Verify]:
    """(key, thumbprint, verify) of a proof's encoded header. A device signs every proof with one
    key and the same header, so parsing it and building the key (a point check for P-256) is paid
    once per process and key; a refused header is not kept (lru_cache keeps no exception)."""
    header = _json_part(header_part, what="header")
    if header.get("typ") != PROOF_TYPE:
        raise ProofError("a proof's typ is dpop+jwt")
    alg = header.get("alg")
    if alg not in _ALGORITHMS:
        raise ProofError(f"a proof's alg is one of {', '.join(ALGORITHMS)}")
    if "crit" in header:
        raise ProofError("no crit header parameter is understood")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or not all(isinstance(v, str) for v in jwk.values()):
        raise ProofError("a proof's header carries its public key as jwk")
    kty, build, verify = _ALGORITHMS[alg]
    if jwk.get("kty") != kty:
        raise ProofError(f"alg {alg} needs a {kty} key")
    if any(name in jwk for name in ("d", "priv", "p", "q")):
        raise ProofError("the jwk holds a private key")
    key = build(jwk)
    return key, thumbprint(key), verify


def read_proof(proof: str) -> Proof:
    """The proof of a `DPoP` header, its signature verified with the key in its header; ProofError
    if it is not a well-formed, well-signed dpop+jwt (RFC 9449 §4.3 checks 1-7)."""
    if not proof or len(proof) > MAX_PROOF_LENGTH or not proof.isascii():
        raise ProofError("the DPoP header is not a proof")
    parts = proof.split(".")
    if len(parts) != 3:
        raise ProofError("the DPoP header is not a JWS compact serialization")
    key, jkt, verify = _header_key(parts[0])
    claims = _json_part(parts[1], what="claims")
    signature = _unb64url(parts[2], what="signature")
    try:
        verify(key, f"{parts[0]}.{parts[1]}".encode(), signature)
    except (InvalidSignature, ValueError):
        raise ProofError("the proof's signature does not verify with its key") from None
    return _claims(claims, jkt)


def _claims(claims: dict[str, Any], jkt: str) -> Proof:
    jti, htm, htu, iat, ath, nonce = (claims.get(name) for name in ("jti", "htm", "htu", "iat", "ath", "nonce"))
    if not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH):
        raise ProofError("a proof carries a jti")
    if not (isinstance(htm, str) and htm and isinstance(htu, str) and htu):
        raise ProofError("a proof carries htm and htu")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)) or not math.isfinite(iat):
        raise ProofError("a proof carries iat")  # json reads Infinity and NaN: no int of those
    if ath is not None and not (isinstance(ath, str) and ath.isascii()):
        raise ProofError("ath is an ASCII string")
    if nonce is not None and not isinstance(nonce, str):
        raise ProofError("nonce is a string")
    # Whose nonce it is, the caller tells (citylogin_guard.nonces): a client may well repeat one
    # citylogin gave it, which only citylogin checks (RFC 9449 §9).
    return Proof(jkt=jkt, jti=jti, htm=htm, htu=htu, iat=int(iat), ath=ath, nonce=nonce)


# --- checking it against the request ---------------------------------------------------------------

def normalized_url(url: str) -> str | None:
    """scheme://host[:port]/path of a URL without query and fragment: scheme and host lowercased, a
    default port dropped, the path's percent-encoding made uniform (RFC 9449 §4.3 check 9, RFC 3986
    §6.2.2-6.2.3); ws(s) counts as http(s). None if it is no web URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = _WEB_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{quote(unquote(parts.path), safe=_PATH_SAFE) or '/'}"


def check_proof(proof: Proof, *, method: str, urls: Collection[str], now: float, access_token: str,
                jkt: str, fresh_by_nonce: bool = False) -> None:
    """RFC 9449 §4.3 checks 8-12 and §7.1 for a request with a bound token: its method, its URL (one
    of `urls`, normalized), `ath` of `access_token`, the key `jkt`, and last iat within MAX_AGE
    (NotFresh), unless the proof is over a current nonce of the guard's (`fresh_by_nonce`: the
    nonce then bounds its age, RFC 9449 §11.1). The nonce's and the replay check are the caller's."""
    if proof.htm != method:
        raise ProofError("the proof is for another method")
    if normalized_url(proof.htu) not in urls:
        raise ProofError("the proof is for another URL")
    if not (proof.ath and hmac.compare_digest(proof.ath, access_token_hash(access_token))):
        raise ProofError("the proof's ath is not this access token's hash")
    if not hmac.compare_digest(proof.jkt, jkt):
        raise ProofError("the proof is signed by another key than the token's")
    if abs(now - proof.iat) > MAX_AGE and not fresh_by_nonce:
        raise NotFresh("the proof's iat is not within 60 seconds of now")


def replay_key(proof: Proof) -> str:
    """What the replay check remembers of a proof: its key and jti, digested (RFC 9449 §11.1)."""
    return hashlib.sha256(f"dpop-jti:{proof.jkt}:{proof.jti}".encode()).hexdigest()
