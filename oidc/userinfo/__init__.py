"""oidc.userinfo."""
