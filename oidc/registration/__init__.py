"""oidc.registration."""
