"""The provider's ID token, checked as OpenID Connect Core §3.1.3.7 says, one named step per rule (SPEC §16):
the signature by one of the provider's keys with an algorithm it announced and citylogin allows (never `none`,
never an HMAC keyed with a public key: joserfc is given the allowed list and the public keys only), then
`iss`, `aud`, `azp`, `exp`, `iat`, `nonce` and `sub`. Each step takes the parsed claims and raises
TokenInvalid with its own reason; `identity_of` runs them in the standard's order."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Callable

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from joserfc.jws import extract_compact

from common.crypto.tokens import digests_equal
from federation.refusals import TokenInvalid, because

LEEWAY = 60          # seconds of clock difference allowed with the provider
MAX_AGE = 24 * 3600  # an ID token issued longer ago than this is not the answer to a request of 10 minutes
MAX_TOKEN_CHARS = 16 * 1024
MAX_SUB_CHARS = 255  # OIDC Core §2: sub is at most 255 ASCII characters
Claims = dict[str, Any]
IssuerCheck = Callable[[str, Claims], bool]


def _refused(reason: str) -> TokenInvalid:
    return because(TokenInvalid(), reason)


def header_of(id_token: str) -> dict[str, Any]:
    """The JWS header, read before any key is chosen; TokenInvalid if the token is no compact JWS."""
    if not isinstance(id_token, str) or len(id_token) > MAX_TOKEN_CHARS or id_token.count(".") != 2:
        raise _refused("id_token_malformed")
    try:
        return dict(extract_compact(id_token.encode("ascii")).headers())
    except (JoseError, ValueError, UnicodeError):
        raise _refused("id_token_malformed") from None


def check_alg(header: dict[str, Any], *, allowed: Sequence[str]) -> str:
    """§3.1.3.7 step 6-7: the algorithm is one the provider announced and citylogin allows (asymmetric only)."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        raise _refused("id_token_alg")
    return alg


def verify_signature(id_token: str, *, keys: KeySet, alg: str, kid: str | None) -> Claims:
    """§3.1.3.7 step 6: the signature, by the key `kid` names (or, without a kid, any of the provider's keys of
    the algorithm's type); the claims it carries."""
    candidates = [key for key in keys.keys if key.kid == kid] if kid else list(keys.keys)
    if not candidates:
        raise _refused("id_token_unknown_kid")
    for key in candidates:
        claims = _verified(id_token, key, alg)
        if claims is not None:
            return claims
    raise _refused("id_token_signature")


def _verified(id_token: str, key: Key, alg: str) -> Claims | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc's SecurityWarning about EdDSA's name (RFC 9864)
            token = jwt.decode(id_token, key, algorithms=[alg])
    except (JoseError, ValueError, TypeError):
        return None
    return dict(token.claims) if isinstance(token.claims, dict) else None


def check_iss(claims: Claims, *, issuer_matches: IssuerCheck) -> None:
    """§3.1.3.7 step 2: `iss` is the provider's (Microsoft's multi-tenant template: with the token's `tid`)."""
    iss = claims.get("iss")
    if not isinstance(iss, str) or not issuer_matches(iss, claims):
        raise _refused("id_token_iss")


def audiences(claims: Claims) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(each, str) for each in aud):
        return aud
    return []


def check_aud(claims: Claims, *, client_id: str) -> None:
    """§3.1.3.7 step 3: citylogin's client_id is among the audiences."""
    if client_id not in audiences(claims):
        raise _refused("id_token_aud")


def check_azp(claims: Claims, *, client_id: str) -> None:
    """§3.1.3.7 steps 4-5: with several audiences an `azp` is needed; an `azp` present is citylogin's."""
    azp = claims.get("azp")
    if azp is None and len(audiences(claims)) > 1:
        raise _refused("id_token_azp")
    if azp is not None and azp != client_id:
        raise _refused("id_token_azp")


def _number(claims: Claims, name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refused(f"id_token_{name}")
    return float(value)


def check_exp(claims: Claims, *, now: int) -> None:
    """§3.1.3.7 step 9: not expired (LEEWAY allowed for the clocks' difference)."""
    if _number(claims, "exp") <= now - LEEWAY:
        raise _refused("id_token_exp")


def check_iat(claims: Claims, *, now: int) -> None:
    """§3.1.3.7 step 10: issued neither in the future (beyond LEEWAY) nor too long ago."""
    iat = _number(claims, "iat")
    if iat > now + LEEWAY or iat < now - MAX_AGE:
        raise _refused("id_token_iat")


def check_nonce(claims: Claims, *, nonce: str) -> None:
    """§3.1.3.7 step 11: the nonce this round trip sent, compared in constant time."""
    said = claims.get("nonce")
    if not isinstance(said, str) or not digests_equal(said, nonce):
        raise _refused("id_token_nonce")


def check_auth_time(claims: Claims, *, not_before: int) -> None:
    """OIDC Core §3.1.3.7 step 13 (a re-authentication sent max_age=0): the person signed in at the provider
    after the round trip began, when the provider says when (`auth_time`); an older sign-in is not a fresh one."""
    if "auth_time" in claims and _number(claims, "auth_time") < not_before - LEEWAY:
        raise _refused("id_token_auth_time")


def check_sub(claims: Claims) -> str:
    """OIDC Core §2: `sub` is a non-empty string of at most 255 characters: with `iss`, the identity."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB_CHARS:
        raise _refused("id_token_sub")
    return sub


def checked_claims(id_token: str, *, keys_for: Callable[[str | None], KeySet], allowed_algs: Sequence[str],
                   issuer_matches: IssuerCheck, client_id: str, nonce: str, now: int) -> Claims:
    """The claims of `id_token` once every step passed; TokenInvalid naming the first that did not.
    `keys_for(kid)` gives the provider's keys, fetched again when they lack `kid`."""
    header = header_of(id_token)
    alg = check_alg(header, allowed=allowed_algs)
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    claims = verify_signature(id_token, keys=keys_for(kid), alg=alg, kid=kid)
    check_iss(claims, issuer_matches=issuer_matches)
    check_aud(claims, client_id=client_id)
    check_azp(claims, client_id=client_id)
    check_exp(claims, now=now)
    check_iat(claims, now=now)
    check_nonce(claims, nonce=nonce)
    check_sub(claims)
    return claims
