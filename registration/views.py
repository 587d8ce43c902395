"""HTTP routes of /registration: parse, call one service function, shape the answer."""
from __future__ import annotations

from flask import Blueprint, jsonify

from common.context import ctx
from common.openapi import operation
from common.validation import json_object, parse_model
from device_manager.models import DeviceCertificateResponse
from registration import service
from registration.models import NewUserRequest, PairedDeviceRequest, RegistrationInfo

bp = Blueprint("registration", __name__, url_prefix="/registration")

INFO = RegistrationInfo(
    service="citylogin registration",
    description="Create an account with its first device, or add a device with a pairing QR code.",
    new_user_fields={"username": "required, 3-32 of [A-Za-z0-9_.-]", "email": "required",
                     "password": "required, 8-128 characters, not a common password",
                     "device_name": "optional", "public_key": "optional PEM SubjectPublicKeyInfo",
                     "csr": "optional PEM PKCS#10 (instead of public_key)"},
    further_device_fields={"qr_code": "required, the pairing payload", "username": "required",
                           "password": "required", "device_name": "optional",
                           "public_key": "optional", "csr": "optional"},
    key_types=["ecdsa-p256", "ed25519", "ml-dsa-87"],
)


@bp.get("/")
@operation("Describe the registration service", response=RegistrationInfo)
def describe():
    return jsonify(INFO.model_dump())


@bp.post("/")
@operation("Register a new user and its first device (or, with qr_code, a further device)",
           body=NewUserRequest, response=DeviceCertificateResponse, status=201, errors=(409, 413))
def register():
    body = json_object()
    if "qr_code" in body:
        request = parse_model(PairedDeviceRequest, body)
        result = service.register_paired_device(ctx(), request=request)
    else:
        request = parse_model(NewUserRequest, body)
        result = service.register_user(
            ctx(), username=request.username, email=str(request.email), password=request.password,
            device_name=request.device_name, public_key=request.public_key, csr=request.csr)
    return jsonify(result.model_dump(exclude_none=True)), 201
