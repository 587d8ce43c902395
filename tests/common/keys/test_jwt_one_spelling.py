"""One spelling per token (SPEC §14): anything added to a JWT citylogin or the guard reads — padding, an
unused low bit set in a part's last character, '+' or '/' for '-' or '_', a character put in anywhere —
makes it invalid, although base64 decoders (PyJWT's among them) read many of these as the same bytes.
Property tests: whatever text an attacker derives from an issued token, only the issued text is accepted."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from citylogin_guard.errors import Unauthorized
from citylogin_guard.jwks import KeySet
from citylogin_guard.tokens import SESSION_REVOKED, InvalidSecurityEvent, access_token_claims, sessions_ended
from common.keys.jwt_keys import JwtKeyRing, TokenError, new_signing_key, one_spelling
from tests.guard.transmitter import Signer

ISSUER, AUDIENCE, CLIENT_ID = "https://citylogin.example", "citylogin", "app-1"
RING = JwtKeyRing([new_signing_key(datetime.now(timezone.utc) - timedelta(minutes=1))], issuer=ISSUER,
                  audience=AUDIENCE)
ISSUED = RING.sign({"sub": "u-1", "sid": "s-1", "did": "d-1"}, ttl_seconds=3600)
SIGNER = Signer()
GUARD_KEYS = KeySet(lambda: {"keys": [SIGNER.jwk()]})
_NOW = int(time.time())
GUARD_ISSUED = SIGNER.sign({"iss": ISSUER, "aud": AUDIENCE, "sub": "u-1", "sid": "s-1", "did": "d-1",
                            "iat": _NOW, "exp": _NOW + 3600}, typ="at+jwt")
GUARD_SET = SIGNER.sign({"iss": ISSUER, "aud": CLIENT_ID, "jti": "j-1", "iat": _NOW, "events": {SESSION_REVOKED: {
    "subject": {"format": "complex", "session": {"format": "opaque", "id": "s-1"}}, "event_timestamp": _NOW}}},
    typ="secevent+jwt")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _same_bytes_other_spelling(token: str, part: int) -> str:
    """The token with one part's last character changed so that base64 still decodes it to the same
    bytes (its unused low bits set), or its '-'/'_' written as '+'/'/': what a lenient decoder accepts."""
    parts = token.split(".")
    text = parts[part]
    unused = {2: 4, 3: 2}.get(len(text) % 4, 0)  # low bits the last character carries beyond the bytes
    if unused:
        last = ALPHABET.index(text[-1])
        parts[part] = text[:-1] + ALPHABET[last | ((1 << unused) - 1)] if last & ((1 << unused) - 1) == 0 \
            else text[:-1] + ALPHABET[last & ~((1 << unused) - 1)]
    else:
        parts[part] = text.replace("-", "+").replace("_", "/") if ("-" in text or "_" in text) else text + "="
    return ".".join(parts)


@st.composite
def edited(draw: st.DrawFn, token: str) -> str:
    """`token` as an attacker would re-spell it: padding, another spelling of the same bytes, a character
    put in, taken out or changed anywhere, whitespace around it."""
    kind = draw(st.sampled_from(["pad", "bits", "insert", "cut", "change", "around"]))
    if kind == "pad":
        return token + draw(st.sampled_from(["=", "==", "===", ".", "\n", " "]))
    if kind == "bits":
        return _same_bytes_other_spelling(token, draw(st.integers(min_value=0, max_value=2)))
    at = draw(st.integers(min_value=0, max_value=len(token) - 1))
    piece = draw(st.sampled_from(["=", "==", "+", "/", ".", " ", "\n", "A", "_", "-", "%3D", "é"]))
    if kind == "insert":
        return token[:at] + piece + token[at:]
    if kind == "cut":
        return token[:at] + token[at + 1:]
    if kind == "change":
        return token[:at] + draw(st.sampled_from(ALPHABET + "=+/")) + token[at + 1:]
    return draw(st.sampled_from([" ", "\n", "\t", "="])) + token


def test_the_issued_texts_are_accepted():
    assert RING.decode(ISSUED)["sub"] == "u-1"
    assert access_token_claims(GUARD_ISSUED, keys=GUARD_KEYS, issuer=ISSUER, audience=AUDIENCE, leeway=1.0,
                               may_block=True)["sid"] == "s-1"
    assert sessions_ended(GUARD_SET, keys=GUARD_KEYS, issuer=ISSUER, client_id=CLIENT_ID, leeway=1.0)
    assert all(one_spelling(token) for token in (ISSUED, GUARD_ISSUED, GUARD_SET))


@pytest.mark.parametrize("part", [0, 1, 2])
def test_the_same_bytes_spelled_otherwise_are_another_text_and_refused(part):
    """The edits a lenient decoder forgives: citylogin and the guard refuse them."""
    for token in (ISSUED, GUARD_ISSUED):
        respelled = _same_bytes_other_spelling(token, part)
        assert respelled != token and not one_spelling(respelled)
    with pytest.raises(TokenError):
        RING.decode(_same_bytes_other_spelling(ISSUED, part))
    with pytest.raises(Unauthorized):
        access_token_claims(_same_bytes_other_spelling(GUARD_ISSUED, part), keys=GUARD_KEYS, issuer=ISSUER,
                            audience=AUDIENCE, leeway=1.0, may_block=True)
    with pytest.raises(InvalidSecurityEvent):
        sessions_ended(_same_bytes_other_spelling(GUARD_SET, part), keys=GUARD_KEYS, issuer=ISSUER,
                       client_id=CLIENT_ID, leeway=1.0)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(edited(ISSUED), st.text(max_size=200)))
@example(text=ISSUED + "==")
@example(text=ISSUED + "=")
def test_citylogin_accepts_no_text_but_the_issued_one(text):
    if text == ISSUED:
        assert RING.decode(text)["sub"] == "u-1"
        return
    with pytest.raises(TokenError):
        RING.decode(text)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(edited(GUARD_ISSUED), st.text(max_size=200)))
@example(text=GUARD_ISSUED + "==")
def test_the_guard_accepts_no_access_token_text_but_the_issued_one(text):
    if text == GUARD_ISSUED:
        return
    with pytest.raises(Unauthorized):
        access_token_claims(text, keys=GUARD_KEYS, issuer=ISSUER, audience=AUDIENCE, leeway=1.0, may_block=True)


@settings(max_examples=200, deadline=None)
@given(text=edited(GUARD_SET))
@example(text=GUARD_SET + "==")
def test_the_guard_takes_no_security_event_text_but_the_issued_one(text):
    if text == GUARD_SET:
        return
    with pytest.raises(InvalidSecurityEvent):
        sessions_ended(text, keys=GUARD_KEYS, issuer=ISSUER, client_id=CLIENT_ID, leeway=1.0)
