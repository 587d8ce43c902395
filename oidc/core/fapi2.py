"""What the FAPI 2.0 Security Profile (final) enforces for an app held to it (`apps add --profile fapi2`) on
top of what every app gets: its client assertions and its DPoP proofs, each rule a named step over parsed
values. The rest of the profile is the app's flags' (relying_parties.models.OidcClient: PAR, PKCE S256 and DPoP
required, its refresh token kept) and what citylogin does for every app (`iss` in every authorization
response, codes of 60 s, pushed requests of 60 s, 303 redirects); relying_parties.profiles says which registrations
can comply."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from relying_parties.profiles import SIGNING_ALGORITHMS

# §5.4-1: client assertions signed with PS256, ES256 or EdDSA (RS256 refused: the suite's
# fapi2-security-profile-final-ensure-signed-client-assertion-with-RS256-fails).
ASSERTION_ALGORITHMS = SIGNING_ALGORITHMS
# §5.4-1 again, for DPoP proofs: of the algorithms citylogin takes (common.crypto.dpop), ES256 and EdDSA.
DPOP_ALGORITHMS = ("ES256", "EdDSA")
# §5.3.2.1-14: an iat or nbf up to 10 s ahead of the server's clock is accepted, one over 60 s ahead refused.
MAX_AHEAD = 60


def assertion_problem(header: dict[str, Any], claims: dict[str, Any], *, issuer: str, now: int) -> str | None:
    """Why a FAPI 2.0 app's client assertion (its header and claims, read before its signature is checked)
    is refused, or None: what RFC 7523 leaves open and the profile closes. The signature, `exp`, `jti`
    and the rest are Authlib's and oidc.registration.client_keys' as for every app."""
    for step in ASSERTION_STEPS:
        problem = step(header, claims, issuer, now)
        if problem is not None:
            return problem
    return None


def _algorithm(header: dict[str, Any], claims: dict[str, Any], issuer: str, now: int) -> str | None:
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        return f"A FAPI 2.0 client assertion is signed with {', '.join(ASSERTION_ALGORITHMS)}."
    return None


def _audience(header: dict[str, Any], claims: dict[str, Any], issuer: str, now: int) -> str | None:
    """§5.3.2.1-8 (final): the issuer identifier alone, as a string: not an endpoint's URL, not an array,
    even one holding the issuer (the audience injection the final text closed)."""
    if not issuer_audience(claims.get("aud"), issuer=issuer):
        return f"A FAPI 2.0 client assertion's aud is the issuer, {issuer}, as a string."
    return None


def issuer_audience(aud: object, *, issuer: str) -> bool:
    """Whether `aud` is the string `issuer`, exactly (RFC 3986 §6.2.1 simple string comparison)."""
    return isinstance(aud, str) and aud == issuer


def _times(header: dict[str, Any], claims: dict[str, Any], issuer: str, now: int) -> str | None:
    for name in ("iat", "nbf"):
        if name in claims and not within_ahead(claims[name], now=now):
            return f"A FAPI 2.0 client assertion's {name} is a time at most {MAX_AHEAD} s ahead of the server's."
    return None


def within_ahead(value: object, *, now: int) -> bool:
    """Whether `value` is a NumericDate no more than MAX_AHEAD seconds after `now`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value <= now + MAX_AHEAD


ASSERTION_STEPS: tuple[Callable[[dict[str, Any], dict[str, Any], str, int], str | None], ...] = (
    _algorithm, _audience, _times)
