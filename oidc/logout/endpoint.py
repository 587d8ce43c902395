"""GET|POST /oidc/logout (OpenID Connect RP-Initiated Logout 1.0 §2): the request checked by Authlib's
end-session endpoint (oidc.logout.rp_initiated) and kept for the browser's device; nothing ends here."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import redirect
from werkzeug.wrappers import Response

from common.runtime.context import AppContext
from oidc.core.context import issuer
from oidc.core.pages import BrowserRefusal
from oidc.logout import rp_initiated as rp_logout
from oidc.token.server import provider


def end_session_response(ctx: AppContext) -> Response:
    """GET|POST /oidc/logout (RP-Initiated Logout 1.0): a request that checks out is kept behind a
    one-time handle and the browser goes to the web UI (`/#oidc-logout=<handle>`), where this browser's
    device proves with its key which session it holds (flows.app_sign_out); nothing ends here, so a
    request that no browser follows ends nothing. One that does not check out is an error page in the
person's language (oidc.core.pages), never followed."""
    try:
        endpoint = rp_logout.EndSession(provider(ctx))  # as Authlib's validate_endpoint_request does
        validated = endpoint.validate_request(endpoint.create_endpoint_request(None))
    except OAuth2Error as error:
        raise BrowserRefusal(kind="logout", error=error.error, description=error.description) from None
    return redirect(f"{issuer(ctx)}/#oidc-logout={rp_logout.keep(ctx, validated)}", code=303)
