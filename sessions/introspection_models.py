"""The bodies of RFC 7662 token introspection (SPEC §11): what an app asks, and what it is told."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class IntrospectionRequest(BaseModel):
    """RFC 7662 §2.1, form-encoded."""

    model_config = ConfigDict(extra="ignore")
    token: str = Field(min_length=1, max_length=8192)
    token_type_hint: str | None = Field(default=None, max_length=64)


class Introspection(BaseModel):
    """RFC 7662 §2.2: only `active` when the token is not active."""

    active: bool
    iss: str | None = None
    aud: str | None = None
    sub: str | None = None
    sid: str | None = None
    did: str | None = None
    jti: str | None = None
    iat: int | None = None
    exp: int | None = None
    scope: str | None = None
    token_type: str | None = None
    client_id: str | None = None
    cnf: dict[str, Any] | None = None
