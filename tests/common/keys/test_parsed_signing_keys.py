"""common.keys.jwt_keys.ParsedSigningKeys: a process reloads its key ring a few times a minute, and an
RSA key's load costs tens of milliseconds of CPU, so each key is parsed once, until its PEM, kid or
creation time changes or the ring no longer holds it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from common.keys import jwt_keys
from common.keys.jwt_keys import ES256, RS256, ParsedSigningKeys, new_signing_key, private_key_pem

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The kids parsed, in order."""
    parsed: list[str] = []
    real = jwt_keys.signing_key_from_pem

    def counted(pem: bytes, *, kid: str, created_at: datetime, from_ring: bool = False):
        parsed.append(kid)
        return real(pem, kid=kid, created_at=created_at, from_ring=from_ring)
    monkeypatch.setattr(jwt_keys, "signing_key_from_pem", counted)
    return parsed


def entry(algorithm: str, kid: str, at: datetime = NOW) -> tuple[bytes, str, datetime]:
    return private_key_pem(new_signing_key(at, algorithm)), kid, at


def test_an_unchanged_ring_is_parsed_once_and_a_changed_or_new_key_again(loads):
    cache = ParsedSigningKeys()
    rsa, ec = entry(RS256, "rsa"), entry(ES256, "ec")
    first = cache.keys([rsa, ec])
    assert [key.kid for key in first] == ["rsa", "ec"] and loads == ["rsa", "ec"]
    again = cache.keys([rsa, ec])
    assert loads == ["rsa", "ec"] and all(a is b for a, b in zip(first, again, strict=True))
    replaced = (entry(ES256, "ec")[0], "ec", NOW)  # same kid, another key: parsed, never the old one
    assert cache.keys([rsa, replaced])[1].private_key is not first[1].private_key
    moved = (ec[0], "ec", NOW + timedelta(seconds=1))  # same key, another creation time
    assert cache.keys([rsa, moved])[1].created_at == moved[2]
    assert loads == ["rsa", "ec", "ec", "ec"]


def test_a_key_the_ring_drops_leaves_the_cache_and_duplicates_stay_for_the_ring_to_refuse(loads):
    cache = ParsedSigningKeys()
    rsa, ec = entry(RS256, "rsa"), entry(ES256, "ec")
    cache.keys([rsa, ec])
    cache.keys([ec])
    cache.keys([rsa, ec])
    assert loads == ["rsa", "ec", "rsa"]  # the dropped RSA key was parsed anew
    assert [key.kid for key in cache.keys([ec, ec])] == ["ec", "ec"]  # JwtKeyRing refuses two of one kid
