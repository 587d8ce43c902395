"""social_site with the one setting that gets the app a refresh token: `offline_access` added to the
backend's default scope (openid profile email), which has none for a confidential client."""
from __future__ import annotations

from social_site.settings import *  # noqa: F401,F403

ROOT_URLCONF = "social_site.offline_urls"

SOCIAL_AUTH_OIDC_SCOPE = ["offline_access"]
