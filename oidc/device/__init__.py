"""oidc.device."""
