"""OIDC_OP_LOGOUT_URL_METHOD: where the library's logout view sends the browser after it signed the
person out of the site, here citylogin's end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0)
with the ID token as the hint and the site's page as where to come back to."""
from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest


def end_session_url(request: HttpRequest) -> str:
    query = urlencode({"id_token_hint": request.session["oidc_id_token"],
                       "post_logout_redirect_uri": request.build_absolute_uri("/")})
    return f"{settings.ISSUER}/oidc/logout?{query}"
