"""The token endpoint's routes. POST /oidc/token (RFC 6749 §3.2, §5): the standard's refusals of the request as sent,
the DPoP proof's key (RFC 9449 §5), then Authlib's token endpoint (oidc.token.server): the client's authentication
(oidc.clients.authentication), the grant (one module each: authorization_code, refresh_token, client_credentials,
device_code), its tokens (oidc.token.tokens). POST /oidc/revoke (RFC 7009): the same refusals, then Authlib's
revocation endpoint (oidc.token.revocation). Every error is JSON (RFC 6749 §5.2), never a redirect."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error
from werkzeug.wrappers import Response

from common.runtime.context import ctx as current
from oidc.core import dpop
from oidc.core.oauth_errors import refused_in_json
from oidc.core.parameter_checks import check_backchannel
from oidc.token.server import provider
from sessions.binding import ProofOffer


def token_response(offer: ProofOffer | None) -> Response:
    """POST /oidc/token: Authlib's token endpoint (RFC 6749 §5 errors as JSON), the tokens bound to the
    key of the request's DPoP proof if it has one."""
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)  # parsed once, for the checks and for Authlib
    try:
        check_backchannel(request)
        key = dpop.proven_key(ctx, offer)
    except OAuth2Error as error:
        return refused_in_json(error)
    with dpop.proving(key):
        return server.create_token_response(request)


def revocation_response() -> Response:
    """POST /oidc/revoke: Authlib's RFC 7009 endpoint, after the standard's refusals (JSON errors)."""
    server = provider(current())
    try:
        check_backchannel(server.create_oauth2_request(None))
    except OAuth2Error as error:
        return refused_in_json(error)
    return server.create_endpoint_response("revocation")
