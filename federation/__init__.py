"""Accounts from elsewhere (SPEC §16): citylogin as a relying party of upstream OpenID Providers
(Google, Apple, Microsoft, a company's Keycloak, any issuer by discovery). The upstream account stands
in for the password only, as a passkey does: the device still proves its key and counts under the
limit. Identity is the pair (issuer, sub), never the e-mail. Beside oidc/ (citylogin as a provider),
not in it."""
