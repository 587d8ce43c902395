"""What the guard's tests ask of a guard."""
from __future__ import annotations

import threading
from typing import Any

from citylogin.client.keys import dpop_proof
from citylogin_guard import Guard, Unauthorized
from common.crypto.dpop import key_thumbprint

DPOP_CHALLENGE = 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA ML-DSA-87"'


def refused_code(guard: Guard, token: str) -> str | None:
    """The code `guard` refuses `token` with, or None if it lets it through."""
    try:
        guard.verify(f"Bearer {token}")
    except Unauthorized as refusal:
        return refusal.code
    return None


def refused_request(guard: Guard, key: Any, token: str, url: str) -> str | None:
    """The code `guard` refuses a GET of `url` with, made with `token` and a fresh proof by `key`."""
    headers = dpop_headers(key, token, "GET", url)
    try:
        guard.verify(headers["Authorization"], dpop=headers["DPoP"], method="GET", url=url)
    except Unauthorized as refusal:
        return refusal.code
    return None


def bound_claims(key: Any) -> dict[str, Any]:
    """The cnf claim of a token bound to `key`, its jkt computed the server's way."""
    return {"cnf": {"jkt": key_thumbprint(key.public_key())}}


def dpop_headers(key: Any, token: str, method: str, url: str) -> dict[str, str]:
    """What a client sends with a bound token: the DPoP scheme and a fresh proof for this request."""
    return {"Authorization": f"DPoP {token}", "DPoP": dpop_proof(key, method=method, url=url, access_token=token)}


class SharedStore:
    """A ReplayStore as one shared by an app's processes would be (Redis SET NX EX): a dict and a
    lock; notes the thread of each spend."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def spend(self, key: str, ttl: int) -> bool:
        self.threads.append(threading.current_thread())
        with self._lock:
            if key in self.spent:
                return False
            self.spent[key] = ttl
            return True
