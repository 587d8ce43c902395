"""oidc.discovery."""
