"""Password hashes brought by an import (SPEC §17): read in the forms the sources write, kept in one
canonical PHC / modular-crypt form, and verified by each scheme's own well-kept library.

Canonical forms (what follows `IMPORTED_PREFIX` in a users item):

- bcrypt ``$2b$12$<53 chars>`` ($2a$ and $2y$ are the same algorithm and become $2b$);
- Argon2 ``$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>`` (also argon2i, argon2d; v=16 for version 1.0);
- PBKDF2 ``$pbkdf2-sha256$i=27500,l=64$<salt>$<hash>`` (also sha1, sha224, sha384, sha512);
- scrypt ``$scrypt$ln=15,r=8,p=1$<salt>$<hash>``;

salts and hashes in standard base64 without padding. Also read: passlib's forms (``$pbkdf2-sha256$29000$..``
in its adapted base64, ``$pbkdf2$`` for sha1, ``$scrypt$``), Keycloak's credentials (`keycloak_hash`) and
Django's (``pbkdf2_sha256$..``, ``argon2$argon2id$..``, ``bcrypt$$2b$..``). Every cost is bounded
(`BOUNDS`): an import file is data from elsewhere, and every password check pays one verify per scheme key
in use (PasswordHasher), so a hash whose cost is beyond them is refused rather than made everyone's login.
Error messages never contain the hash."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import bcrypt
from argon2 import low_level as argon2_raw
from argon2.exceptions import HashingError, VerificationError, VerifyMismatchError


class UnknownScheme(ValueError):
    """The text is not a hash of a scheme citylogin verifies."""


class InvalidHash(ValueError):
    """A hash of a known scheme that is malformed or whose cost is beyond `BOUNDS`."""


@dataclass(frozen=True)
class Bounds:
    """What one imported hash may cost to verify. A verify runs on every password check of the
    deployment while its scheme key is in use, so these keep the worst case at a few seconds."""
    max_text: int = 1024
    bcrypt_cost: tuple[int, int] = (4, 16)
    pbkdf2_iterations: tuple[int, int] = (1, 10_000_000)
    pbkdf2_length: tuple[int, int] = (16, 128)  # bytes of derived key; Keycloak's sha512 writes 64
    salt_bytes: tuple[int, int] = (8, 256)
    scrypt_memory: int = 256 * 1024 * 1024  # 128 * r * 2**ln bytes
    scrypt_work: int = 1 << 23  # 2**ln * r * p
    argon2_memory_kib: tuple[int, int] = (8, 262_144)
    argon2_time: tuple[int, int] = (1, 32)
    argon2_work_kib: int = 1 << 20  # m * t
    argon2_parallelism: tuple[int, int] = (1, 16)
    hash_bytes: tuple[int, int] = (16, 128)


BOUNDS = Bounds()
BCRYPT_MAX_PASSWORD = 72  # bcrypt only reads this many bytes; the sources verified the same prefix
_PBKDF2_DIGESTS = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}
_ARGON2_TYPES = {"argon2id": argon2_raw.Type.ID, "argon2i": argon2_raw.Type.I, "argon2d": argon2_raw.Type.D}
_ARGON2_VERSIONS = {16, 19}
_NUMBER = re.compile(r"[0-9]{1,10}", re.ASCII)
_BCRYPT_BODY = re.compile(r"[./A-Za-z0-9]{53}", re.ASCII)
_B64 = re.compile(r"[A-Za-z0-9+/.]*={0,2}", re.ASCII)


class ImportedHash(Protocol):
    def text(self) -> str: ...

    def key(self) -> str: ...

    def matches(self, password: bytes) -> bool: ...


def _within(value: int, bounds: tuple[int, int], what: str) -> int:
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidHash(f"{what} is outside {bounds[0]}..{bounds[1]}")
    return value


def _number(text: str, what: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise InvalidHash(f"{what} is not a number")
    return int(text)


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 or passlib's adapted base64 ('.' for '+'), padding optional."""
    if not _B64.fullmatch(text) or ("." in text and "+" in text):
        raise InvalidHash(f"{what} is not base64")
    body = text.rstrip("=").replace(".", "+")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidHash(f"{what} is not base64") from None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _params(text: str, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, int]:
    """``a=1,b=2`` with exactly `names` (and maybe `optional`), each once, each a decimal number."""
    found: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or name not in names + optional or name in found:
            raise InvalidHash("unexpected parameters")
        found[name] = _number(value, name)
    if not set(names) <= set(found):
        raise InvalidHash("missing parameters")
    return found


@dataclass(frozen=True)
class Bcrypt:
    cost: int
    body: str  # 22 characters of salt, 31 of hash

    def __post_init__(self) -> None:
        _within(self.cost, BOUNDS.bcrypt_cost, "bcrypt cost")
        if not _BCRYPT_BODY.fullmatch(self.body):
            raise InvalidHash("not a bcrypt hash")

    def text(self) -> str:
        return f"$2b${self.cost:02d}${self.body}"

    def key(self) -> str:
        return f"bcrypt${self.cost}"

    def matches(self, password: bytes) -> bool:
        return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], self.text().encode("ascii"))


@dataclass(frozen=True)
class Pbkdf2:
    digest: str
    iterations: int
    salt: bytes
    derived: bytes

    def __post_init__(self) -> None:
        if self.digest not in _PBKDF2_DIGESTS:
            raise UnknownScheme("not a PBKDF2 digest citylogin verifies")
        _within(self.iterations, BOUNDS.pbkdf2_iterations, "PBKDF2 iterations")
        _within(len(self.salt), BOUNDS.salt_bytes, "salt length")
        _within(len(self.derived), BOUNDS.pbkdf2_length, "PBKDF2 key length")

    def text(self) -> str:
        return (f"$pbkdf2-{self.digest}$i={self.iterations},l={len(self.derived)}"
                f"${_b64encode(self.salt)}${_b64encode(self.derived)}")

    def key(self) -> str:
        return f"pbkdf2-{self.digest}${self.iterations},{len(self.derived)}"

    def matches(self, password: bytes) -> bool:
        found = hashlib.pbkdf2_hmac(self.digest, password, self.salt, self.iterations, dklen=len(self.derived))
        return hmac.compare_digest(found, self.derived)


@dataclass(frozen=True)
class Scrypt:
    ln: int
    r: int
    p: int
    salt: bytes
    derived: bytes

    def __post_init__(self) -> None:
        _within(self.ln, (1, 24), "scrypt ln")
        _within(self.r, (1, 64), "scrypt r")
        _within(self.p, (1, 64), "scrypt p")
        if 128 * self.r << self.ln > BOUNDS.scrypt_memory or self.r * self.p << self.ln > BOUNDS.scrypt_work:
            raise InvalidHash("scrypt cost is beyond bounds")
        _within(len(self.salt), BOUNDS.salt_bytes, "salt length")
        _within(len(self.derived), BOUNDS.hash_bytes, "hash length")

    def text(self) -> str:
        return f"$scrypt$ln={self.ln},r={self.r},p={self.p}${_b64encode(self.salt)}${_b64encode(self.derived)}"

    def key(self) -> str:
        return f"scrypt${self.ln},{self.r},{self.p}"

    def matches(self, password: bytes) -> bool:
        found = hashlib.scrypt(password, salt=self.salt, n=1 << self.ln, r=self.r, p=self.p,
                               maxmem=BOUNDS.scrypt_memory + (16 << 20), dklen=len(self.derived))
        return hmac.compare_digest(found, self.derived)


@dataclass(frozen=True)
class Argon2:
    variant: str
    version: int
    memory: int
    time: int
    parallelism: int
    salt: bytes
    derived: bytes

    def __post_init__(self) -> None:
        if self.variant not in _ARGON2_TYPES:
            raise UnknownScheme("not an Argon2 variant")
        if self.version not in _ARGON2_VERSIONS:
            raise InvalidHash("unknown Argon2 version")
        _within(self.memory, BOUNDS.argon2_memory_kib, "Argon2 memory")
        _within(self.time, BOUNDS.argon2_time, "Argon2 time cost")
        _within(self.parallelism, BOUNDS.argon2_parallelism, "Argon2 parallelism")
        if self.memory < 8 * self.parallelism or self.memory * self.time > BOUNDS.argon2_work_kib:
            raise InvalidHash("Argon2 cost is beyond bounds")
        _within(len(self.salt), BOUNDS.salt_bytes, "salt length")
        _within(len(self.derived), BOUNDS.hash_bytes, "hash length")

    def text(self) -> str:
        return (f"${self.variant}$v={self.version}$m={self.memory},t={self.time},p={self.parallelism}"
                f"${_b64encode(self.salt)}${_b64encode(self.derived)}")

    def key(self) -> str:
        return f"{self.variant}${self.memory},{self.time},{self.parallelism}"

    def matches(self, password: bytes) -> bool:
        found = argon2_raw.hash_secret_raw(password, self.salt, time_cost=self.time, memory_cost=self.memory,
                                           parallelism=self.parallelism, hash_len=len(self.derived),
                                           type=_ARGON2_TYPES[self.variant], version=self.version)
        return hmac.compare_digest(found, self.derived)


def _bcrypt(parts: list[str]) -> Bcrypt:
    if len(parts) != 4 or len(parts[2]) != 2:
        raise InvalidHash("not a bcrypt hash")
    return Bcrypt(cost=_number(parts[2], "bcrypt cost"), body=parts[3])


def _argon2(parts: list[str]) -> Argon2:
    if len(parts) == 5:  # no v=: version 1.0, as the reference implementation reads it
        parts = [*parts[:2], "v=16", *parts[2:]]
    if len(parts) != 6:
        raise InvalidHash("not an Argon2 hash")
    version = _params(parts[2], ("v",))["v"]
    cost = _params(parts[3], ("m", "t", "p"))
    return Argon2(variant=parts[1], version=version, memory=cost["m"], time=cost["t"], parallelism=cost["p"],
                  salt=_b64decode(parts[4], "salt"), derived=_b64decode(parts[5], "hash"))


def _pbkdf2(parts: list[str]) -> Pbkdf2:
    """passlib's ``$pbkdf2-sha256$29000$<ab64>$<ab64>`` (``$pbkdf2$`` being its sha1) or ``i=..,l=..``."""
    if len(parts) != 5:
        raise InvalidHash("not a PBKDF2 hash")
    digest = "sha1" if parts[1] == "pbkdf2" else parts[1].removeprefix("pbkdf2-")
    if digest not in _PBKDF2_DIGESTS:
        raise UnknownScheme("not a PBKDF2 digest citylogin verifies")
    if _NUMBER.fullmatch(parts[2]):
        cost = {"i": int(parts[2])}
    else:
        cost = _params(parts[2], ("i",), ("l",))
    derived = _b64decode(parts[4], "hash")
    if cost.get("l", len(derived)) != len(derived):
        raise InvalidHash("PBKDF2 key length differs from the hash's")
    return Pbkdf2(digest=digest, iterations=cost["i"], salt=_b64decode(parts[3], "salt"), derived=derived)


def _scrypt(parts: list[str]) -> Scrypt:
    if len(parts) != 5:
        raise InvalidHash("not a scrypt hash")
    cost = _params(parts[2], ("ln", "r", "p"))
    return Scrypt(ln=cost["ln"], r=cost["r"], p=cost["p"], salt=_b64decode(parts[3], "salt"),
                  derived=_b64decode(parts[4], "hash"))


_DJANGO_PBKDF2 = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}
_DJANGO_SALT = re.compile(r"[!-#%-~]{1,256}", re.ASCII)  # printable ASCII but '$': Django's own are alphanumeric


def _django(text: str) -> ImportedHash:
    """Django's ``pbkdf2_sha256$<iterations>$<salt>$<base64>`` (its salt is text, used as its bytes) and
    its ``argon2$argon2id$...`` and ``bcrypt$$2b$...``, the forms a database of Django accounts holds."""
    algorithm, _, rest = text.partition("$")
    if algorithm == "argon2" and rest.startswith("argon2"):
        return parse("$" + rest)
    if algorithm == "bcrypt" and rest.startswith("$2"):
        return parse(rest)
    if algorithm not in _DJANGO_PBKDF2:
        raise UnknownScheme("not a PHC or modular-crypt hash")
    parts = rest.split("$")
    if len(parts) != 3 or not _DJANGO_SALT.fullmatch(parts[1]):
        raise InvalidHash("not a Django PBKDF2 hash")
    return Pbkdf2(digest=_DJANGO_PBKDF2[algorithm], iterations=_number(parts[0], "PBKDF2 iterations"),
                  salt=parts[1].encode("ascii"), derived=_b64decode(parts[2], "hash"))


def parse(text: str) -> ImportedHash:
    """The hash `text` stands for, in any accepted form; UnknownScheme or InvalidHash otherwise."""
    if not isinstance(text, str):
        raise UnknownScheme("not a PHC or modular-crypt hash")
    if not text.startswith("$"):
        if len(text) > BOUNDS.max_text or not text.isascii():
            raise UnknownScheme("not a PHC or modular-crypt hash")
        return _django(text)
    if len(text) > BOUNDS.max_text or not text.isascii():
        raise InvalidHash("not a hash")
    parts = text.split("$")
    ident = parts[1]
    if ident in ("2a", "2b", "2y"):
        return _bcrypt(parts)
    if ident in _ARGON2_TYPES:
        return _argon2(parts)
    if ident == "pbkdf2" or ident.startswith("pbkdf2-"):
        return _pbkdf2(parts)
    if ident == "scrypt":
        return _scrypt(parts)
    raise UnknownScheme("not a hash scheme citylogin verifies")


def canonical_hash(text: str) -> str:
    """The canonical form of a PHC / modular-crypt hash as an export gives it (without IMPORTED_PREFIX)."""
    return parse(text).text()


def scheme_key(canonical: str) -> str:
    """The cost class of a hash: what verifying it pays, e.g. ``bcrypt$12``, ``argon2id$7168,5,1`` (m,t,p),
    ``pbkdf2-sha256$27500,64`` (iterations, key bytes: a key longer than the digest costs one more run
    each), ``scrypt$15,8,1`` (ln,r,p)."""
    return parse(canonical).key()


def verify(canonical: str, password: str) -> bool:
    """True if `password` matches the imported hash; False on a mismatch or any unusable hash."""
    try:
        found = parse(canonical)
        return found.matches(password.encode("utf-8"))
    except (ValueError, UnicodeEncodeError, VerificationError, VerifyMismatchError, HashingError):
        return False


def _key_numbers(text: str, count: int) -> list[int]:
    numbers = text.split(",")
    if len(numbers) != count:
        raise InvalidHash("not a scheme key")
    return [_number(number, "scheme key") for number in numbers]


def _keyed(key: str) -> ImportedHash:
    """A hash of scheme key `key` with a random salt and hash (a bcrypt one only of the right form)."""
    if not isinstance(key, str) or len(key) > 64 or not key.isascii():
        raise InvalidHash("not a scheme key")
    name, _, numbers = key.partition("$")
    salt, derived = secrets.token_bytes(16), secrets.token_bytes(32)
    if name == "bcrypt":
        (cost,) = _key_numbers(numbers, 1)
        return Bcrypt(cost=cost, body="." * 53)
    if name in _ARGON2_TYPES:
        memory, time, parallelism = _key_numbers(numbers, 3)
        return Argon2(variant=name, version=19, memory=memory, time=time, parallelism=parallelism,
                      salt=salt, derived=derived)
    if name.startswith("pbkdf2-"):
        iterations, length = _key_numbers(numbers, 2)
        _within(length, BOUNDS.pbkdf2_length, "PBKDF2 key length")
        return Pbkdf2(digest=name.removeprefix("pbkdf2-"), iterations=iterations, salt=salt,
                      derived=secrets.token_bytes(length))
    if name == "scrypt":
        ln, r, p = _key_numbers(numbers, 3)
        return Scrypt(ln=ln, r=r, p=p, salt=salt, derived=derived)
    raise UnknownScheme("not a scheme key citylogin knows")


def check_scheme_key(key: str) -> str:
    """`key` itself if it is a scheme key as `scheme_key` writes it, within the bounds; else
    UnknownScheme or InvalidHash."""
    if _keyed(key).key() != key:
        raise InvalidHash("not a scheme key as citylogin writes it")
    return key


def dummy_hash(key: str) -> str:
    """A canonical hash of a random password with the cost of scheme key `key` (bounds checked):
    what a password check verifies for a scheme its stored hash is not of."""
    keyed = _keyed(check_scheme_key(key))
    if isinstance(keyed, Bcrypt):  # a real one: the library may refuse a made-up body before its work
        return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(keyed.cost)).decode("ascii")
    return keyed.text()


_KEYCLOAK_PBKDF2 = {"pbkdf2": "sha1", "pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}
_KEYCLOAK_ARGON2_TYPES = {"id": "argon2id", "i": "argon2i", "d": "argon2d"}
_KEYCLOAK_ARGON2_VERSIONS = {"1.3": 19, "1.0": 16}


def _first(parameters: Any, name: str) -> str:
    """One of Keycloak's additionalParameters: a MultivaluedHashMap, written as ``{"memory": ["7168"]}``."""
    value = parameters.get(name) if isinstance(parameters, Mapping) else None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise InvalidHash(f"Keycloak's {name} is missing")
    return value


def _keycloak_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidHash(f"{what} is not a number")
    return value if isinstance(value, int) else _number(value, what)


def _keycloak_b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) > BOUNDS.max_text:
        raise InvalidHash(f"{what} is not base64")
    return _b64decode(value, what)


def _keycloak_argon2(secret_data: Mapping[str, Any], credential_data: Mapping[str, Any]) -> Argon2:
    parameters = credential_data.get("additionalParameters")
    variant = _KEYCLOAK_ARGON2_TYPES.get(_first(parameters, "type"))
    version = _KEYCLOAK_ARGON2_VERSIONS.get(_first(parameters, "version"))
    if variant is None or version is None:
        raise InvalidHash("unknown Argon2 type or version")
    derived = _keycloak_b64(secret_data.get("value"), "hash")
    if _number(_first(parameters, "hashLength"), "hashLength") != len(derived):
        raise InvalidHash("Argon2 hashLength differs from the hash's")
    return Argon2(variant=variant, version=version, memory=_number(_first(parameters, "memory"), "memory"),
                  time=_keycloak_number(credential_data.get("hashIterations"), "hashIterations"),
                  parallelism=_number(_first(parameters, "parallelism"), "parallelism"),
                  salt=_keycloak_b64(secret_data.get("salt"), "salt"), derived=derived)


def keycloak_hash(secret_data: Mapping[str, Any], credential_data: Mapping[str, Any]) -> str:
    """The canonical form of a Keycloak password credential, its ``secretData`` (``value``, ``salt``) and
    ``credentialData`` (``hashIterations``, ``algorithm``, ``additionalParameters``) already parsed from
    their JSON strings. The legacy shape (``hashedSaltedValue``, ``salt``, ``hashIterations``, ``algorithm``)
    maps onto the same two. Keycloak's ``pbkdf2`` (HMAC-SHA1, its default before version 3) is accepted:
    HMAC-SHA1 is still a sound PRF, and the first sign-in replaces it with Argon2id."""
    if not isinstance(secret_data, Mapping) or not isinstance(credential_data, Mapping):
        raise InvalidHash("not a Keycloak credential")
    algorithm = credential_data.get("algorithm")
    if algorithm == "argon2":
        return _keycloak_argon2(secret_data, credential_data).text()
    if not isinstance(algorithm, str) or algorithm not in _KEYCLOAK_PBKDF2:
        raise UnknownScheme("not a Keycloak hash algorithm citylogin verifies")
    return Pbkdf2(digest=_KEYCLOAK_PBKDF2[algorithm],
                  iterations=_keycloak_number(credential_data.get("hashIterations"), "hashIterations"),
                  salt=_keycloak_b64(secret_data.get("salt"), "salt"),
                  derived=_keycloak_b64(secret_data.get("value"), "hash")).text()
