"""mozilla-django-oidc as its quick start sets it up (docs/installation.rst, "Quick start"), nothing else:
the app, the backend, the client, the provider's endpoints (this library takes endpoints, not
discovery) and, as "Choose the appropriate algorithm" says for a provider that signs with its keys,
RS256 with the provider's JWKS instead of the library's HS256 default."""
from __future__ import annotations

import os

from common_settings import *  # noqa: F401,F403
from common_settings import INSTALLED_APPS

ISSUER = os.environ["OIDC_ISSUER"]       # the citylogin the test started

ROOT_URLCONF = "mozilla_site.urls"

INSTALLED_APPS = [*INSTALLED_APPS, "mozilla_django_oidc"]  # load after auth
AUTHENTICATION_BACKENDS = (
    "django.contrib.auth.backends.ModelBackend",
    "mozilla_django_oidc.auth.OIDCAuthenticationBackend",
)

OIDC_RP_CLIENT_ID = os.environ["OIDC_RP_CLIENT_ID"]
OIDC_RP_CLIENT_SECRET = os.environ["OIDC_RP_CLIENT_SECRET"]

OIDC_OP_AUTHORIZATION_ENDPOINT = f"{ISSUER}/oidc/authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/oidc/token"
OIDC_OP_USER_ENDPOINT = f"{ISSUER}/oidc/userinfo"

OIDC_RP_SIGN_ALGO = "RS256"
OIDC_OP_JWKS_ENDPOINT = f"{ISSUER}/.well-known/jwks.json"

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
