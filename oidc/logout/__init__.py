"""oidc.logout."""
