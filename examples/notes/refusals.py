"""The 401 of a refused API request, as citylogin and its guard send it: problem+json (RFC 9457)
with a stable `code`, and a Bearer challenge (RFC 6750 §3). The page's SDK ends its session when
the `code` is session_revoked. A token that cannot be judged because citylogin cannot be reached is
not refused: 503 with Retry-After, code session_unverifiable, and the page keeps its sign-in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, json

TITLES = {"invalid_token": "Invalid access token", "token_expired": "Access token expired",
          "session_revoked": "Session revoked", "session_unverifiable": "Session cannot be verified",
          "invalid_dpop_proof": "Invalid DPoP proof", "use_dpop_nonce": "DPoP nonce required"}


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for, with the fields of citylogin_guard.Principal the notes views read."""

    user_uuid: str
    session_id: str
    device_id: str


class Unauthorized(Exception):
    """A request refused: `code` is one of TITLES, `reason` why its session ended (when known)."""

    status = 401
    retry_after: int | None = None

    def __init__(self, code: str, detail: str, *, reason: str | None = None, dpop_nonce: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.reason, self.dpop_nonce = code, detail, reason, dpop_nonce

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "about:blank", "title": TITLES[self.code], "status": self.status,
                                "code": self.code, "detail": self.detail}
        if self.reason:
            body["reason"] = self.reason
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body


class Unavailable(Unauthorized):
    """citylogin cannot be reached to judge the token: 503 with Retry-After, as citylogin_guard.Unavailable."""

    status = 503

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__("session_unverifiable", detail)
        self.retry_after = retry_after


def refusal_response(refusal: Unauthorized) -> Response:
    response = Response(json.dumps(refusal.problem()), status=refusal.status, mimetype="application/problem+json")
    if refusal.retry_after is not None:
        response.headers["Retry-After"] = str(refusal.retry_after)
    else:
        response.headers["WWW-Authenticate"] = (
            f'DPoP error="{refusal.code}", algs="ES256 EdDSA ML-DSA-87"'
            if refusal.code in ("invalid_dpop_proof", "use_dpop_nonce") else 'Bearer error="invalid_token"')
    if refusal.dpop_nonce:
        response.headers["DPoP-Nonce"] = refusal.dpop_nonce  # RFC 9449 §8: make the proof again over it
    response.headers["Cache-Control"] = "no-store"
    return response
