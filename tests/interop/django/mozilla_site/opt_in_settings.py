"""mozilla_site with the library's two opt-ins, as its docs describe them: the SessionRefresh middleware
(after OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS it signs the person in again with prompt=none, and signs them
out of the site when the provider answers an error) and logging out at the provider too
(OIDC_OP_LOGOUT_URL_METHOD, with the ID token kept for its hint)."""
from __future__ import annotations

from mozilla_site.settings import *  # noqa: F401,F403
from mozilla_site.settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "mozilla_django_oidc.middleware.SessionRefresh"]
# The library's default is 15 minutes; the test waits out a few seconds instead.
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 3

OIDC_STORE_ID_TOKEN = True
OIDC_OP_LOGOUT_URL_METHOD = "mozilla_site.provider_logout.end_session_url"
