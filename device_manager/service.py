"""Device rules: keys and certificates for new devices, lookups. No Flask here."""
from __future__ import annotations

import base64
import uuid
from datetime import datetime

from cryptography import x509

from common.certificates import (certificate_fingerprint, certificate_issued_by, certificate_pem,
                                 device_id_from_certificate, issue_device_certificate, load_client_certificate)
from common.context import AppContext
from common.crypto import (CryptoInputError, digests_equal, generate_device_key, key_type_name,
                           load_device_public_key, public_key_from_csr, verify_device_signature)
from common.errors import Conflict, ErrorCode, Forbidden, InvalidField, Unauthorized
from common.timefmt import iso, parse_iso
from device_manager.models import (DEVICE_STATUS_ACTIVE, DeviceCertificateResponse, DeviceRecord,
                                   IssuedDevice)
from device_manager.store import DeviceStore, LimitReached, WriteRefused


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


def new_device_writes(ctx: AppContext, record: DeviceRecord) -> list[dict]:
    """The transaction entries that store a new device and count it against the device limit,
    for a caller's TransactWriteItems (a refused count means device_limit_reached)."""
    store = device_store(ctx)
    return [store.take_slot_item(record.user_uuid, limit=ctx.settings.max_registered_devices),
            store.put_new_item(record)]


def certificate_response(ctx: AppContext, issued: IssuedDevice, *, message: str) -> DeviceCertificateResponse:
    record = issued.record
    return DeviceCertificateResponse(
        uuid=record.user_uuid, device_id=record.device_id, device_name=record.device_name,
        client_cert=base64.b64encode(record.cert_pem.encode()).decode(), fingerprint=record.fingerprint,
        ca_cert=ctx.ca.certificate_pem(), private_key=issued.private_key_pem, message=message)


class CertificateMismatch(Unauthorized):
    code, detail = ErrorCode.CERTIFICATE_MISMATCH, "This certificate does not belong to this account."


class DeviceRevoked(Forbidden):
    code, detail = ErrorCode.DEVICE_REVOKED, "This device was removed from the account and cannot log in."


def _checked_device(ctx: AppContext, record: DeviceRecord | None, *, fingerprint: str) -> DeviceRecord:
    if record is None or not digests_equal(record.fingerprint, fingerprint):
        raise CertificateMismatch()
    if record.status != DEVICE_STATUS_ACTIVE:
        raise DeviceRevoked()
    if parse_iso(record.cert_expires_at) <= ctx.now():
        raise CertificateMismatch("This device's certificate has expired.")
    return record


def device_for_certificate(ctx: AppContext, *, user_uuid: str, client_cert: str) -> DeviceRecord:
    """The user's device that `client_cert` (PEM or base64 PEM) was issued to, if still valid."""
    try:
        cert = load_client_certificate(client_cert)
    except CryptoInputError as exc:
        raise InvalidField("client_cert", str(exc)) from None
    device_id = device_id_from_certificate(cert)
    if not device_id or not certificate_issued_by(ctx.ca, cert, now=ctx.now()):
        raise CertificateMismatch()
    record = device_store(ctx).get(user_uuid=user_uuid, device_id=device_id)
    return _checked_device(ctx, record, fingerprint=certificate_fingerprint(cert))


def device_for_fingerprint(ctx: AppContext, *, user_uuid: str, fingerprint: str) -> DeviceRecord:
    """The user's device with this certificate fingerprint, if still valid."""
    fingerprint = fingerprint.lower()
    matches = [d for d in device_store(ctx).list_for_user(user_uuid) if d.fingerprint == fingerprint]
    return _checked_device(ctx, matches[0] if matches else None, fingerprint=fingerprint)


def device_signed(record: DeviceRecord, *, message: bytes, signature: bytes) -> bool:
    """Did the key certified for this device sign `message`?"""
    key = x509.load_pem_x509_certificate(record.cert_pem.encode()).public_key()
    return verify_device_signature(key, message=message, signature=signature)


def login_recorded_write(ctx: AppContext, record: DeviceRecord) -> dict:
    """The transaction entry that stamps the device's last login."""
    return device_store(ctx).last_login_update(record, at=iso(ctx.now()))


class DeviceLimitReached(Conflict):
    code, detail = ErrorCode.DEVICE_LIMIT_REACHED, "This account already has the maximum number of devices."


def add_device(ctx: AppContext, *, user_uuid: str, device_name: str | None, public_key: str | None,
               csr: str | None, extra_writes: list[dict] | None = None) -> IssuedDevice:
    """Issue and store a further device of an existing user, within the device limit, together
    with `extra_writes` in one transaction (WriteRefused names a refused extra entry)."""
    issued = issue_device(ctx, user_uuid=user_uuid, device_name=device_name, is_primary=False,
                          public_key=public_key, csr=csr)
    writes = new_device_writes(ctx, issued.record)
    try:
        device_store(ctx).transact([*writes, *(extra_writes or [])])
    except LimitReached:
        raise DeviceLimitReached() from None
    except WriteRefused as refused:
        raise WriteRefused(refused.index - len(writes)) from None
    return issued
