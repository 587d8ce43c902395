"""Apple's client secret (Sign in with Apple, "Creating a client secret"): not a shared secret but a JWT that
citylogin signs ES256 with the operator's Apple key, `iss` the team, `sub` the Services ID (client_id), `aud`
Apple's issuer, valid at most six months. Each process signs one per provider and keeps it until half its
life is gone, so that a clock a little off at Apple never meets one about to expire."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import jwt

from federation.models import ProviderRecord

LIFETIME = 30 * 24 * 3600          # seconds; Apple allows up to 15777000 (six months)
RENEW_AFTER = LIFETIME // 2        # a cached one is replaced once this old


@dataclass(frozen=True)
class _Signed:
    token: str
    issued_epoch: int


class AppleSecrets:
    """The JWT client secrets this process signed, per provider and version of its record (a change of the
    key, team or client id is a new version, so never meets an old secret)."""

    def __init__(self) -> None:
        self._lock, self._signed = threading.Lock(), dict[tuple[str, int], _Signed]()

    def secret(self, provider: ProviderRecord, *, private_key_pem: str, now: int) -> str:
        key = (provider.name, provider.version)
        with self._lock:
            held = self._signed.get(key)
            if held is None or not held.issued_epoch <= now < held.issued_epoch + RENEW_AFTER:
                held = _Signed(sign(provider, private_key_pem=private_key_pem, now=now), now)
                self._signed = {k: v for k, v in self._signed.items() if k[0] != provider.name} | {key: held}
            return held.token


def sign(provider: ProviderRecord, *, private_key_pem: str, now: int) -> str:
    """A fresh client secret for `provider`, valid LIFETIME from `now`."""
    claims = {"iss": provider.apple_team_id, "sub": provider.client_id, "aud": provider.issuer,
              "iat": now, "exp": now + LIFETIME}
    return jwt.encode(claims, private_key_pem, algorithm="ES256", headers={"kid": provider.apple_key_id})
