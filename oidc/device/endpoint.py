"""POST /oidc/device_authorization (RFC 8628 §3.1-3.2): the screen's app authenticates as at the token endpoint
(a public one sends its client_id) and gets a device_code and a user code for the person (oidc.device.flow)."""
from __future__ import annotations

import json

from authlib.oauth2.rfc6749 import OAuth2Error
from werkzeug.wrappers import Response

from common.runtime.context import ctx as current
from common.web.caller import current_caller
from oidc.clients import authentication
from oidc.core import dpop
from oidc.core.context import issuer
from oidc.core.flask_request import oauth2_request
from oidc.core.oauth_errors import refused_in_json
from oidc.core.parameter_checks import check_backchannel
from oidc.device import flow as device_flow
from sessions.binding import ProofOffer


def device_authorization_response(offer: ProofOffer | None) -> Response:
    """POST /oidc/device_authorization (RFC 8628 §3.1-3.2): an app allowed the grant (a public one sends
    its client_id) gets a device_code and a user code for the person; errors are JSON. A DPoP proof binds
    the screen's tokens to its key from the start."""
    ctx = current()
    request = oauth2_request(issuer=issuer(ctx))
    try:
        check_backchannel(request)
        client = authentication.authenticated(ctx, request, methods=authentication.TOKEN_ENDPOINT_AUTH_METHODS,
                                              endpoint="device_authorization")
        key = dpop.proven_key(ctx, offer)
        answer = device_flow.begin(ctx, app=client.app, scope=client.get_allowed_scope(request.form.get("scope")),
                                   jkt=key.jkt if key else None, ip=current_caller().ip)
    except OAuth2Error as error:
        return refused_in_json(error)
    return Response(json.dumps(answer), status=200, mimetype="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
