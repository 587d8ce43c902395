"""oidc.app_grants."""
