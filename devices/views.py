"""HTTP routes of /device: parse, call one service function, shape the answer. What a route asks of the
flows above devices/ (a device paired or recovered: an account's credentials as well) it asks of the
DeviceFlows that the service mounting this blueprint gives (flows.for_devices)."""
from __future__ import annotations

from typing import Protocol
from uuid import UUID

from flask import Blueprint, Response, jsonify

from devices import certificate_service, service
from devices.models import (DeviceCertificateResponse, DeviceIdRequest, DeviceList, EnrolCodeAccepted, EnrolCodeRequest,
                            EnrolRequest, ForcedLogout, PairedDeviceRequest, RecoverRequest, RenameRequest,
                            RenamedDevice, RenewRequest, RenewedCertificate, UnbindRequest, UnboundDevice)
from sessions.guard import current_principal, require_session
from common.slots import Slot
from common.web.caller import Caller, current_caller
from common.runtime.context import EXTENSION_KEY, AppContext, ctx
from common.web.openapi import operation
from common.web.validation import parse_body


class DeviceFlows(Protocol):
    """What /device asks of the flows above devices/."""

    def register_paired_device(self, ctx: AppContext, *, qr_code: str, username: str, password: str,
                               device_name: str | None, public_key: str | None, csr: str | None,
                               caller: Caller, device_class: str = "other") -> DeviceCertificateResponse:
        """flows.pairing: a new device with a pairing token and the account's credentials."""

    def recover_device(self, ctx: AppContext, *, request: RecoverRequest, caller: Caller) -> DeviceCertificateResponse:
        """flows.recovery: a new device with the account's credentials and a recovery code."""

    def request_enrol_code(self, ctx: AppContext, *, username: str, caller: Caller) -> None:
        """flows.device_enrol: a code mailed for the first device of an account that has none, if it is one."""

    def enrol(self, ctx: AppContext, *, request: EnrolRequest, caller: Caller) -> DeviceCertificateResponse:
        """flows.device_enrol: the first device with the account's password and the mailed code."""


FLOWS: Slot[DeviceFlows] = Slot("devices.views.flows")

bp = Blueprint("device_manager", __name__, url_prefix="/device")
bp.record_once(lambda state: state.app.extensions[EXTENSION_KEY].slots.needed(FLOWS))  # given, or no app


def _flows() -> DeviceFlows:
    return ctx().slots.needed(FLOWS)


@bp.get("/ca.pem")
@operation("The CA certificate that issues device certificates", media_type="application/x-pem-file", database=False)
def ca_certificate() -> Response:
    return Response(ctx().ca.certificate_pem(), mimetype="application/x-pem-file")


@bp.get("/crl.pem")
@operation("The CA-signed CRL of revoked and superseded device certificates (PEM)",
           media_type="application/x-pem-file")
def crl() -> Response:
    # Cached up to 15 s here (CRL_CACHE_TIME); let other caches keep it no longer than that.
    return Response(certificate_service.current_crl_pem(ctx()), mimetype="application/x-pem-file",
                    headers={"Cache-Control": "public, max-age=15"})


@bp.post("/renew")
@require_session
@operation("Renew the calling device's certificate, on a new key if one is sent", body=RenewRequest,
           response=RenewedCertificate, status=201, auth=True, errors=(403, 409, 429))
def renew() -> tuple[Response, int]:
    body = parse_body(RenewRequest)
    principal = current_principal()
    result = certificate_service.renew_certificate(
        ctx(), user_uuid=principal.user_uuid, device_id=principal.device_id, challenge=body.challenge,
        signature=body.signature, public_key=body.public_key, csr=body.csr, session=principal.session)
    return jsonify(result.model_dump()), 201


@bp.post("/register")
@operation("Add a device with a pairing QR payload and the account's credentials", body=PairedDeviceRequest,
           response=DeviceCertificateResponse, status=201, errors=(401, 403, 404, 409, 410, 429))
def register() -> tuple[Response, int]:
    paired = parse_body(PairedDeviceRequest)
    result = _flows().register_paired_device(
        ctx(), qr_code=paired.qr_code, username=paired.username, password=paired.password,
        device_name=paired.device_name, public_key=paired.public_key, csr=paired.csr, caller=current_caller(),
        device_class=paired.device_class)
    return jsonify(result.model_dump(exclude_none=True)), 201


@bp.get("/list")
@require_session
@operation("The caller's devices", response=DeviceList, auth=True)
def list_devices() -> Response:
    principal = current_principal()
    result = service.list_devices(ctx(), user_uuid=principal.user_uuid, current_device_id=principal.device_id)
    return jsonify(result.model_dump())


@bp.patch("/<uuid:device_id>")  # the converter keeps PATCH /device/list off this route
@require_session
@operation("Rename one of the caller's devices, or change its class", body=RenameRequest, response=RenamedDevice,
           auth=True, errors=(404, 409))
def rename(device_id: UUID) -> Response:
    body = parse_body(RenameRequest)
    result = service.rename_device(ctx(), user_uuid=current_principal().user_uuid, device_id=str(device_id),
                                   device_name=body.device_name, device_class=body.device_class)
    return jsonify(result.model_dump())


@bp.post("/force_logout")
@require_session
@operation("Log one of the caller's devices out (reason remote_logout)", body=DeviceIdRequest,
           response=ForcedLogout, auth=True, errors=(404,))
def force_logout() -> Response:
    body = parse_body(DeviceIdRequest)
    principal = current_principal()
    ended = service.force_logout(ctx(), user_uuid=principal.user_uuid, device_id=body.device_id,
                                 by_device=principal.device_id)
    return jsonify(ForcedLogout(device_id=body.device_id, logged_out=ended).model_dump())


@bp.post("/unbind")
@require_session
@operation("Revoke one of the caller's devices for good and end its session", body=UnbindRequest,
           response=UnboundDevice, auth=True, errors=(404, 409))
def unbind() -> Response:
    body = parse_body(UnbindRequest)
    principal = current_principal()
    service.unbind(ctx(), user_uuid=principal.user_uuid, device_id=body.device_id, by_device=principal.device_id,
                   confirm_last=body.confirm_last)
    return jsonify(UnboundDevice(device_id=body.device_id).model_dump())


@bp.post("/recover")
@operation("A new device for an account whose devices are all lost, with a recovery code",
           body=RecoverRequest, response=DeviceCertificateResponse, status=201, errors=(401, 409, 429))
def recover() -> tuple[Response, int]:
    body = parse_body(RecoverRequest)
    result = _flows().recover_device(ctx(), request=body, caller=current_caller())
    return jsonify(result.model_dump(exclude_none=True)), 201


ENROL_CODE_ACCEPTED = ("If this account can set up its first device this way, a code is on its way to its e-mail "
                       "address; it works for 10 minutes.")


@bp.post("/enrol/code")
@operation("Mail a code for the first device of an account that has no device (an imported one) to its address; "
           "the same answer whether or not the account exists", body=EnrolCodeRequest,
           response=EnrolCodeAccepted, status=202, errors=(429,))
def enrol_code() -> tuple[Response, int]:
    body = parse_body(EnrolCodeRequest)
    _flows().request_enrol_code(ctx(), username=body.username, caller=current_caller())
    return jsonify(EnrolCodeAccepted(message=ENROL_CODE_ACCEPTED).model_dump()), 202


@bp.post("/enrol")
@operation("The first device of an account that has no device (an imported one), with its password and the code "
           "mailed by POST /device/enrol/code", body=EnrolRequest, response=DeviceCertificateResponse, status=201,
           errors=(401, 403, 409, 429))
def enrol() -> tuple[Response, int]:
    body = parse_body(EnrolRequest)
    result = _flows().enrol(ctx(), request=body, caller=current_caller())
    return jsonify(result.model_dump(exclude_none=True)), 201
