"""Device rules: keys and certificates for new devices, lookups. No Flask here."""
from __future__ import annotations

import base64
import uuid
from datetime import datetime

from common.certificates import (certificate_fingerprint, certificate_pem, issue_device_certificate)
from common.context import AppContext
from common.crypto import (CryptoInputError, generate_device_key, key_type_name,
                           load_device_public_key, public_key_from_csr)
from common.errors import InvalidField
from common.timefmt import iso
from device_manager.models import DeviceCertificateResponse, DeviceRecord, IssuedDevice
from device_manager.store import DeviceStore


def device_store(ctx: AppContext) -> DeviceStore:
    return DeviceStore(ctx.dynamodb, ctx.tables.devices)


def _device_key(*, public_key: str | None, csr: str | None):
    """The device's public key from its PEM or CSR, or a server-generated key pair."""
    if public_key and csr:
        raise InvalidField("public_key", "Send either public_key or csr, not both.")
    try:
        if public_key:
            return load_device_public_key(public_key), None
        if csr:
            return public_key_from_csr(csr), None
    except CryptoInputError as exc:
        raise InvalidField(exc.field, str(exc)) from None
    private_pem, key = generate_device_key()
    return key, private_pem


def issue_device(ctx: AppContext, *, user_uuid: str, device_name: str | None, is_primary: bool,
                 public_key: str | None, csr: str | None) -> IssuedDevice:
    """Check the device's key and issue its certificate; nothing is stored yet."""
    key, private_pem = _device_key(public_key=public_key, csr=csr)
    device_id = str(uuid.uuid4())
    now: datetime = ctx.now()
    cert = issue_device_certificate(ctx.ca, public_key=key, user_uuid=user_uuid, device_id=device_id,
                                    days=ctx.settings.cert_validity_days, now=now)
    record = DeviceRecord(
        user_uuid=user_uuid, device_id=device_id,
        device_name=device_name or ("First device" if is_primary else f"Device {device_id[:8]}"),
        is_primary=is_primary, fingerprint=certificate_fingerprint(cert), cert_pem=certificate_pem(cert),
        key_type=key_type_name(key), cert_expires_at=iso(cert.not_valid_after_utc), registered_at=iso(now))
    return IssuedDevice(record=record, private_key_pem=private_pem)


def new_device_write(ctx: AppContext, record: DeviceRecord) -> dict:
    """The transaction entry that stores a new device, for a caller's TransactWriteItems."""
    return device_store(ctx).put_new_item(record)


def certificate_response(ctx: AppContext, issued: IssuedDevice, *, message: str) -> DeviceCertificateResponse:
    record = issued.record
    return DeviceCertificateResponse(
        uuid=record.user_uuid, device_id=record.device_id, device_name=record.device_name,
        client_cert=base64.b64encode(record.cert_pem.encode()).decode(), fingerprint=record.fingerprint,
        ca_cert=ctx.ca.certificate_pem(), private_key=issued.private_key_pem, message=message)
