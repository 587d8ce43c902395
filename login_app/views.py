"""HTTP routes of /login: parse, call one service function, shape the answer."""
from __future__ import annotations

from urllib.parse import unquote

from flask import Blueprint, jsonify, request

from common.context import ctx
from common.openapi import operation
from common.validation import parse_body
from login_app import service
from login_app.models import ChallengeResponse, ConfirmRequest, LoginRequest, LoginResponse

bp = Blueprint("login_app", __name__, url_prefix="/login")


def _caller() -> service.Caller:
    # remote_addr already honours CITYLOGIN_TRUSTED_PROXIES (ProxyFix in the app factory).
    header = ctx().settings.trusted_client_cert_header
    verified = unquote(request.headers[header]) if header and request.headers.get(header) else None
    return service.Caller(ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
                          verified_cert=verified)


@bp.post("/challenge")
@operation("A single-use nonce for the device to sign", response=ChallengeResponse, status=201)
def challenge():
    return jsonify(ChallengeResponse(challenge=service.new_challenge(ctx()),
                                     expires_in=service.CHALLENGE_TTL).model_dump()), 201


@bp.post("/")
@operation("Log a device in: password plus proof of possession", body=LoginRequest, response=LoginResponse,
           errors=(401, 403, 409, 429))
def login():
    body = parse_body(LoginRequest)
    return jsonify(service.login(ctx(), request=body, caller=_caller()).model_dump())


@bp.post("/confirm")
@operation("Continue a login that was refused with 409 concurrent_login", body=ConfirmRequest,
           response=LoginResponse, errors=(401, 403, 409))
def confirm():
    body = parse_body(ConfirmRequest)
    return jsonify(service.confirm(ctx(), confirm_token=body.confirm_token, caller=_caller()).model_dump())
