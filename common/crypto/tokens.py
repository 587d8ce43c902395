"""Opaque tokens and their digests, keyed MACs, recovery codes, and constant-time compares.

Pure: no Flask, no boto3, no environment reads; every value arrives as an argument."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_token(nbytes: int = 32) -> str:
    """Return ``nbytes`` of CSPRNG output as unpadded URL-safe base64."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str, *, purpose: str) -> str:
    """Lowercase hex SHA-256 of ``f"{purpose}:{token}"``; a distinct purpose per token kind."""
    # A ':' in the purpose would let ("a:b", "c") and ("a", "b:c") share a digest.
    if not purpose or ":" in purpose:
        raise ValueError("purpose must be non-empty and contain no ':'")
    return hashlib.sha256(f"{purpose}:{token}".encode()).hexdigest()


# Lowercase letters and digits without the look-alikes 0/o, 1/i/l: 31 symbols, so 12 of them
# carry 59 bits, read aloud in groups of four (SPEC §4: recovery codes of >= 50 bits).
RECOVERY_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_LENGTH = 12


def new_recovery_code() -> str:
    """A random recovery code such as ``k7qm-x2vd-9hfp``."""
    chars = "".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(chars[i:i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


def compact_recovery_code(text: str) -> str:
    """A typed recovery code without case, spaces or hyphens: the form that is digested."""
    return "".join(ch for ch in text.casefold() if ch not in " -\t")

def digests_equal(a: str, b: str) -> bool:
    """Constant-time equality of two digests (or any two strings)."""
    # Encoding first: compare_digest refuses non-ASCII str instead of returning False.
    return hmac.compare_digest(a.encode(), b.encode())


def keyed_token(secret: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``secret``, as unpadded URL-safe base64."""
    mac = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
