"""The refusals the guard raises, and how they render: a token refused as HTTP 401 (RFC 6750 §3,
RFC 9449 §7.1 and §9, RFC 9457); a token it cannot judge while citylogin is unreachable as HTTP 503
with Retry-After (RFC 9110 §15.6.4, §10.2.3)."""
from __future__ import annotations

from enum import Enum
from typing import Any

from citylogin_guard.dpop import ALGORITHMS


class Code(str, Enum):
    """The codes an app branches on; `Unauthorized.code` is one of them."""

    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    SESSION_REVOKED = "session_revoked"
    SESSION_UNVERIFIABLE = "session_unverifiable"
    INVALID_DPOP_PROOF = "invalid_dpop_proof"
    USE_DPOP_NONCE = "use_dpop_nonce"


TITLES = {
    Code.INVALID_TOKEN: "Invalid access token",
    Code.TOKEN_EXPIRED: "Access token expired",
    Code.SESSION_REVOKED: "Session revoked",
    Code.SESSION_UNVERIFIABLE: "Session cannot be verified",
    Code.INVALID_DPOP_PROOF: "Invalid DPoP proof",
    Code.USE_DPOP_NONCE: "Use the DPoP nonce",
}
DPOP_CHALLENGES = {Code.INVALID_DPOP_PROOF, Code.USE_DPOP_NONCE}  # RFC 9449 §7.1 error codes


class Unauthorized(Exception):
    """A request the guard refuses: `.code` (a `Code` value, compares equal to its string),
    `.detail` (English, for people), `.reason` (why a session ended, when the feed said),
    `.dpop_nonce` (for use_dpop_nonce: the nonce to make the proof over again), `.status` (the
    HTTP status to answer: 401, or 503 for `Unavailable`) and `.retry_after` (seconds, for a 503;
    None otherwise)."""

    status = 401
    retry_after: int | None = None

    def __init__(self, code: Code, detail: str, *, reason: str | None = None, dpop_nonce: str | None = None) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.reason = reason
        self.dpop_nonce = dpop_nonce

    def problem(self) -> dict[str, Any]:
        """The problem+json body (RFC 9457) with the citylogin `code`."""
        body: dict[str, Any] = {"type": "about:blank", "title": TITLES[self.code], "status": self.status,
                                "code": self.code.value, "detail": self.detail}
        if self.reason:
            body["reason"] = self.reason
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

    def www_authenticate(self) -> str:
        """The challenge: DPoP's for a proof error (RFC 9449 §7.1), else Bearer's, whose only
        error for a token refused is invalid_token (RFC 6750 §3.1): the `code` says which."""
        if self.code in DPOP_CHALLENGES:
            return f'DPoP error="{self.code.value}", algs="{" ".join(ALGORITHMS)}"'
        return 'Bearer error="invalid_token"'

    def headers(self) -> dict[str, str]:
        """The answer's headers besides its Content-Type: the challenge, no-store and, for
        use_dpop_nonce, the `DPoP-Nonce` to use (RFC 9449 §8, §9)."""
        headers = {"WWW-Authenticate": self.www_authenticate(), "Cache-Control": "no-store"}
        if self.dpop_nonce:
            headers["DPoP-Nonce"] = self.dpop_nonce
        return headers


class Unavailable(Unauthorized):
    """A token the guard cannot judge: citylogin cannot be reached (nor its feed heard) and nothing the
    guard knows refuses it. Not the person's fault, and no reason to sign them out: answered 503 with
    `Retry-After` (code `session_unverifiable`); a client tries again later. A subclass of
    Unauthorized, so `except Unauthorized` still catches it: branch on `.status` or this class."""

    status = 503

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(Code.SESSION_UNVERIFIABLE, detail)
        self.retry_after = retry_after

    def www_authenticate(self) -> str:
        """No challenge: the credentials are not at fault (the header stays on 401s only)."""
        return ""

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after), "Cache-Control": "no-store"}
