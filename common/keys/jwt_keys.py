"""JWT signing keys: the newest key of an algorithm signs, every key in the ring verifies. Access
tokens and event tokens are EdDSA (Ed25519); ID tokens (SPEC §14) are signed with the algorithm the
app chose: RS256 (RSA 2048), ES256 (P-256) or EdDSA.

The running services take their keys from the key ring in DynamoDB (common.keys.ring); the key
files below are what older versions kept in the data directory, read once to import them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar, cast

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from common.timefmt import aware_utc
from common.keys.verified_tokens import VerifiedTokens, token_digest

ALGORITHM = "EdDSA"
RS256, ES256 = "RS256", "ES256"
ID_TOKEN_ALGORITHMS = (RS256, ES256, ALGORITHM)
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
TOKEN_TYPE = "at+jwt"  # RFC 9068 access-token media type
EVENT_TOKEN_TYPE = "secevent+jwt"  # RFC 8417 §2.3
# Every access token carries these (the times are checked by _check_times against the caller's clock).
_REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
# Tokens minted by another process whose clock runs a little ahead must not look "from the future".
CLOCK_SKEW_SECONDS = 30
_KID_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_KEY_FILE = re.compile(r"jwt-(?P<kid>(?P<stamp>\d{8}T\d{12}Z)-[0-9a-f]{8})\.key")
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_JWT_LENGTH = 16384

T = TypeVar("T")


class TokenError(Exception):
    """A token was refused; ``code`` is "token_expired" or "invalid_token"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class SigningKey:
    """One signing key (Ed25519, P-256 or RSA), named by ``kid``."""

    kid: str
    private_key: PrivateKey
    created_at: datetime

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.private_key)


def algorithm_of(private_key: PrivateKey) -> str:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return RS256
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return ES256
    return ALGORITHM


def _public_jwk(key: SigningKey) -> dict[str, Any]:
    public = key.private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        raw = public.public_bytes_raw()
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}  # RFC 8037
    return {**jwk, "kid": key.kid, "alg": key.algorithm, "use": "sig"}


def one_spelling(token: object) -> bool:
    """Whether `token` is a compact JWS spelled the one way its bytes are (RFC 7515 §2: base64url with no
    padding): no '=', no other alphabet, no unused low bits set in a part's last character. PyJWT's decoder
    forgives all of these, so without this check one signed token would have many spellings (SPEC §14)."""
    return _spelled_parts(token) is not None


def _spelled_parts(token: object) -> list[bytes] | None:
    """The three decoded parts of a compact JWS spelled its one way (one_spelling), else None."""
    if not isinstance(token, str) or len(token) > MAX_JWT_LENGTH or _COMPACT_JWS.fullmatch(token) is None:
        return None
    parts = []
    for part in token.split("."):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            return None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != part:
            return None
        parts.append(raw)
    return parts


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TokenError("invalid_token") from None
    if not isinstance(value, dict):
        raise TokenError("invalid_token")
    return value


def _check_claims(claims: dict[str, Any], *, issuers: tuple[str, ...], audience: str | None) -> None:
    """RFC 7519's registered claims as an access token's must be (PyJWT's checks, all of them, as citylogin
    asked PyJWT for them): exp, iat, iss, aud and sub present; iss one of `issuers`; aud naming `audience`
    (one name or a list of names; None: any aud at all); sub and any jti strings. The times are _check_times's."""
    if any(claims.get(name) is None for name in _REQUIRED_CLAIMS):
        raise TokenError("invalid_token")
    if not isinstance(claims["iss"], str) or claims["iss"] not in issuers:
        raise TokenError("invalid_token")
    if audience is not None and not _names_audience(claims, audience):
        raise TokenError("invalid_token")
    if not isinstance(claims["sub"], str) or ("jti" in claims and not isinstance(claims["jti"], str)):
        raise TokenError("invalid_token")


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError("invalid_token")
    return value


def _names_audience(claims: dict[str, Any], audience: str) -> bool:
    """Whether the claims' `aud` (one name or a list of names, RFC 7519 §4.1.3) names `audience`."""
    named = claims.get("aud")
    if isinstance(named, str):
        return named == audience
    return isinstance(named, list) and all(isinstance(name, str) for name in named) and audience in named


def _check_times(claims: dict[str, Any], now: datetime) -> None:
    timestamp = now.timestamp()
    expires, issued, not_before = (_number(claims, name) for name in ("exp", "iat", "nbf"))
    if expires <= timestamp:
        raise TokenError("token_expired")
    if issued > timestamp + CLOCK_SKEW_SECONDS or not_before > timestamp + CLOCK_SKEW_SECONDS:
        raise TokenError("invalid_token")


class JwtKeyRing:
    """Signs access tokens with the newest key; verifies with any key in the ring."""

    def __init__(self, keys: list[SigningKey], *, issuer: str, audience: str,
                 loader: Callable[[float], list[SigningKey]] | None = None, reload_seconds: float = 60.0):
        self._issuer = issuer
        self._audience = audience
        # With a loader, keys added by `citylogin keys rotate` or retired in another process are
        # picked up: by refresh() from the app's common.keys.ring_refresher thread, else every
        # `reload_seconds` (when signing, verifying or publishing the JWKS), and sooner when a token
        # names a kid we do not know. loader(max_age): the ring read no longer than max_age seconds
        # ago (0: read now).
        self._loader = loader
        self._reload_seconds = reload_seconds
        self._install(keys)

    def _install(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one signing key")
        ordered = sorted(keys, key=lambda key: (key.created_at, key.kid))
        by_kid = {key.kid: key for key in ordered}
        if len(by_kid) != len(ordered):
            raise ValueError("two signing keys share a kid")
        # Each algorithm's keys, oldest first: a key's algorithm is found by type checks, once per ring.
        by_algorithm: dict[str, list[SigningKey]] = {}
        for key in ordered:
            by_algorithm.setdefault(key.algorithm, []).append(key)
        public_keys = {key.kid: key.private_key.public_key() for key in ordered}
        # The public keys before the names, so that a concurrent decode never finds a kid without its key.
        self._public_keys, self._by_algorithm = public_keys, by_algorithm
        self._keys, self._ordered = by_kid, ordered
        # Last: a decode that takes this cache verifies with this ring's keys (a decode that took the one
        # before keeps what it verified there, which no later decode reads).
        self._verified = VerifiedTokens()
        self._loaded_at = time.monotonic()

    def _signing_key(self, now: datetime | None, algorithm: str = ALGORITHM) -> SigningKey:
        # With a shared ring, a new key signs once it is a reload interval old: by then every
        # process has read it and verifies what it signs.
        keys = self._by_algorithm.get(algorithm)
        if not keys:
            raise TokenError("no_key")  # a ring without a key of this algorithm (never after open_key_ring)
        return newest_published(keys, created_at=lambda key: key.created_at,
                                published_for=self._reload_seconds if self._loader else 0, now=now)

    def algorithms(self) -> list[str]:
        """The algorithms the ring holds a key of, in ID_TOKEN_ALGORITHMS order."""
        held = {key.algorithm for key in self._ordered}
        return [alg for alg in ID_TOKEN_ALGORITHMS if alg in held]

    def _reload(self, *, min_age: float, read_max_age: float = 0.0) -> None:
        if self._loader and time.monotonic() - self._loaded_at >= min_age:
            self._install(self._loader(read_max_age))

    def refresh(self, *, max_age: float) -> None:
        """Install the ring as read no longer than `max_age` seconds ago (0: read it now); what
        common.keys.ring_refresher calls on its schedule, whether or not anyone signs or verifies."""
        self._reload(min_age=0, read_max_age=max_age)

    def _reload_on_interval(self) -> None:
        """Every reload interval, whether this process signs or only verifies: a retired key stops
        verifying and the JWKS shows a new one (one Query a process, shared with the refresh secrets)."""
        self._reload(min_age=self._reload_seconds, read_max_age=self._reload_seconds)

    def sign(self, claims: dict[str, Any], *, ttl_seconds: int, now: datetime | None = None) -> str:
        """A signed JWT of ``claims`` plus iat, nbf, exp, iss and aud; the header names the kid."""
        self._reload_on_interval()
        issued_at = int(aware_utc(now).timestamp())
        payload = {
            **claims,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_seconds,
            "iss": self._issuer,
            "aud": self._audience,
        }
        signing_key = self._signing_key(now)
        headers = {"kid": signing_key.kid, "typ": TOKEN_TYPE}
        private_key = signing_key.private_key
        return jwt.encode(payload, private_key, algorithm=ALGORITHM, headers=headers)

    @property
    def issuer(self) -> str:
        return self._issuer

    def sign_event(self, claims: dict[str, Any], *, now: datetime | None = None) -> str:
        """A Security Event Token (RFC 8417) of ``claims`` plus iss, signed by the current key:
        header ``typ: secevent+jwt``, so that it can never pass for an access token (nor one for it)."""
        self._reload_on_interval()
        signing_key = self._signing_key(now)
        return jwt.encode({**claims, "iss": self._issuer}, signing_key.private_key, algorithm=ALGORITHM,
                          headers={"kid": signing_key.kid, "typ": EVENT_TOKEN_TYPE})

    def sign_jwt(self, claims: dict[str, Any], *, algorithm: str, typ: str, now: datetime | None = None) -> str:
        """`claims` (complete: the caller sets every time and party) signed by the newest key of
        `algorithm`: ID tokens, logout tokens and OpenID Provider access tokens (SPEC §14)."""
        self._reload_on_interval()
        signing_key = self._signing_key(now, algorithm)
        return jwt.encode(claims, signing_key.private_key, algorithm=algorithm,
                          headers={"kid": signing_key.kid, "typ": typ})

    def decode(self, token: str, *, now: datetime | None = None, issuer: str | list[str] | None = None,
               audience: str | list[str] | None = None, verify_audience: bool = True) -> dict[str, Any]:
        """The verified claims of ``token``, else TokenError("token_expired" | "invalid_token").
        `issuer`/`audience`: those of the OpenID Provider's tokens instead of citylogin's own;
        `verify_audience=False`: any audience (introspection answers for every app's tokens).
        The signature is checked once per token and installed ring (common.keys.verified_tokens): the same token
        again is known by its digest; the claims and times are checked on every call."""
        if not isinstance(token, str) or len(token) > MAX_JWT_LENGTH:
            raise TokenError("invalid_token")
        self._reload_on_interval()
        verified, digest = self._verified, token_digest(token)
        payload = verified.payload(digest)
        if payload is None:
            payload = self._verified_payload(token)
            verified.keep(digest, payload)
        claims = _json_object(payload)
        issuers = (issuer,) if isinstance(issuer, str) else tuple(issuer or (self._issuer,))
        wanted = (audience or self._audience) if verify_audience else None
        if isinstance(wanted, list):  # any one of them
            if not any(_names_audience(claims, name) for name in wanted):
                raise TokenError("invalid_token")
            wanted = None
        _check_claims(claims, issuers=issuers, audience=wanted)
        _check_times(claims, aware_utc(now))
        return claims

    def _verified_payload(self, token: str) -> bytes:
        """The payload of `token` once its signature verified, else TokenError("invalid_token"). Each part is
        decoded once: the header names the key (an access token's type and our algorithm only), the key's
        signature over the first two parts is checked before the payload is read."""
        parts = _spelled_parts(token)
        if parts is None:
            raise TokenError("invalid_token")
        public_key = self._verification_key(_json_object(parts[0]))
        try:
            public_key.verify(parts[2], token.rpartition(".")[0].encode())
        except InvalidSignature:
            raise TokenError("invalid_token") from None
        return parts[1]

    def decode_own_or(self, token: str, *, other_issuer: str,
                      now: datetime | None = None) -> tuple[dict[str, Any], bool]:
        """The verified claims of ``token``, either citylogin's own access token (this ring's issuer and
        audience: True) or one issued by `other_issuer` for any audience (False), with one signature check;
        else TokenError("token_expired" | "invalid_token")."""
        claims = self.decode(token, now=now, issuer=[self._issuer, other_issuer], verify_audience=False)
        if claims["iss"] == self._issuer and _names_audience(claims, self._audience):
            return claims, True
        if claims["iss"] == other_issuer:
            return claims, False
        raise TokenError("invalid_token")

    def _verification_key(self, header: dict[str, Any]) -> Ed25519PublicKey:
        # RFC 9068 section 4: refuse any other kind of JWT, even one signed by our keys; our algorithm only
        # (pinned: no "none", no HS256 keyed with a public key), and nothing we never write (RFC 7515's
        # crit, RFC 7797's unencoded payload).
        if header.get("typ") != TOKEN_TYPE or header.get("alg") != ALGORITHM or "crit" in header or "b64" in header:
            raise TokenError("invalid_token")
        kid = header.get("kid")
        if isinstance(kid, str) and kid not in self._keys:
            self._reload(min_age=1.0)  # bounded: an attacker's random kids cost one listing a second
        if not isinstance(kid, str) or kid not in self._keys or self._keys[kid].algorithm != ALGORITHM:
            raise TokenError("invalid_token")
        return cast(Ed25519PublicKey, self._public_keys[kid])

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set, for /.well-known/jwks.json."""
        return jwk_set(self.published())

    def published(self) -> dict[str, SigningKey]:
        """The keys the JWKS shows, the ring reloaded first if a reload interval has passed."""
        self._reload_on_interval()
        return self._keys

    @property
    def installed(self) -> dict[str, SigningKey]:
        """The keys as last installed, without a reload: a new mapping after every reload, so that what is
        made from them (oidc.discovery.static_answers) can follow the ring by identity. Not to be changed."""
        return self._keys


def jwk_set(keys: dict[str, SigningKey]) -> dict[str, Any]:
    """The public half of `keys` (a ring's `installed` keys) as a JWK Set."""
    return {"keys": [_public_jwk(key) for key in keys.values()]}


# --- key files ------------------------------------------------------------------------


def signing_key_from_pem(pem: bytes, *, kid: str, created_at: datetime, from_ring: bool = False) -> SigningKey:
    """A signing key from its PKCS#8 PEM; ValueError unless it is Ed25519, P-256 or RSA. An RSA key is
    checked (about 25 ms of CPU) unless it comes `from_ring`: a ring's keys were generated here or checked
    when they were imported from a file, and a ring entry opens only under the key-encryption key, so its
    PEM is the one that was checked (cryptography's unsafe_skip_rsa_key_validation is for such keys)."""
    private_key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=from_ring)
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and not isinstance(private_key.curve, ec.SECP256R1):
        raise ValueError(f"JWT key {kid} is not on P-256")
    if not isinstance(private_key, (Ed25519PrivateKey, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"JWT key {kid} is not an Ed25519, P-256 or RSA private key")
    return SigningKey(kid=kid, private_key=private_key, created_at=created_at)


class ParsedSigningKeys:
    """`signing_key_from_pem` once per key: a reload of a ring whose keys did not change parses none
    of them again (every process reloads the ring a few times a minute). A key is known by its kid, creation
    time and its PEM's digest; each call of `keys` keeps only the keys it was given, so a retired key leaves
    the cache with the ring."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, datetime, bytes], SigningKey] = {}
        self._lock = threading.Lock()

    def keys(self, entries: list[tuple[bytes, str, datetime]]) -> list[SigningKey]:
        """The signing keys of `entries` ((pem, kid, created_at) each), in their order."""
        with self._lock:
            known, keys = self._parsed, []
            parsed: dict[tuple[str, datetime, bytes], SigningKey] = {}
            for pem, kid, created_at in entries:
                name = (kid, created_at, hashlib.sha256(pem).digest())
                key = parsed.get(name) or known.get(name) or signing_key_from_pem(pem, kid=kid, created_at=created_at,
                                                                                  from_ring=True)
                parsed[name] = key
                keys.append(key)
            self._parsed = parsed
            return keys


def new_kid(created_at: datetime) -> str:
    """A kid that sorts by creation time: <UTC timestamp>-<8 random hex digits>."""
    return f"{created_at:{_KID_TIME_FORMAT}}-{secrets.token_hex(4)}"


def new_signing_key(created_at: datetime, algorithm: str = ALGORITHM) -> SigningKey:
    private_key: PrivateKey
    if algorithm == RS256:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == ES256:
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        private_key = Ed25519PrivateKey.generate()
    return SigningKey(kid=new_kid(created_at), private_key=private_key, created_at=created_at)


def private_key_pem(key: SigningKey) -> bytes:
    return key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())


def public_key_pem(key: SigningKey) -> str:
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _read_key_file(path: Path, *, kid: str, created_at: datetime) -> SigningKey:
    return signing_key_from_pem(path.read_bytes(), kid=kid, created_at=created_at)


def read_jwt_key_files(keys_dir: Path) -> list[SigningKey]:
    """The keys an older version kept in keys_dir (jwt-<kid>.key), oldest first; creates nothing."""
    return _list_keys(Path(keys_dir)) if Path(keys_dir).is_dir() else []


def _list_keys(keys_dir: Path) -> list[SigningKey]:
    keys = []
    for path in keys_dir.glob("jwt-*.key"):
        match = _KEY_FILE.fullmatch(path.name)
        if match is None:
            continue  # not a file this module wrote
        stamp = datetime.strptime(match["stamp"], _KID_TIME_FORMAT)
        created_at = stamp.replace(tzinfo=timezone.utc)
        keys.append(_read_key_file(path, kid=match["kid"], created_at=created_at))
    return sorted(keys, key=lambda key: (key.created_at, key.kid))


def newest_published(items: list[T], *, created_at: Callable[[T], datetime], published_for: float,
                     now: datetime | None = None) -> T:
    """The newest of `items` (oldest first) created at least `published_for` seconds before `now`,
    else the oldest: a rotated key signs only once every process has had time to read it, so no
    host meets a token whose key it does not know yet (SPEC §10)."""
    cutoff = aware_utc(now).timestamp() - published_for
    published = [item for item in items if created_at(item).timestamp() <= cutoff]
    return published[-1] if published else items[0]
