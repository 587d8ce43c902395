"""The OpenID Provider's other endpoints: pushed authorization requests, token, userinfo, revocation
and RP-initiated logout. The back-channel ones answer errors as JSON, never by a redirect."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error, OAuth2Request
from flask import redirect
from werkzeug.wrappers import Response

from accounts import service as accounts
from relying_parties.models import AppRecord
from relying_parties.registry import current_app
from common.database.batch_read import KeyRead
from oidc.core import claims as user_claims
from oidc.app_grants import ending as grants
from oidc.logout import rp_initiated as rp_logout
from oidc.device import flow as device_flow
from oidc.core import fapi2
from oidc.authorization import par
from oidc.core import refusals
from oidc.authorization import checks as request_checks
from oidc.core import request_limits
from oidc.authorization import request_objects
from oidc.core import dpop
from oidc.authorization.request import Pending, authorization_request
from oidc.authorization.authorize import PERSON
from oidc.core.context import grant_store, issuer, one_time_tokens
from oidc.token.device_code import DeviceGrant
from oidc.core.models import Client
from oidc.core.oauth_errors import json_error
from oidc.core.pages import BrowserRefusal
from oidc.token.server import CodeGrant, provider
from sessions import service as sessions
from sessions.binding import ProofOffer
from common.web.caller import current_caller
from common.runtime.context import AppContext


def push_request(offer: ProofOffer | None) -> Response:
    """POST /oidc/par (RFC 9126): the authenticated app's authorization request, checked as
    /oidc/authorize checks it and kept 60 s behind a one-time request_uri; errors are JSON. A DPoP
    proof binds the code to its key (RFC 9449 §10.1)."""
    from common.runtime.context import ctx as current
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)
    try:
        _check_backchannel_request(request)
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
        return _json_error(error)
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


def device_authorization_response(offer: ProofOffer | None) -> Response:
    """POST /oidc/device_authorization (RFC 8628 §3.1-3.2): an app allowed the grant (a public one sends
    its client_id) gets a device_code and a user code for the person; errors are JSON. A DPoP proof binds
    the screen's tokens to its key from the start."""
    from common.runtime.context import ctx as current
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)
    try:
        _check_backchannel_request(request)
        client = server.authenticate_client(request, list(DeviceGrant.TOKEN_ENDPOINT_AUTH_METHODS),
                                            "device_authorization")
        key = dpop.proven_key(ctx, offer)
        answer = device_flow.begin(ctx, app=client.app, scope=client.get_allowed_scope(request.form.get("scope")),
                                   jkt=key.jkt if key else None, ip=current_caller().ip)
    except OAuth2Error as error:
        return _json_error(error)
    return Response(json.dumps(answer), status=200, mimetype="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _check_backchannel_request(request: OAuth2Request) -> None:
    """The standard's refusals at the token, PAR and revocation endpoints, before Authlib reads the
    request: its parameters (query and body, as Authlib reads them) and its client authentication."""
    request_checks.check_backchannel_request(request.payload.data, authorization=request.headers.get("Authorization"))


def _json_error(error: OAuth2Error) -> Response:
    """An RFC 6749 §5.2 error as JSON, never a redirect (the back-channel endpoints), logged and counted
    (oidc.core.refusals)."""
    refusals.refused(error)
    return json_error(error)


def token_response(offer: ProofOffer | None) -> Response:
    """POST /oidc/token: Authlib's token endpoint (RFC 6749 §5 errors as JSON), the tokens bound to the
    key of the request's DPoP proof if it has one."""
    from common.runtime.context import ctx as current
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)  # parsed once, for the checks and for Authlib
    try:
        _check_backchannel_request(request)
        key = dpop.proven_key(ctx, offer)
    except OAuth2Error as error:
        return _json_error(error)
    with dpop.proving(key):
        return server.create_token_response(request)


@dataclass(frozen=True)
class UserInfoAnswer:
    """Userinfo's claims, and the same as a JWT for an app registered with userinfo_signed_response_alg."""

    claims: dict[str, Any]
    signed: str | None = None


def userinfo(ctx: AppContext, *, access_token: str, scheme: str, offer: ProofOffer | None) -> UserInfoAnswer:
    """The person behind an app's access token (a DPoP-bound one with its proof), by its scope; 401 once
    its session has ended, the app gave its grant back (/oidc/revoke) or the account's deletion began.
    Signed (OpenID Connect Core §5.3.2) when the app asked for it at its registration."""
    principal = sessions.authenticate(ctx, access_token=access_token, scheme=scheme, offer=offer,
                                      issued_by=sessions.PROVIDER_TOKENS,
                                      along=lambda claims: _userinfo_reads(ctx, claims))
    scope = str(principal.claims.get("scope", ""))
    if "openid" not in scope.split():
        raise sessions.InvalidToken("This access token was not issued for OpenID Connect (scope openid).")
    if not grants.issued_from(principal.along[GRANT], principal.claims):
        raise sessions.InvalidToken("This access token was revoked.")
    app = _registered_app(ctx, principal.claims)
    if app is None:
        raise sessions.InvalidToken("This access token's app was removed.")
    if principal.along[PERSON] is None:  # its deletion began (the sessions end next): a token of nobody
        raise sessions.InvalidToken("This access token's account was deleted.")
    claims = {"sub": principal.user_uuid, **user_claims.of_account(principal.along[PERSON], scope=scope)}
    alg = app.oidc().userinfo_signed_response_alg
    return UserInfoAnswer(claims=claims, signed=_signed_userinfo(ctx, claims, client_id=app.client_id, alg=alg)
                          if alg else None)


def _signed_userinfo(ctx: AppContext, claims: dict[str, Any], *, client_id: str, alg: str) -> str:
    """OpenID Connect Core §5.3.2: the claims as a JWT the key ring signs with the app's alg, with `iss` and
    `aud` (the app); no `nonce` (a userinfo answer is no ID token) and no `exp`, which §5.3.2 does not ask for."""
    return ctx.jwt.sign_jwt({"iss": issuer(ctx), "aud": client_id, **claims}, algorithm=alg, typ="JWT")


GRANT = "oidc.grant"


def _userinfo_reads(ctx: AppContext, claims: dict[str, Any]) -> dict[str, KeyRead[Any]]:
    """What userinfo reads in the session's own batch read: the app's grant the token came from (revoked:
    none) and the person."""
    return {GRANT: grant_store(ctx).read(session_id=str(claims.get("sid")), client_id=str(claims.get("client_id"))),
            PERSON: accounts.account_read(ctx.tables, user_uuid=str(claims.get("sub")))}


class ProviderGrant:
    """What introspection asks of an OpenID Provider token, read in the session's own batch read: whether
    its app still holds the grant the token came from (a revocation, a code used twice or a refresh token
    reused after the grace revokes it: oidc.app_grants.ending); citylogin's own tokens have none to lose."""

    @staticmethod
    def reads(ctx: AppContext, claims: dict[str, Any]) -> dict[str, KeyRead[Any]]:
        client_id, session_id = claims.get("client_id"), claims.get("sid")
        if not (isinstance(client_id, str) and isinstance(session_id, str)):
            return {}
        return {GRANT: grant_store(ctx).read(session_id=session_id, client_id=client_id)}

    @staticmethod
    def still_granted(ctx: AppContext, claims: dict[str, Any], along: dict[str, Any]) -> bool:
        if claims.get("client_id") is None:
            return True
        return GRANT in along and _app_registered(ctx, claims) and grants.issued_from(along[GRANT], claims)


def _app_registered(ctx: AppContext, claims: dict[str, Any]) -> bool:
    """Whether the app an OpenID Provider token was issued to is still registered, as every host sees it
    within a second of its removal (relying_parties.registry; SPEC §14: a removed app's tokens are refused)."""
    return _registered_app(ctx, claims) is not None


def _registered_app(ctx: AppContext, claims: dict[str, Any]) -> AppRecord | None:
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 128:
        return None
    return current_app(ctx, client_id=client_id)


def end_session_response(ctx: AppContext) -> Response:
    """GET|POST /oidc/logout (RP-Initiated Logout 1.0): a request that checks out is kept behind a
    one-time handle and the browser goes to the web UI (`/#oidc-logout=<handle>`), where this browser's
    device proves with its key which session it holds (flows.app_sign_out); nothing ends here, so a
    request that no browser follows ends nothing. One that does not check out is an error page in the
person's language (oidc.core.pages), never followed."""
    try:
        validated = provider(ctx).validate_endpoint_request("end_session")
    except OAuth2Error as error:
        raise BrowserRefusal(kind="logout", error=error.error, description=error.description) from None
    return redirect(f"{issuer(ctx)}/#oidc-logout={rp_logout.keep(ctx, validated)}", code=303)


def revocation_response() -> Response:
    """POST /oidc/revoke: Authlib's RFC 7009 endpoint, after the standard's refusals (JSON errors)."""
    from common.runtime.context import ctx as current
    server = provider(current())
    try:
        _check_backchannel_request(server.create_oauth2_request(None))
    except OAuth2Error as error:
        return _json_error(error)
    return server.create_endpoint_response("revocation")
