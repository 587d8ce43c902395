"""oidc.core."""
