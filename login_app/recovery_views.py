"""HTTP routes of recovery: POST /device/recover and POST /account/recovery_codes.

They compose accounts and device_manager, so they live in login_app above both rather than in
the /device or /account blueprints."""
from __future__ import annotations

from flask import Blueprint, jsonify

from accounts.models import PasswordRequest, RecoveryCodes
from common.caller import current_caller
from common.context import ctx
from common.openapi import operation
from common.validation import parse_body
from device_manager.models import DeviceCertificateResponse
from login_app import recovery_service
from login_app.models import RecoverRequest
from session_manager.guard import current_principal, require_session

bp = Blueprint("recovery", __name__)


@bp.post("/device/recover")
@operation("A new device for an account whose devices are all lost, with a recovery code",
           body=RecoverRequest, response=DeviceCertificateResponse, status=201, errors=(401, 409, 429))
def recover():
    body = parse_body(RecoverRequest)
    result = recovery_service.recover_device(ctx(), request=body, caller=current_caller())
    return jsonify(result.model_dump(exclude_none=True)), 201


@bp.post("/account/recovery_codes")
@require_session
@operation("Ten new recovery codes (the old ones void); the password is asked again", body=PasswordRequest,
           response=RecoveryCodes, status=201, auth=True, errors=(409, 429))
def replace_recovery_codes():
    body = parse_body(PasswordRequest)
    codes = recovery_service.regenerate_recovery_codes(ctx(), user_uuid=current_principal().user_uuid,
                                                       password=body.password, caller=current_caller())
    return jsonify(RecoveryCodes(recovery_codes=codes).model_dump()), 201
