"""Guard.verify's local checks: a valid token passes with no call to citylogin; every kind of bad
token is refused with its code; the JWKS is read again on an unknown kid, at most once a second."""
from __future__ import annotations

import threading
import time
import uuid

import jwt
import pytest

from citylogin_guard import Code, Guard, Unauthorized, Unavailable
from citylogin_guard.jwks import KeySet
from citylogin_guard.transport import NetworkNeeded
from tests.guard.transmitter import Signer, Transmitter
from tests.support.waiting import wait_until


def refusal(guard: Guard, authorization: str | None) -> str:
    with pytest.raises(Unauthorized) as refused:
        guard.verify(authorization)
    return refused.value.code


def test_a_valid_token_passes_with_its_claims_and_no_call_to_citylogin(guard, transmitter):
    token = transmitter.access_token(session_id="s-1", sub="user-1", did="device-1")
    reads = transmitter.jwks_reads
    for _ in range(3):
        principal = guard.verify(f"Bearer {token}")
    assert (principal.user_uuid, principal.session_id, principal.device_id) == ("user-1", "s-1", "device-1")
    assert principal.claims["iss"] == transmitter.url and principal.claims["aud"] == "citylogin"
    assert transmitter.introspections == 0 and transmitter.jwks_reads == reads
    with pytest.raises(TypeError):
        principal.claims["sub"] = "someone else"  # type: ignore[index]


def _claims(transmitter: Transmitter, **changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": transmitter.url, "aud": "citylogin", "sub": "u", "sid": "s", "did": "d", "jti": "j",
            "iat": now, "nbf": now, "exp": now + 300, **changes}


@pytest.mark.parametrize("case, code", [
    ("signed by another key under our kid", "invalid_token"),
    ("alg none", "invalid_token"),
    ("HS256 keyed with the public key", "invalid_token"),
    ("another audience", "invalid_token"),
    ("another issuer", "invalid_token"),
    ("expired", "token_expired"),
    ("a kid citylogin does not publish", "invalid_token"),
    ("no kid", "invalid_token"),
    ("typ JWT", "invalid_token"),
    ("a SET as access token", "invalid_token"),
    ("no sid", "invalid_token"),
    ("not yet valid", "invalid_token"),
    ("iat a string", "invalid_token"),
    ("bound to a key (cnf), as Bearer", "invalid_dpop_proof"),
])
def test_a_bad_token_is_refused_with_its_code(guard, transmitter, case, code):
    signer = transmitter.signer
    token = {
        "signed by another key under our kid": lambda: Signer(kid=signer.kid).sign(_claims(transmitter), typ="at+jwt"),
        "alg none": lambda: jwt.encode(_claims(transmitter), None, algorithm="none",
                                       headers={"kid": signer.kid, "typ": "at+jwt"}),
        "HS256 keyed with the public key": lambda: jwt.encode(
            _claims(transmitter), signer.jwk()["x"].encode(), algorithm="HS256",
            headers={"kid": signer.kid, "typ": "at+jwt"}),
        "another audience": lambda: transmitter.access_token(aud="another-app"),
        "another issuer": lambda: transmitter.access_token(iss="https://evil.example"),
        "expired": lambda: transmitter.access_token(expires_in=-60),
        "a kid citylogin does not publish": lambda: transmitter.access_token(signer=Signer()),
        "no kid": lambda: jwt.encode(_claims(transmitter), signer.key, algorithm="EdDSA", headers={"typ": "at+jwt"}),
        "typ JWT": lambda: transmitter.access_token(typ="JWT"),
        "a SET as access token": lambda: transmitter.access_token(typ="secevent+jwt"),
        "no sid": lambda: signer.sign({k: v for k, v in _claims(transmitter).items() if k != "sid"}, typ="at+jwt"),
        "not yet valid": lambda: transmitter.access_token(nbf=int(time.time()) + 120),
        "iat a string": lambda: transmitter.access_token(iat=str(int(time.time()))),
        "bound to a key (cnf), as Bearer": lambda: transmitter.access_token(cnf={"jkt": "abc"}),
    }[case]()
    assert refusal(guard, f"Bearer {token}") == code


@pytest.mark.parametrize("authorization, code", [
    (None, "invalid_token"), ("", "invalid_token"), ("Bearer", "invalid_token"),
    ("Basic dXNlcjpwdw==", "invalid_token"),
    ("Bearer not-a-jwt", "invalid_token"), ("Bearer a.b.c", "invalid_token"),
    ("DPoP eyJ.x.y", "invalid_token"), ("DPoP", "invalid_token"),
])
def test_a_malformed_header_is_refused(guard, authorization, code):
    assert refusal(guard, authorization) == code


def test_a_refusal_renders_as_a_bearer_challenge_and_problem():
    refused = Unauthorized(Code.SESSION_REVOKED, "The session has ended.", reason="displaced")
    assert refused.www_authenticate() == 'Bearer error="invalid_token"'
    assert refused.problem() == {"type": "about:blank", "title": "Session revoked", "status": 401,
                                 "code": "session_revoked", "detail": "The session has ended.", "reason": "displaced"}
    challenge = Unauthorized(Code.INVALID_DPOP_PROOF, "x").www_authenticate()
    assert challenge == 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA ML-DSA-87"'


def test_a_new_signing_key_is_fetched_on_its_first_token_and_made_up_kids_at_most_once_a_second(guard, transmitter):
    rotated = Signer()
    transmitter.published.append(rotated)
    time.sleep(1.0)  # the JWKS read when the guard started is a second old
    assert guard.verify(f"Bearer {transmitter.access_token(signer=rotated)}").claims["iss"] == transmitter.url
    reads, started = transmitter.jwks_reads, time.monotonic()
    for _ in range(20):
        made_up = Signer(kid=uuid.uuid4().hex).sign(_claims(transmitter), typ="at+jwt")
        assert refusal(guard, f"Bearer {made_up}") == "invalid_token"
    # one read, and one more for each whole second a busy machine made the twenty last
    assert transmitter.jwks_reads - reads <= 1 + int(time.monotonic() - started)


def test_an_unknown_kid_while_the_jwks_cannot_be_read_is_503_not_401(guard, transmitter):
    """A token of a key the guard has not seen (citylogin rotated its keys) while citylogin's JWKS fails: no
    verdict on the token, so 503 with Retry-After (code session_unverifiable), never the 401 that signs a
    person out; also within the second after the failed read, when the guard does not read again. Once
    the JWKS answers, the new key's token passes and a made-up kid is 401 invalid_token again."""
    rotated = Signer()
    transmitter.published.append(rotated)
    token = f"Bearer {transmitter.access_token(signer=rotated)}"
    transmitter.jwks_status = 503
    failed_reads = transmitter.jwks_reads

    def answered() -> Unauthorized:
        with pytest.raises(Unauthorized) as refused:
            guard.verify(token)
        return refused.value
    # the JWKS read when the guard started worked: until the guard reads again, the kid is unknown to a working
    # JWKS (401, as a made-up one); from its first failed read on, every answer is a 503
    wait_until(lambda: answered() is not None and transmitter.jwks_reads > failed_reads, timeout=30,
               what="the guard reads the failing JWKS")
    for _ in range(5):
        refused = answered()
        assert (refused.status, refused.code) == (503, "session_unverifiable"), refused
        assert refused.headers()["Retry-After"] == str(guard.retry_after)
        assert "WWW-Authenticate" not in refused.headers()
    transmitter.jwks_status = 200
    wait_until(lambda: _passes(guard, token), timeout=30, what="the new key's token passes")
    made_up = Signer(kid=uuid.uuid4().hex).sign(_claims(transmitter), typ="at+jwt")
    assert refusal(guard, f"Bearer {made_up}") == "invalid_token"


def _passes(guard: Guard, authorization: str) -> bool:
    try:
        guard.verify(authorization)
    except Unavailable:
        return False
    return True


def test_a_kid_asked_for_during_a_jwks_read_gets_that_reads_answer():
    """A verify() while the feed's first JWKS read is under way (a guard asked at once after its start, a
    slow citylogin) waits for that read: not "signed by a key citylogin does not publish" meanwhile."""
    signer, asked, answer = Signer(), threading.Event(), threading.Event()

    def slow_jwks() -> dict:
        asked.set()
        assert answer.wait(timeout=60)
        return {"keys": [signer.jwk()]}
    keys, found = KeySet(slow_jwks), []
    reading = threading.Thread(target=keys.load)
    reading.start()
    asking = threading.Thread(target=lambda: found.append(keys.key(signer.kid)))
    try:
        assert asked.wait(timeout=60)
        asking.start()
        with pytest.raises(NetworkNeeded):  # an event loop is sent to a thread, which waits for the read
            keys.key(signer.kid, may_block=False)
    finally:
        answer.set()
        for thread in (reading, asking):
            if thread.ident is not None:
                thread.join(timeout=60)
    assert len(found) == 1 and found[0] is not None


def test_a_token_has_one_spelling_at_the_guard(guard, transmitter):
    """SPEC §14: padding or another base64 spelling of the same signature is another text, refused, even
    once the issued text was accepted (the guard's cache of accepted tokens is keyed by the text)."""
    from tests.common.keys.test_jwt_one_spelling import _same_bytes_other_spelling
    token = transmitter.access_token(session_id="s-1", sub="user-1", did="device-1")
    assert guard.verify(f"Bearer {token}").session_id == "s-1"
    for spelled in (token + "==", token + "=", _same_bytes_other_spelling(token, 2),
                    _same_bytes_other_spelling(token, 1)):
        assert refusal(guard, f"Bearer {spelled}") == "invalid_token", spelled[-6:]
