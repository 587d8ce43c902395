"""The cache of verified access-token signatures (common.keys.verified_tokens): a token verified once is known again
by its digest, but its claims and times are checked on every decode, nothing refused is kept, the cache is
bounded, and it never outlives the ring it was verified under (a retired key's tokens stop at the reload).
That every request still reads the session and grant behind a cached token:
tests/oidc/test_oidc_dynamodb_calls.py::test_a_token_asked_about_again_is_read_again_and_its_sessions_end_refuses_it."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.keys import jwt_keys
from common.keys.jwt_keys import JwtKeyRing, TokenError, new_signing_key
from common.keys.verified_tokens import VerifiedTokens, token_digest
from tests.common.keys.test_jwt_one_spelling import edited

ISSUER, AUDIENCE, PROVIDER = "https://citylogin.example", "citylogin", "https://citylogin.example/oidc"
NOW = datetime.now(timezone.utc)


def _key():
    return new_signing_key(NOW - timedelta(hours=1))


class Loader:
    """A ring's loader whose keys the test changes, as `citylogin keys retire` changes the stored ring."""

    def __init__(self, keys):
        self.keys = keys

    def __call__(self, _max_age: float):
        return list(self.keys)


def _counting(ring: JwtKeyRing, monkeypatch) -> list[str]:
    """Each signature check the ring makes, by token."""
    checked: list[str] = []
    verify = ring._verified_payload

    def counted(token: str) -> bytes:
        checked.append(token)
        return verify(token)
    monkeypatch.setattr(ring, "_verified_payload", counted)
    return checked


def test_a_token_is_verified_once_but_its_claims_and_times_are_checked_on_every_decode(monkeypatch):
    ring = JwtKeyRing([_key()], issuer=ISSUER, audience=AUDIENCE)
    checked = _counting(ring, monkeypatch)
    own = ring.sign({"sub": "u-1", "sid": "s-1", "did": "d-1"}, ttl_seconds=600, now=NOW)
    assert ring.decode(own, now=NOW)["sub"] == "u-1"
    claims = ring.decode(own, now=NOW)
    assert claims["sid"] == "s-1" and checked == [own]
    claims["sub"] = "someone else"  # a caller's copy: the next decode reads the token again
    assert ring.decode(own, now=NOW)["sub"] == "u-1"
    with pytest.raises(TokenError) as expired:
        ring.decode(own, now=NOW + timedelta(seconds=601))
    assert expired.value.code == "token_expired"
    with pytest.raises(TokenError, match="invalid_token"):
        ring.decode(own, now=NOW, issuer=PROVIDER)  # another issuer's token asked for
    # An app's token, verified for introspection (any audience), is still no token for citylogin's own audience.
    apps = ring.sign_jwt({"iss": ISSUER, "aud": "app-1", "sub": "u-1", "iat": int(NOW.timestamp()),
                          "exp": int(NOW.timestamp()) + 600}, algorithm=jwt_keys.ALGORITHM, typ=jwt_keys.TOKEN_TYPE)
    assert ring.decode(apps, now=NOW, verify_audience=False)["aud"] == "app-1"
    with pytest.raises(TokenError, match="invalid_token"):
        ring.decode(apps, now=NOW)
    assert checked == [own, apps]


def test_nothing_refused_is_kept():
    ring = JwtKeyRing([_key()], issuer=ISSUER, audience=AUDIENCE)
    other = JwtKeyRing([_key()], issuer=ISSUER, audience=AUDIENCE)
    token = ring.sign({"sub": "u-1"}, ttl_seconds=600, now=NOW)
    signed, _, signature = token.rpartition(".")
    forged = f"{signed}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"  # the signature's first 6 bits changed
    for refused in (other.sign({"sub": "u-1"}, ttl_seconds=600, now=NOW), forged, token + "=", "x.y.z",
                    ring.sign_event({"sub": "u-1"}, now=NOW), "A" * (jwt_keys.MAX_JWT_LENGTH + 1)):
        with pytest.raises(TokenError):
            ring.decode(refused, now=NOW)
    assert len(ring._verified) == 0
    ring.decode(token, now=NOW)
    assert len(ring._verified) == 1


def test_a_retired_keys_tokens_stop_verifying_at_the_reload_that_retires_it():
    old, new = _key(), _key()
    loader = Loader([old, new])
    ring = JwtKeyRing([old, new], issuer=ISSUER, audience=AUDIENCE, loader=loader, reload_seconds=3600)
    by_old = jwt_keys.jwt.encode({"sub": "u-1", "iss": ISSUER, "aud": AUDIENCE, "iat": int(NOW.timestamp()),
                                  "exp": int(NOW.timestamp()) + 600}, old.private_key, algorithm=jwt_keys.ALGORITHM,
                                 headers={"kid": old.kid, "typ": jwt_keys.TOKEN_TYPE})
    assert ring.decode(by_old, now=NOW)["sub"] == "u-1"  # verified, and kept
    loader.keys = [new]
    ring.refresh(max_age=0)
    with pytest.raises(TokenError, match="invalid_token"):
        ring.decode(by_old, now=NOW)
    # A reload that keeps the key keeps its tokens valid (verified again under the new ring).
    loader.keys = [old, new]
    ring.refresh(max_age=0)
    assert ring.decode(by_old, now=NOW)["sub"] == "u-1"


def test_threads_decoding_while_the_ring_retires_a_key_never_accept_it_after_the_reload():
    """Eight threads decode tokens of a key that stays and of one retired meanwhile: every decode that
    starts after the reload returned refuses the retired key's tokens; the others' claims are their own."""
    kept, retired = _key(), _key()
    loader = Loader([kept, retired])
    ring = JwtKeyRing([kept, retired], issuer=ISSUER, audience=AUDIENCE, loader=loader, reload_seconds=3600)

    def signed(key, sub: str) -> str:
        return jwt_keys.jwt.encode({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": int(NOW.timestamp()),
                                    "exp": int(NOW.timestamp()) + 600}, key.private_key,
                                   algorithm=jwt_keys.ALGORITHM, headers={"kid": key.kid, "typ": jwt_keys.TOKEN_TYPE})
    stays = {f"k{n}": signed(kept, f"k{n}") for n in range(20)}
    goes = {f"r{n}": signed(retired, f"r{n}") for n in range(20)}
    reloaded, stop = threading.Event(), threading.Event()
    wrong: list[str] = []

    def decode_on() -> None:
        while not stop.is_set():
            for sub, token in [*stays.items(), *goes.items()]:
                after_reload = reloaded.is_set()
                try:
                    claims = ring.decode(token, now=NOW)
                except TokenError:
                    if sub in stays:
                        wrong.append(f"{sub} refused")
                    continue
                if claims["sub"] != sub or (sub in goes and after_reload):
                    wrong.append(f"{sub} accepted as {claims['sub']}, after the reload: {after_reload}")
    threads = [threading.Thread(target=decode_on) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(5):  # reloads that keep both keys, while the threads fill the cache
            ring.refresh(max_age=0)
        loader.keys = [kept]
        ring.refresh(max_age=0)
        reloaded.set()
        for sub, token in goes.items():  # from this thread too, after the reload returned
            try:
                ring.decode(token, now=NOW)
                wrong.append(f"{sub} accepted here after the reload")
            except TokenError:
                pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []


def test_the_cache_is_bounded_under_threads_the_oldest_out_first():
    cache = VerifiedTokens(limit=8)
    failures: list[BaseException] = []

    def fill(n: int) -> None:
        try:
            for k in range(2000):
                digest = token_digest(f"{n}-{k}")
                cache.keep(digest, b"{}")
                cache.payload(digest)
        except BaseException as exc:  # noqa: BLE001 - the test reports any failure of a thread
            failures.append(exc)
    threads = [threading.Thread(target=fill, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == [] and len(cache) == 8
    for k in range(10):
        cache.keep(token_digest(f"last-{k}"), str(k).encode())
    assert [cache.payload(token_digest(f"last-{k}")) for k in range(10)] == [None, None, *(str(k).encode()
                                                                                         for k in range(2, 10))]
    with pytest.raises(ValueError):
        VerifiedTokens(limit=0)


RING = JwtKeyRing([_key()], issuer=ISSUER, audience=AUDIENCE)
ISSUED = RING.sign({"sub": "u-1", "sid": "s-1", "did": "d-1"}, ttl_seconds=3600)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(edited(ISSUED), st.text(max_size=200)))
@example(text=ISSUED + "=")
@example(text=" " + ISSUED)
def test_with_the_token_kept_no_other_text_is_accepted(text):
    """Whatever an attacker derives from a token whose signature is kept, only the issued text is accepted,
    as without the cache."""
    assert RING.decode(ISSUED)["sub"] == "u-1"  # kept from the first example on
    if text == ISSUED:
        return
    with pytest.raises(TokenError):
        RING.decode(text)
