"""oidc.authorization."""
