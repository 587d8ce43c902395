"""POST /oidc/par: Pushed Authorization Requests (RFC 9126 §2), with the request objects of RFC 9101 §10.5 and
DPoP's binding of the code at PAR (RFC 9449 §10.1). The app authenticates as at the token endpoint; its request
is checked as /oidc/authorize checks it and kept 60 s behind a one-time request_uri (oidc.authorization.par)."""
from __future__ import annotations

import json

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from werkzeug.wrappers import Response

from common.runtime.context import ctx as current
from common.web.caller import current_caller
from oidc.authorization import checks as request_checks
from oidc.authorization import par, request_objects
from oidc.authorization.request import Pending, authorization_request
from oidc.core import dpop, fapi2, refusals, request_limits
from oidc.core.context import one_time_tokens
from oidc.core.models import Client
from oidc.core.oauth_errors import refused_in_json
from oidc.core.parameter_checks import check_backchannel
from oidc.token.authorization_code import CodeGrant
from oidc.token.server import provider
from sessions.binding import ProofOffer


def push_request(offer: ProofOffer | None) -> Response:
    """POST /oidc/par (RFC 9126): the authenticated app's authorization request, checked as
    /oidc/authorize checks it and kept 60 s behind a one-time request_uri; errors are JSON. A DPoP
    proof binds the code to its key (RFC 9449 §10.1)."""
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)
    try:
        check_backchannel(request)
        client = server.authenticate_client(request, list(CodeGrant.TOKEN_ENDPOINT_AUTH_METHODS),
                                            "pushed_authorization_request")
        request_checks.check_target(request.form)
        carried = request_objects.pushed(ctx, request.form, client=client)
        _check_signed_if_required(client, carried)
        request_checks.check_authorization_request(carried.params if carried else request.form)
        form = par.checked_form((carried.params if carried else request.form).to_dict(), client.client_id)
        _bind_to_proven_key(form, dpop.proven_key(ctx, offer), client=client)
        server.get_consent_grant(request=authorization_request(ctx, form), end_user=Pending())
        answer = par.stored_params(one_time_tokens(ctx), form=form, client_id=client.client_id, now=ctx.epoch(),
                                   counter=request_limits.counted(ctx, kind=request_limits.PAR, ip=current_caller().ip),
                                   spending=carried.spending if carried else None)
    except OAuth2Error as error:
        return refused_in_json(error)
    return Response(json.dumps(answer), status=201, mimetype="application/json", headers={"Cache-Control": "no-store"})


def _check_signed_if_required(client: Client, carried: request_objects.Carried | None) -> None:
    """RFC 9101 §10.5 at /oidc/par: an app that requires signed request objects pushes one."""
    if client.app.oidc().require_signed_request_object and not (carried and carried.signed):
        raise refusals.because(InvalidRequestError("This app sends its authorization requests as signed request "
                                                   "objects only (RFC 9101): push one as request."),
                               "signed_request_object_required")


def _bind_to_proven_key(form: dict[str, str], proven: dpop.ProvenKey | None, *, client: Client) -> None:
    """RFC 9449 §10.1: a proof at PAR binds the code to its key (as `dpop_jkt`, which, sent too, must name
    it), signed with an algorithm the app's profile takes."""
    if proven is None:
        return
    dpop.check_algorithm(proven, fapi2.DPOP_ALGORITHMS if client.app.oidc().fapi2 else None)
    if form.get("dpop_jkt", proven.jkt) != proven.jkt:
        raise dpop.InvalidDpopProofError("dpop_jkt differs from the proof's key.")
    form["dpop_jkt"] = proven.jkt
