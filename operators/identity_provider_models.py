"""Request and answer models of /admin/identity-providers (SPEC §16): what an operator sends to add or change an
upstream provider, and the provider as they see it (whether a secret is set, never the secret)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool

from federation.provider_checks import LONGEST_DISPLAY_NAME, LONGEST_ISSUER, LONGEST_SECRET
from operators.models import REASON_MAX


class ProviderChange(BaseModel):
    """PATCH /admin/identity-providers/<name>: the fields given change, the rest stay (a null is not given).
    A member it does not know is refused (a misspelt one would otherwise change nothing)."""

    model_config = ConfigDict(extra="forbid")
    issuer: str | None = Field(default=None, max_length=LONGEST_ISSUER,
                               description="the provider's issuer (https); its discovery document is read from it")
    client_id: str | None = Field(default=None, max_length=255, description="citylogin's client id at the provider")
    client_secret: SecretStr | None = Field(default=None, max_length=LONGEST_SECRET,
                                            description="sealed when stored, never answered")
    apple_private_key: SecretStr | None = Field(
        default=None, max_length=LONGEST_SECRET,
        description="preset apple: the AuthKey_<key id>.p8 file's text, from which the client secret is signed")
    apple_team_id: str | None = Field(default=None, max_length=32)
    apple_key_id: str | None = Field(default=None, max_length=32)
    scope: str | None = Field(default=None, max_length=500, description="openid among them")
    signup: Literal["allow", "deny"] | None = Field(
        default=None, description="allow: an identity linked to no account may make one")
    display_name: str | None = Field(default=None, max_length=LONGEST_DISPLAY_NAME * 4,
                                     description='shown as "Continue with <display_name>"')
    enabled: StrictBool | None = Field(default=None, description="false: not offered to people, kept")
    reason: str | None = Field(default=None, max_length=REASON_MAX, description="said in the audit stream")

    def given(self) -> dict[str, Any]:
        """The fields given, secrets revealed, for the service."""
        values = {name: getattr(self, name) for name in self.model_fields_set - {"reason", "name", "preset"}}
        return {name: value.get_secret_value() if isinstance(value, SecretStr) else value
                for name, value in values.items() if value is not None}


class NewProvider(ProviderChange):
    """POST /admin/identity-providers: as `citylogin idp add`. The preset fills what is left out."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=32, description="[a-z0-9][a-z0-9-]{0,31}: the last part of its redirect URI")
    preset: Literal["google", "apple", "microsoft", "generic"] = "generic"
    client_id: str = Field(max_length=255, description="citylogin's client id at the provider")


class ProviderView(BaseModel):
    """A provider as an operator sees it: `client_secret` (or `apple_private_key`) says "set", never the value."""

    model_config = ConfigDict(extra="allow")
    name: str
    display_name: str
    preset: str
    issuer: str
    client_id: str
    scope: str
    signup: str
    enabled: bool
    redirect_uri: str | None = Field(default=None, description="to register at the provider")


class ProviderList(BaseModel):
    providers: list[ProviderView]
