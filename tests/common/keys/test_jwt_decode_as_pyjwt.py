"""citylogin's access-token check decodes each part once and checks the signature itself (issue 53: PyJWT
parsed every token twice and checked each character in Python). Nothing faster may be less strict: a
property test holds it to what PyJWT decided, as citylogin asked PyJWT before, for tokens an attacker could
make with or without our key: every header and claim of the wrong kind, missing, or of another value; a
token is taken by one exactly when the other takes it, with the same claims, or refused for the same reason."""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from common.keys.jwt_keys import (ALGORITHM, TOKEN_TYPE, JwtKeyRing, TokenError, _check_times, new_signing_key,
                                  one_spelling)

ISSUER, AUDIENCE, PROVIDER = "citylogin", "citylogin", "https://citylogin.example"
KEY = new_signing_key(datetime.now(timezone.utc) - timedelta(minutes=1))
RING = JwtKeyRing([KEY], issuer=ISSUER, audience=AUDIENCE)
OTHER_KEY = Ed25519PrivateKey.generate()
NOW = int(time.time())

# How citylogin asked PyJWT (common/keys/jwt_keys.py up to 2258621): the reference the faster check is held to.
_PYJWT_OPTIONS: Any = {"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": False, "verify_nbf": False,
                       "verify_iat": False}


def pyjwt_decode(token: str, *, issuer: str | list[str] | None = None, audience: str | list[str] | None = None,
                 verify_audience: bool = True) -> dict:
    if not one_spelling(token):
        raise TokenError("invalid_token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("invalid_token") from None
    kid = header.get("kid")
    if header.get("typ") != TOKEN_TYPE or not isinstance(kid, str) or kid != KEY.kid:
        raise TokenError("invalid_token")
    options = {**_PYJWT_OPTIONS, "verify_aud": verify_audience}
    try:
        claims = jwt.decode(token, KEY.private_key.public_key(), algorithms=[ALGORITHM], issuer=issuer or ISSUER,
                            audience=(audience or AUDIENCE) if verify_audience else None, options=options)
    except jwt.PyJWTError:
        raise TokenError("invalid_token") from None
    _check_times(claims, datetime.now(timezone.utc))
    return claims


def outcome(decode, token: str, **kwargs) -> tuple[str, Any]:
    try:
        return "taken", decode(token, **kwargs)
    except TokenError as refused:
        return "refused", refused.code


TEXT = st.sampled_from([ISSUER, PROVIDER, "someone-else", ""])
WRONG = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**40, max_value=2**40),
                  st.floats(allow_nan=False, allow_infinity=False, width=32), st.lists(TEXT, max_size=2),
                  st.dictionaries(TEXT, TEXT, max_size=1))
TIME = st.one_of(st.integers(min_value=NOW - 7200, max_value=NOW + 7200), WRONG)
AUDIENCES = st.one_of(TEXT, st.lists(st.one_of(TEXT, st.integers()), max_size=3), WRONG)


@st.composite
def tokens(draw: st.DrawFn) -> str:
    """A good token of either issuer, then up to three of its headers or claims changed or taken out, and
    signed by our key or another: the tokens that sit next to a good one, where a check could slip."""
    claims: dict[str, Any] = {"exp": NOW + 600, "iat": NOW - 5, "nbf": NOW - 5,
                              "iss": draw(st.sampled_from([ISSUER, PROVIDER])),
                              "aud": draw(st.sampled_from([AUDIENCE, "app_1", [AUDIENCE], ["app_1", "x"]])),
                              "sub": "u-1", "jti": "j-1", "client_id": "app_1"}
    headers: dict[str, Any] = {"typ": TOKEN_TYPE, "kid": KEY.kid, "alg": ALGORITHM}
    changes = {"exp": TIME, "iat": TIME, "nbf": TIME, "iss": st.one_of(TEXT, WRONG), "aud": AUDIENCES,
               "sub": WRONG, "jti": WRONG, "typ": st.sampled_from(["JWT", None, 1]),
               "kid": st.sampled_from(["unknown", 7, None]), "alg": st.sampled_from(["HS256", "none", "Ed25519"]),
               "crit": st.just(["exp"]), "b64": st.booleans(), "zip": st.just("DEF")}
    for name in draw(st.lists(st.sampled_from(sorted(changes)), max_size=3, unique=True)):
        held = headers if name in ("typ", "kid", "alg", "crit", "b64", "zip") else claims
        if name in held and draw(st.booleans()) and not draw(st.booleans()):
            del held[name]
        else:
            held[name] = draw(changes[name])
    key = OTHER_KEY if draw(st.integers(min_value=0, max_value=7)) == 0 else KEY.private_key
    # By hand: PyJWT's encoder refuses some of these claims, an attacker's does not.
    signed = f"{_part(json.dumps(headers).encode())}.{_part(json.dumps(claims).encode())}"
    return f"{signed}.{_part(key.sign(signed.encode()))}"


def _part(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ASKED = st.sampled_from([{}, {"issuer": PROVIDER, "verify_audience": False},
                         {"issuer": [ISSUER, PROVIDER], "verify_audience": False},
                         {"issuer": PROVIDER, "audience": "app_1"}, {"issuer": PROVIDER, "audience": ["x", "app_1"]}])


@settings(max_examples=600, deadline=None)
@given(token=tokens(), asked=ASKED)
def test_a_token_is_taken_or_refused_as_pyjwt_decided(token: str, asked: dict) -> None:
    ours, pyjwts = outcome(RING.decode, token, **asked), outcome(pyjwt_decode, token, **asked)
    first = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    if "crit" in header or "b64" in header:
        assert ours == ("refused", "invalid_token")  # never written by citylogin: refused whatever PyJWT says
    else:
        assert ours == pyjwts


def test_an_issued_token_is_taken_with_its_claims() -> None:
    token = RING.sign({"sub": "u-1", "sid": "s-1", "did": "d-1"}, ttl_seconds=600)
    assert outcome(RING.decode, token) == outcome(pyjwt_decode, token)
    assert RING.decode(token)["sid"] == "s-1"
