"""The records of upstream identity providers and of the identities linked to accounts (SPEC §16)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Preset = Literal["google", "apple", "microsoft", "generic"]
Signup = Literal["allow", "deny"]
# What a browser was doing when it went to the provider: signing in (or up), linking another identity to
# the account it is signed in to, or confirming it is that account's owner again (a fresh sign-in with one of
# its linked identities, in the password's place).
Purpose = Literal["sign_in", "link", "reauth"]


@dataclass(frozen=True)
class ProviderRecord:
    """An operator's upstream provider. `name` is its key and the last segment of its redirect URI
    (`<public_url>/federation/<name>/callback`). The client secret (or, for Apple, the private key
    citylogin signs its JWT client secret with) is kept only sealed under the key-encryption key: its
    plaintext is opened when the token endpoint is called and never printed or answered."""

    name: str                      # [a-z0-9][a-z0-9-]{0,31}
    display_name: str              # "Google", "Acme staff": shown on "Continue with <display_name>"
    preset: Preset
    issuer: str                    # as configured; Microsoft's multi-tenant one holds "{tenantid}"
    client_id: str
    scope: str = "openid email profile"
    signup: Signup = "allow"
    enabled: bool = True
    # Apple: the key citylogin signs its client secret with (ES256), and the team it belongs to
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    created_at: str = ""
    updated_at: str = ""
    version: int = 1
    # sealed client secret or Apple key (parts of KeyEncryptor.seal), never in a view
    sealed_secret: dict[str, bytes] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class UpstreamIdentity:
    """Who the provider says the person is, from an ID token that passed every check of OIDC Core
    §3.1.3.7. (issuer, sub) is the identity; the rest only fills a new account's fields."""

    provider: str                  # ProviderRecord.name
    issuer: str                    # the ID token's `iss` (for Microsoft, the tenant's own)
    sub: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None


@dataclass(frozen=True)
class LinkedIdentity:
    """One identity linked to an account, as the account page and the data export show it."""

    link_id: str                   # digest of (issuer, sub): the claim's key and the URL's id
    provider: str
    issuer: str
    sub: str
    email: str | None
    linked_at: str
