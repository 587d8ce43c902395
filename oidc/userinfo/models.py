"""The userinfo endpoint's answer as the OpenAPI description shows it (OpenID Connect Core §5.3)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict



class UserInfo(BaseModel):
    """OpenID Connect Core §5.3.2: `sub`, and the claims the token's scope allows."""

    model_config = ConfigDict(extra="allow")
    sub: str
