"""POST /oidc/revoke: OAuth 2.0 Token Revocation (RFC 7009) by Authlib's endpoint (oidc.token.server), after the
standard's refusals of the request as sent (JSON errors, RFC 6749 §5.2)."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error
from werkzeug.wrappers import Response

from common.runtime.context import ctx as current
from oidc.core.oauth_errors import refused_in_json
from oidc.core.parameter_checks import check_backchannel
from oidc.token.server import provider


def revocation_response() -> Response:
    """POST /oidc/revoke: Authlib's RFC 7009 endpoint, after the standard's refusals (JSON errors)."""
    server = provider(current())
    try:
        check_backchannel(server.create_oauth2_request(None))
    except OAuth2Error as error:
        return refused_in_json(error)
    return server.create_endpoint_response("revocation")
