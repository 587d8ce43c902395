"""The OpenID Provider's flows (SPEC §14), read top-down: an app's authorization request waits for
the person's browser, which signs in on its device in citylogin's own web UI and finishes it; the app
then redeems the code at the token endpoint and reads the person at userinfo. Authlib checks the
protocol (oidc.token.server), whose grants call down into citylogin's apps, sessions and stores.
This module only names what the modules below offer, in the order they build on each other."""
from __future__ import annotations

from oidc.core.context import grant_store, issuer
from oidc.authorization.request import REQUEST_PURPOSE
from oidc.core.kept_request import REQUEST_TTL
from oidc.token.client_credentials import ADMIN_AUDIENCE, admin_access_token, admin_app_of
from oidc.token.server import provider
from oidc.core.pages import BrowserRefusal, error_page, unechoed
from oidc.authorization.browser_binding import OtherBrowser, cookie_name
from oidc.authorization.begin import begin
from oidc.authorization.finish import (PERSON, WAITING, AuthorizationRefused, AuthorizationRequestUnknown,
                                       ConsentRequired, LoginRequired, cancel, complete, complete_reads, interaction,
                                       respond)
from oidc.authorization.par_endpoint import push_request
from oidc.device.endpoint import device_authorization_response
from oidc.token.endpoint import revocation_response, token_response
from oidc.userinfo.userinfo import userinfo
from oidc.userinfo.introspection import GRANT, ProviderGrant
from oidc.logout.endpoint import end_session_response

__all__ = [
    "grant_store", "issuer",
    "REQUEST_PURPOSE", "REQUEST_TTL",
    "ADMIN_AUDIENCE", "admin_access_token", "admin_app_of",
    "provider",
    "BrowserRefusal", "error_page", "unechoed",
    "OtherBrowser", "cookie_name",
    "PERSON", "WAITING", "AuthorizationRefused", "AuthorizationRequestUnknown", "ConsentRequired", "LoginRequired",
    "begin", "cancel", "complete", "complete_reads", "interaction", "respond",
    "GRANT", "device_authorization_response", "end_session_response", "push_request", "revocation_response",
    "ProviderGrant", "token_response", "userinfo",
]
