"""HTTP routes of /registration: parse, call one service function, shape the answer."""
from __future__ import annotations

from typing import Sequence

from flask import Blueprint, Response, jsonify, request

from common import i18n
from common.errors import request_locale
from common.database.guarded_write import GuardedWrite
from devices import pairing_service as pairing_tokens
from devices.models import PairedDeviceRequest
from flows import pairing
from flows import registration as registration_flow
from flows.models import (NewUserRequest, PairingCredentialsRequest, PairingTokenRequest, PairingTokenResponse,
                          RegistrationInfo, RegistrationRequest, RegistrationResponse)
from sessions.guard import vouch_request
from common.web.caller import current_caller
from common.runtime.context import ctx
from common.web.openapi import operation
from common.web.validation import json_object, parse_body, parse_model, parse_optional_body

bp = Blueprint("registration", __name__, url_prefix="/registration")

INFO = RegistrationInfo(
    service="citylogin registration",
    description="Create an account with its first device, or add a device with a pairing QR code.",
    new_user_fields={"username": "required, 3-32 of [A-Za-z0-9_.-]", "email": "required",
                     "password": "required, 8-128 characters, not a common password",
                     "device_name": "optional", "public_key": "optional PEM SubjectPublicKeyInfo",
                     "csr": "optional PEM PKCS#10 (instead of public_key)",
                     "locale": "optional, en or ja (else from Accept-Language): the language of its messages"},
    further_device_fields={"qr_code": "required, the pairing link or its payload", "username": "required",
                           "password": "required", "device_name": "optional",
                           "public_key": "optional", "csr": "optional"},
    key_types=["ecdsa-p256", "ed25519", "ml-dsa-87"],
)


@bp.get("/")
@operation("Describe the registration service", response=RegistrationInfo, database=False)
def describe() -> Response:
    return jsonify(INFO.model_dump())


@bp.post("/")
@operation("Register a new user and its first device (or, with qr_code, a further device)",
           body=RegistrationRequest, response=RegistrationResponse, status=201,
           errors=(401, 403, 404, 409, 410, 429))
def register() -> tuple[Response, int]:
    body = json_object()
    if "qr_code" in body:
        paired = parse_model(PairedDeviceRequest, body)
        result = pairing.register_paired_device(
            ctx(), qr_code=paired.qr_code, username=paired.username, password=paired.password,
            device_name=paired.device_name, public_key=paired.public_key, csr=paired.csr, caller=current_caller(),
            device_class=paired.device_class)
    else:
        new = parse_model(NewUserRequest, body)
        result = registration_flow.register_user(
            ctx(), username=new.username, email=str(new.email), password=new.password,
            device_name=new.device_name, public_key=new.public_key, csr=new.csr, device_class=new.device_class,
            locale=chosen_locale(new.locale), ip=current_caller().ip)
    return jsonify(result.model_dump(exclude_none=True)), 201


def chosen_locale(locale: str | None) -> str:
    """The account's language: the body's `locale` if it is one of ours ("ja", "ja-JP"), else
    the Accept-Language's (SPEC §4)."""
    language = (locale or "").split("-")[0].strip().lower()
    return language if language in i18n.LANGUAGES else request_locale()


@bp.post("/request_pairing_token")
@operation("A one-time pairing QR code for adding a device (Bearer, or the seed-compatible body)",
           body=PairingTokenRequest, body_required=False, response=PairingTokenResponse, status=201,
           auth="optional", errors=(403, 429))
def request_pairing_token() -> tuple[Response, int]:
    checks: Sequence[GuardedWrite] = ()
    if request.headers.get("Authorization"):
        caller = vouch_request()  # its session is checked in the token's own write: one round trip
        parse_optional_body(PairingTokenRequest)  # unused, but what is sent must be what the document says
        user_uuid, device_id, checks = caller.user_uuid, caller.device_id, caller.checks
    else:
        creds = parse_body(PairingCredentialsRequest)
        user_uuid, device_id = pairing.device_by_credentials(
            ctx(), username=creds.username, password=creds.password, client_cert_fp=creds.client_cert_fp,
            caller=current_caller())
    result = pairing_tokens.request_pairing_token(ctx(), user_uuid=user_uuid, device_id=device_id, checks=checks)
    return jsonify(PairingTokenResponse(**result).model_dump()), 201
