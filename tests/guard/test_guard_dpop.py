"""Tokens bound to a device key (DPoP, SPEC §12, RFC 9449) at the guard: a proof made the way
citylogin's clients make it passes for each algorithm; every kind of bad or missing proof is
refused with invalid_dpop_proof; a proof is spent once, last, in this process or in a store the
app's processes share; the public URL behind a proxy; the introspection fallback's `cnf`."""
from __future__ import annotations

import base64
import json
from typing import Any, Callable

import pytest

from citylogin.client.keys import dpop_proof, generate_key
from citylogin_guard import Guard, MemoryReplayStore, ReplayStore, Unauthorized
from common.crypto.dpop import key_thumbprint
from tests.guard.checks import DPOP_CHALLENGE, SharedStore
from tests.guard.transmitter import Transmitter
from tests.support.waiting import wait_until

URL = "https://api.example.com/orders"


def bound_token(transmitter: Transmitter, key: Any, **claims: Any) -> str:
    """An access token bound to `key`, its cnf.jkt computed the server's way."""
    return transmitter.access_token(cnf={"jkt": key_thumbprint(key.public_key())}, **claims)


def verify(guard: Guard, token: str, proof: str | None, *, scheme: str = "DPoP", method: str = "GET",
           url: str | None = URL) -> Any:
    return guard.verify(f"{scheme} {token}", dpop=proof, method=method, url=url)


def refused(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Unauthorized:
    with pytest.raises(Unauthorized) as refusal:
        call(*args, **kwargs)
    return refusal.value


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _parts(proof: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, claims, signature = proof.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(claims), signature


def with_header(proof: str, **changes: Any) -> str:
    """The proof with its header changed (the signature left as it was)."""
    header, _, _ = _parts(proof)
    _, claims_part, signature = proof.split(".")
    return f"{_b64({**header, **changes})}.{claims_part}.{signature}"


def with_jwk(proof: str, **changes: Any) -> str:
    header, _, _ = _parts(proof)
    return with_header(proof, jwk={**header["jwk"], **changes})


def flipped(text: str) -> str:
    return text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1]


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "ml-dsa-87"])
def test_a_bound_token_passes_with_a_proof_by_its_key_for_this_request(guard, transmitter, kind):
    key = generate_key(kind)
    token = bound_token(transmitter, key, sub="user-1")
    proof = dpop_proof(key, method="POST", url=URL, access_token=token)
    # the app passes the URL as it sees it: its query does not count
    principal = verify(guard, token, proof, method="POST", url=URL + "?page=2")
    assert principal.user_uuid == "user-1"
    assert principal.claims["cnf"] == {"jkt": key_thumbprint(key.public_key())}
    assert transmitter.introspections == 0


def _refusal_cases(key: Any, token: str) -> dict[str, dict[str, Any]]:
    """name -> the verify() arguments of a request that must be refused with invalid_dpop_proof."""
    good = dpop_proof(key, method="GET", url=URL, access_token=token)
    header, claims, signature = _parts(good)
    return {
        "no DPoP header": {"proof": None},
        "the bound token as Bearer": {"proof": good, "scheme": "Bearer"},
        "a proof for another URL": {"proof": dpop_proof(key, method="GET", url=URL + "/7", access_token=token)},
        "a proof for another host": {"proof": dpop_proof(key, method="GET", url="https://evil.example/orders",
                                                         access_token=token)},
        "a proof for another method": {"proof": dpop_proof(key, method="DELETE", url=URL, access_token=token)},
        # a proof whose iat is off by more than 60 s: use_dpop_nonce (test_guard_nonce.py)
        "the ath of another token": {"proof": dpop_proof(key, method="GET", url=URL, access_token=token + "x")},
        "no ath": {"proof": dpop_proof(key, method="GET", url=URL)},
        "a proof by another key": {"proof": dpop_proof(generate_key("ecdsa-p256"), method="GET", url=URL,
                                                       access_token=token)},
        "a tampered signature": {"proof": flipped(good)},
        "tampered claims": {"proof": f"{good.split('.')[0]}.{_b64({**claims, 'htu': URL + '/7'})}.{signature}"},
        "alg none": {"proof": with_header(good, alg="none").rsplit(".", 1)[0] + "."},
        "alg HS256": {"proof": with_header(good, alg="HS256")},
        "typ JWT": {"proof": with_header(good, typ="JWT")},
        "a crit header": {"proof": with_header(good, crit=["exp"])},
        "no jwk": {"proof": with_header(good, jwk=None)},
        "a jwk holding a private key": {"proof": with_jwk(good, d=header["jwk"]["x"])},
        "a jwk off the curve": {"proof": with_jwk(good, y=header["jwk"]["x"])},
        "a jwk too short": {"proof": with_jwk(good, x="AAAA")},
        "an Ed25519 jwk under ES256": {"proof": with_header(good, jwk={"kty": "OKP", "crv": "Ed25519",
                                                                       "x": header["jwk"]["x"]})},
        "not a JWS": {"proof": "not-a-proof"},
        "three parts of nothing": {"proof": "a.b.c"},
        "a header that is no JSON object": {"proof": f"{_b64([1])}.{good.split('.', 1)[1]}"},
        "a proof too long": {"proof": good + "A" * 20000},
        "the app passes no URL": {"proof": good, "url": None},
    }


CASES = list(_refusal_cases(generate_key("ecdsa-p256"), "t.o.k"))


@pytest.mark.parametrize("case", CASES)
def test_a_bad_or_missing_proof_is_refused_as_invalid_dpop_proof(guard, transmitter, case):
    key = generate_key("ecdsa-p256")
    token = bound_token(transmitter, key)
    arguments = _refusal_cases(key, token)[case]
    refusal = refused(lambda: verify(guard, token, **arguments))
    assert refusal.code == "invalid_dpop_proof", refusal.detail
    assert refusal.www_authenticate() == DPOP_CHALLENGE
    assert refusal.problem()["code"] == "invalid_dpop_proof" and refusal.problem()["status"] == 401


def signed_proof(key: Any, claims: dict[str, Any]) -> str:
    """A well-signed Ed25519 proof with any claims at all (json.dumps writes Infinity and NaN)."""
    header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": _parts(dpop_proof(key, method="GET", url=URL))[0]["jwk"]}
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    return f"{signing_input}.{base64.urlsafe_b64encode(key.sign(signing_input.encode())).rstrip(b'=').decode()}"


@pytest.mark.parametrize("change", [
    {"iat": float("inf")}, {"iat": float("nan")}, {"iat": "1"}, {"iat": True}, {"iat": None}, {"jti": ""},
    {"jti": "j" * 257}, {"jti": 7}, {"htm": None}, {"htu": ""}, {"ath": 7}, {"ath": "é"},
])
def test_well_signed_claims_of_the_wrong_shape_are_refused(guard, transmitter, change):
    key = generate_key("ed25519")
    token = bound_token(transmitter, key)
    _, claims, _ = _parts(dpop_proof(key, method="GET", url=URL, access_token=token))
    proof = signed_proof(key, {**claims, **change})
    assert refused(verify, guard, token, proof).code == "invalid_dpop_proof"
    assert verify(guard, token, signed_proof(key, claims)), "the same proof, its claims untouched, passes"


def test_a_proof_replayed_to_the_same_guard_is_refused(guard, transmitter):
    key = generate_key("ed25519")
    token = bound_token(transmitter, key)
    proof = dpop_proof(key, method="GET", url=URL, access_token=token)
    verify(guard, token, proof)
    assert refused(lambda: verify(guard, token, proof)).code == "invalid_dpop_proof"
    assert verify(guard, token, dpop_proof(key, method="GET", url=URL, access_token=token))  # a fresh one passes


def test_an_unbound_token_under_dpop_and_an_unreadable_binding_are_invalid_tokens(guard, transmitter):
    key = generate_key("ecdsa-p256")
    unbound = transmitter.access_token()
    assert refused(lambda: verify(guard, unbound, dpop_proof(key, method="GET", url=URL,
                                                             access_token=unbound))).code == "invalid_token"
    assert guard.verify(f"Bearer {unbound}")
    for cnf in ({"x5t#S256": "abc"}, "abc", {"jkt": 7}):
        odd = transmitter.access_token(cnf=cnf)
        proof = dpop_proof(key, method="GET", url=URL, access_token=odd)
        assert refused(verify, guard, odd, proof).code == "invalid_token"
        assert refused(guard.verify, f"Bearer {odd}").code == "invalid_token"


def test_a_proof_is_spent_last_only_once_everything_else_passed(make_guard, transmitter):
    store = SharedStore()
    guard = make_guard(replay_store=store)
    key = generate_key("ecdsa-p256")
    token = bound_token(transmitter, key, session_id="s-spent")
    refused(lambda: verify(guard, token, dpop_proof(key, method="GET", url=URL + "/7", access_token=token)))
    assert store.spent == {}
    verify(guard, token, dpop_proof(key, method="GET", url=URL, access_token=token))
    assert len(store.spent) == 1 and 55 <= next(iter(store.spent.values())) <= 61
    transmitter.revoke("s-spent")
    wait_until(lambda: "s-spent" in guard.ended_sessions, timeout=30, what="the ended session heard")
    proof = dpop_proof(key, method="GET", url=URL, access_token=token)
    assert refused(lambda: verify(guard, token, proof)).code == "session_revoked"
    assert len(store.spent) == 1, "a request refused for its session spends no proof"


def test_a_store_shared_by_two_guards_refuses_a_proof_replayed_to_the_other(make_guard, transmitter):
    key = generate_key("ecdsa-p256")
    shared = SharedStore()
    first, second = make_guard(replay_store=shared), make_guard(replay_store=shared)
    token = bound_token(transmitter, key)
    proof = dpop_proof(key, method="GET", url=URL, access_token=token)
    verify(first, token, proof)
    assert refused(lambda: verify(second, token, proof)).code == "invalid_dpop_proof"
    # What the default leaves open: each process remembers only the proofs it took itself.
    alone, other = make_guard(), make_guard()
    proof = dpop_proof(key, method="GET", url=URL, access_token=token)
    assert verify(alone, token, proof) and verify(other, token, proof)


def test_behind_a_proxy_the_proof_names_the_public_url(make_guard, transmitter):
    guard = make_guard(public_urls=["https://API.example.com:443", "https://example.com/api/"])
    key = generate_key("ed25519")
    token = bound_token(transmitter, key)

    def request(htu: str) -> Any:
        # what the app behind TLS termination sees: http, an inner address, the prefix stripped
        return verify(guard, token, dpop_proof(key, method="GET", url=htu, access_token=token),
                      url="http://10.0.0.5:8000/orders?x=1")

    assert request("https://api.example.com/orders")
    assert request("HTTPS://Api.Example.COM/orders#top")
    assert request("https://example.com/api/orders")
    for other in ("http://10.0.0.5:8000/orders", "http://api.example.com/orders", "https://example.com/orders",
                  "https://api.example.com:8443/orders"):
        assert refused(request, other).code == "invalid_dpop_proof", other
    with pytest.raises(ValueError):
        make_guard(heard=False, public_urls="api.example.com")


def test_without_public_urls_the_url_the_app_sees_counts_normalized(guard, transmitter):
    key = generate_key("ecdsa-p256")
    token = bound_token(transmitter, key)
    for htu, seen in [("http://localhost/a%20b", "HTTP://LOCALHOST:80/a b"),
                      ("https://app.test/x/%7Euser", "https://app.test:443/x/~user")]:
        assert verify(guard, token, dpop_proof(key, method="GET", url=htu, access_token=token), url=seen)


def test_with_the_feed_stale_introspection_names_the_key_and_the_proof_is_still_checked(make_guard, transmitter):
    guard = make_guard(stale_after=0.5)
    transmitter.poll_status = 503
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")
    key, other = generate_key("ml-dsa-87"), generate_key("ml-dsa-87")
    token = bound_token(transmitter, key)
    assert verify(guard, token, dpop_proof(key, method="GET", url=URL, access_token=token))
    assert transmitter.introspections == 1
    assert refused(lambda: verify(guard, token, dpop_proof(other, method="GET", url=URL,
                                                           access_token=token))).code == "invalid_dpop_proof"
    # citylogin's answer binds the token to another key than its claims say: refused
    transmitter.introspection_extra = {"cnf": {"jkt": key_thumbprint(other.public_key())}}
    fresh = bound_token(transmitter, key)
    assert refused(lambda: verify(guard, fresh, dpop_proof(key, method="GET", url=URL,
                                                           access_token=fresh))).code == "invalid_dpop_proof"
    # ... or says a token without cnf is bound: never taken as Bearer
    unbound = transmitter.access_token()
    assert refused(lambda: guard.verify(f"Bearer {unbound}")).code == "invalid_dpop_proof"


def test_the_memory_store_forgets_a_key_after_its_ttl_and_refuses_when_full():
    now = [1000.0]
    store = MemoryReplayStore(max_entries=3, clock=lambda: now[0])
    assert isinstance(store, ReplayStore)
    assert store.spend("a", 60) and not store.spend("a", 60)
    assert store.spend("b", 10) and store.spend("c", 61)
    assert not store.spend("d", 60), "full: it cannot promise d is new"
    now[0] += 10
    assert store.spend("d", 60) and len(store) == 3, "b expired and was forgotten"
    assert not store.spend("a", 60)
    now[0] += 51
    assert store.spend("a", 60) and len(store) == 2  # a's first 60 s and c's 61 are over
