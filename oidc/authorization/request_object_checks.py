"""The rules of a request object (RFC 9101, OpenID Connect Core §6), each a step over parsed values that
raises the standard's error (`invalid_request_object`, with a finer reason for oidc.core.refusals): read the
compact JWS in its one spelling, take the algorithm the app registered, check the signature with the
app's keys, check the claims that make it this app's, for this provider, now. No input is a 500.

Signed objects carry `iss` (the client_id) and `aud` (the issuer) (OIDC Core §6.1: "If signed, the
Request Object SHOULD contain the Claims iss and aud"). Those of an app whose requests must be signed
(RFC 9101 §10.5) or held to FAPI 2.0 also carry `exp` and `jti` (RFC 9101 §10.8: a replayed object is
refused; FAPI's lifetime bound: at most MAX_LIFETIME from `nbf`, or from now); any other app's object
has them checked when it carries them (OIDC Core §6.1 asks neither, and the Foundation's signed request
object sends neither): such an object, like the query it stands for, asks for a sign-in and proves
nothing more. An unsigned one (`alg: none`, only from an app that allows them) proves nothing by its
claims, as the query's parameters prove nothing: the same claims are checked when it has them."""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError
from joserfc import jws
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from relying_parties.models import UNSIGNED_ALG, OidcClient
from oidc.core import refusals
from oidc.core.parameter_checks import REQUEST_OBJECT_LENGTH as MAX_LENGTH
from oidc.discovery.metadata import REQUEST_OBJECT_ALGORITHMS

LEEWAY = 60  # seconds of clock skew allowed on exp, nbf and iat (as on client assertions)
MAX_LIFETIME = 3600  # seconds from nbf (or now) to exp: FAPI 1.0 Advanced §5.2.2-13's 60 minutes
MAX_JTI_LENGTH = 256
UNSIGNED = UNSIGNED_ALG
SIGNING_ALGORITHMS = tuple(REQUEST_OBJECT_ALGORITHMS)  # discovery's request_object_signing_alg_values_supported
KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
MEDIA_TYPES = frozenset({"oauth-authz-req+jwt", "jwt"})  # `typ` (RFC 9101 §10.8), "application/" aside
OWN_CLAIMS = ("iss", "aud", "exp", "nbf", "iat", "jti")  # the object's own claims, never parameters
NEVER_INSIDE = ("request", "request_uri")  # RFC 9101 §4
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_SHOWN_NAME = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True)
class RequestObject:
    """A request object as read: its header and claims, not yet verified, and its compact form."""

    header: dict[str, Any]
    claims: dict[str, Any]
    compact: str

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def signed(self) -> bool:
        return self.alg != UNSIGNED


def refused(description: str, reason: str) -> InvalidRequestObjectError:
    return refusals.because(InvalidRequestObjectError(description), reason)


# --- reading ----------------------------------------------------------------------------------------

def read_object(value: object) -> RequestObject:
    """A compact JWS of at most MAX_LENGTH characters, each part base64url in its one spelling (RFC 7515
    §2: no padding, no stray bits), header and claims JSON objects without a repeated member; an
    encrypted one (five parts, JWE) is not supported."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_LENGTH:
        raise refused(f"A request object is a JWT of at most {MAX_LENGTH} characters.", "request_object_malformed")
    parts = value.split(".")
    if len(parts) == 5:
        raise refused("Encrypted request objects (JWE) are not supported: send it signed (JWS) alone.",
                      "request_object_encrypted")
    if len(parts) != 3:
        raise refused("A request object is a compact JWS: three base64url parts.", "request_object_malformed")
    header, claims, signature = (_decoded(part) for part in parts)
    read = RequestObject(header=_json_object(header, "header"), claims=_json_object(claims, "claims"), compact=value)
    check_header(read.header)
    if read.signed == (not signature):
        raise refused("A signed request object has a signature; an unsigned one (alg none) has none.",
                      "request_object_malformed")
    return read


def _decoded(part: str) -> bytes:
    raw = b""
    if _BASE64URL.fullmatch(part):
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            raw = b""
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != part:
        raise refused("A request object's parts are base64url without padding (RFC 7515 section 2).",
                      "request_object_malformed")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_without_repeats, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise refused(f"The request object's {what} is not a JSON object (each member once).",
                      "request_object_malformed")
    return value


def _without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    named = dict(pairs)
    if len(named) != len(pairs):
        raise ValueError("a repeated member")
    return named


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON number")


def check_header(header: Mapping[str, Any]) -> None:
    """An `alg`; a `typ` of a request object if any; no `crit` (no extension is understood, RFC 7515
    §4.1.11) and no `enc` (an encrypted object); a `kid`, if any, a short string."""
    if "enc" in header:
        raise refused("Encrypted request objects (JWE) are not supported.", "request_object_encrypted")
    if not isinstance(header.get("alg"), str) or "crit" in header:
        raise refused("The request object's header needs an alg and may have no crit.", "request_object_malformed")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower().removeprefix("application/") not in MEDIA_TYPES):
        raise refused("The request object's typ is oauth-authz-req+jwt (RFC 9101 section 10.8) or JWT.",
                      "request_object_malformed")
    kid = header.get("kid")
    if kid is not None and not (isinstance(kid, str) and 0 < len(kid) <= 256):
        raise refused("The request object's kid is a string.", "request_object_malformed")


# --- the app's algorithm and keys -------------------------------------------------------------------

def check_algorithm(read: RequestObject, client: OidcClient) -> None:
    """The app's rule (OpenID Connect Dynamic Registration §2): its `request_object_signing_alg` alone if
    it registered one ("none": unsigned only); else any of SIGNING_ALGORITHMS, and `none` only if it
    allows unsigned objects and does not require signed ones (RFC 9101 §10.5)."""
    alg, registered = read.alg, client.request_object_signing_alg
    if alg == UNSIGNED:
        allowed = registered == UNSIGNED or (registered is None and client.allow_unsigned_request_objects)
        if client.require_signed_request_object or not allowed:
            raise refused("This app's request objects must be signed (alg none is not accepted from it).",
                          "request_object_unsigned")
        return
    if alg not in SIGNING_ALGORITHMS:
        raise refused(f"A request object is signed with one of {', '.join(SIGNING_ALGORITHMS)}.",
                      "request_object_algorithm")
    if registered is not None and alg != registered:
        raise refused(f"This app registered {registered} for its request objects.", "request_object_algorithm")


def check_signature(read: RequestObject, keys: KeySet) -> None:
    """The signature checks out with one of the app's keys that fits the header: its `kid` if it names
    one, the algorithm's key type, a signing key."""
    if not read.signed:
        return
    fitting = [key for key in keys.keys if _fits(key.as_dict(private=False), read.header)]
    if not fitting:
        raise refused("None of this app's registered keys fits the request object (kid, key type).",
                      "request_object_key")
    try:
        compact = jws.extract_compact(read.compact.encode())
    except (JoseError, ValueError):  # a header member of the wrong type (jwk, x5c, b64, ...)
        raise refused("The request object's header does not read as a JWS header.", "request_object_malformed") \
            from None
    for key in fitting:
        try:
            if jws.validate_compact(compact, key, algorithms=[read.alg]):
                return
        except (JoseError, ValueError):
            continue  # a key of the right type that does not take this algorithm (an EC key of another curve)
    raise refused("The request object's signature does not check out with this app's keys.",
                  "request_object_signature")


def _fits(key: Mapping[str, Any], header: Mapping[str, Any]) -> bool:
    alg, kid = header["alg"], header.get("kid")
    return key.get("kty") == KEY_TYPES.get(alg) and key.get("use", "sig") == "sig" and key.get("alg", alg) == alg \
        and (kid is None or key.get("kid") == kid)


# --- the claims -------------------------------------------------------------------------------------

def check_claims(read: RequestObject, *, client_id: str, issuer: str, now: int, strict: bool = True) -> None:
    """`iss` the client, `aud` the issuer (or a list holding it), `exp` to come, `nbf` and `iat` past
    (LEEWAY aside), at most MAX_LIFETIME from `nbf` (or now) to `exp`, a `jti` of at most 256
    characters. A signed object must carry iss and aud, and exp and jti too when `strict` (the app's
    requests must be signed, or it is held to FAPI 2.0); each is checked whenever it is there."""
    signed, bound = read.signed, read.signed and strict
    registry = JWTClaimsRegistry(now=now, leeway=LEEWAY, iss={"essential": signed, "value": client_id},
                                 aud={"essential": signed, "value": issuer}, exp={"essential": bound},
                                 jti={"essential": bound})
    try:
        registry.validate(read.claims)
    except MissingClaimError as error:
        carried = "iss, aud, exp and jti" if bound else "iss and aud"
        raise refused(f"A signed request object of this app carries {carried}: {error.claim} is missing.",
                      "request_object_claims") from None
    except ExpiredTokenError:
        raise refused("The request object expired (exp).", "request_object_expired") from None
    except InvalidClaimError as error:
        raise refused(f"The request object's {error.claim} is not valid: iss is the client_id, aud the issuer "
                      f"{issuer}, exp, nbf and iat times.", "request_object_claims") from None
    exp, jti = read.claims.get("exp"), read.claims.get("jti")
    if exp is not None and exp - read.claims.get("nbf", now) > MAX_LIFETIME:
        raise refused(f"A request object lives at most {MAX_LIFETIME} seconds (from nbf, or now, to exp).",
                      "request_object_lifetime")
    if jti is not None and len(jti) > MAX_JTI_LENGTH:
        raise refused(f"The request object's jti is at most {MAX_JTI_LENGTH} characters.", "request_object_claims")


def object_params(read: RequestObject, *, client_id: str | None, response_type: str | None) -> dict[str, str]:
    """The authorization request's parameters the object carries (its claims but its own), each a
    string: a number as its digits, an object or list (`claims`) as compact JSON. The `client_id` and
    `response_type` of the query, if given, match the object's (OIDC Core §6.1); `request` and
    `request_uri` are never inside (RFC 9101 §4)."""
    claims = read.claims
    if any(name in claims for name in NEVER_INSIDE):
        raise refused("A request object holds no request or request_uri.", "request_object_claims")
    params = {name: _parameter(name, value) for name, value in claims.items() if name not in OWN_CLAIMS}
    for name, sent in (("client_id", client_id), ("response_type", response_type)):
        if sent is not None and name in params and params[name] != sent:
            raise refused(f"The request object's {name} differs from the query's.", "request_object_mismatch")
    return params


def _parameter(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    shown = name if _SHOWN_NAME.fullmatch(name) else "(a member)"
    raise refused(f"The request object's {shown} is a string.", "request_object_claims")
