"""The token and revocation endpoints' answers as the OpenAPI description shows them (RFC 6749 §5.1, RFC 7009)."""
from __future__ import annotations

from pydantic import BaseModel



class ProviderTokenResponse(BaseModel):
    """RFC 6749 §5.1 with OpenID Connect's id_token."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str
    id_token: str | None = None
    refresh_token: str | None = None


class Revoked(BaseModel):
    """RFC 7009 §2.2: an empty JSON object, whether or not there was anything to revoke."""
