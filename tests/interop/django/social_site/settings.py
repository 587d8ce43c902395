"""social-auth-app-django as its documentation sets it up (Django configuration, and the generic
OpenID Connect backend's settings), nothing else: the app, the backend, the issuer (the backend reads
the rest from discovery) and the client."""
from __future__ import annotations

import os

from common_settings import *  # noqa: F401,F403
from common_settings import INSTALLED_APPS

ROOT_URLCONF = "social_site.urls"

INSTALLED_APPS = [*INSTALLED_APPS, "social_django"]
AUTHENTICATION_BACKENDS = (
    "social_core.backends.open_id_connect.OpenIdConnectAuth",
    "django.contrib.auth.backends.ModelBackend",
)

SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = os.environ["OIDC_ISSUER"]    # the citylogin the test started
SOCIAL_AUTH_OIDC_KEY = os.environ["SOCIAL_AUTH_OIDC_KEY"]
SOCIAL_AUTH_OIDC_SECRET = os.environ["SOCIAL_AUTH_OIDC_SECRET"]

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
