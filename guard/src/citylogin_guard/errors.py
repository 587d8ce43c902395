"""The one refusal the guard raises, and how it renders as an HTTP 401 (RFC 6750 §3, RFC 9449 §7.1
and §9, RFC 9457)."""
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
    `.dpop_nonce` (for use_dpop_nonce: the nonce to make the proof over again)."""

    status = 401

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
