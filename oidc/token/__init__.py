"""oidc.token."""
