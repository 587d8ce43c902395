"""HTTP routes of /login: parse, call one service function, shape the answer."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from accounts.models import PasskeyOptions, PasskeyRequestOptions

from flows import login as login_flow
from flows.models import ChallengeResponse, ConfirmRequest, LoginRequest, LoginResponse
from sessions.binding import current_nonce
from sessions.guard import NONCE_HEADER, proof_offer
from common.web.caller import current_caller
from common.runtime.context import ctx
from common.web.openapi import operation
from common.web.validation import parse_body, parse_optional_body

bp = Blueprint("login_app", __name__, url_prefix="/login")


@bp.post("/challenge")
@operation("A single-use nonce for the device to sign", response=ChallengeResponse, status=201, errors=(429,))
def challenge() -> tuple[Response, int, dict[str, str]]:
    # With the server's DPoP-Nonce, for a client that puts one in its login proof (SPEC §12).
    context = ctx()
    return jsonify(ChallengeResponse(challenge=login_flow.new_challenge(context, ip=current_caller().ip),
                                     expires_in=login_flow.CHALLENGE_TTL).model_dump()), 201, {
        NONCE_HEADER: current_nonce(context.refresh_secrets, context.epoch())}


@bp.post("/passkey/options")
@operation("Options to sign in with a passkey (for a username, its passkeys; else a discoverable one)",
           body=PasskeyRequestOptions, body_required=False, response=PasskeyOptions, errors=(429,))
def passkey_options() -> Response:
    body = parse_optional_body(PasskeyRequestOptions)
    options = login_flow.passkey_options(ctx(), username=body.username, ip=current_caller().ip)
    return Response(options, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.post("/")
@operation("Log a device in: password (or a passkey) plus proof of possession", body=LoginRequest,
           response=LoginResponse, errors=(401, 403, 409, 429))
def login() -> Response:
    body = parse_body(LoginRequest)
    return jsonify(login_flow.login(ctx(), request=body, caller=current_caller(), offer=proof_offer()).model_dump())


@bp.post("/confirm")
@operation("Continue a login that was refused with 409 concurrent_login, signing out the default devices or "
           "those named in `displace`", body=ConfirmRequest, response=LoginResponse, errors=(400, 401, 403, 409))
def confirm() -> Response:
    body = parse_body(ConfirmRequest)
    return jsonify(login_flow.confirm(ctx(), confirm_token=body.confirm_token, caller=current_caller(),
                                      offer=proof_offer(), displace=tuple(body.displace)).model_dump())
