"""Device rules: keys and certificates for new devices, lookups. No Flask here."""
from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from accounts import user_service as users
from common.config import Settings
from common.errors import (Conflict, ErrorCode, Forbidden, InvalidField, MissingFields, NotFound, StorageUnavailable,
                           Unauthorized)
from common.timefmt import iso, parse_iso
from common.crypto.certificates import (CertificateAuthority, certificate_fingerprint, certificate_from_pem,
                                        certificate_issued_by, certificate_pem, device_id_from_certificate,
                                        issue_device_certificate, load_client_certificate, user_uuid_from_certificate)
from common.crypto.device_keys import (CryptoInputError, DeviceKey, generate_device_key, key_type_name,
                                       load_device_public_key, public_key_from_csr, verify_device_signature)
from common.crypto.dpop import key_thumbprint
from common.crypto.tokens import digests_equal
from common.database.batch_read import KeyRead
from common.database.dynamo import StoreRefusal, TableNames
from common.database.guarded_write import GuardedWrite
from devices import concurrency_policy
from devices.challenges import challenge_consumption, signature_bytes
from devices.models import (DEFAULT_DEVICE_CLASS, DEVICE_STATUS_ACTIVE, REASON_UNBOUND, DeviceCertificateResponse,
                            DeviceList, DeviceRecord, DeviceView, IssuedDevice, RenamedDevice,
                            RevokedCertificateRecord)
from devices.store import DeviceChanged, DeviceStore, LastDeviceRefused, LimitReached, WriteRefused
from common.mail.notifier import device_facts, localized_message
from sessions import service as sessions
from sessions.models import NOT_SAID, EndedBy, Presence, RevokeReason
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext
from common.slots import Slot


def device_store(ctx: AppContext) -> DeviceStore:
    return DeviceStore(ctx.dynamodb, ctx.tables.devices)


def _device_key(*, public_key: str | None, csr: str | None) -> tuple[DeviceKey, str | None]:
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
                 public_key: str | None, csr: str | None, device_class: str = DEFAULT_DEVICE_CLASS) -> IssuedDevice:
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
        key_type=key_type_name(key), cert_expires_at=iso(cert.not_valid_after_utc), registered_at=iso(now),
        device_class=device_class)
    return IssuedDevice(record=record, private_key_pem=private_pem)


def _new_device_items(store: DeviceStore, record: DeviceRecord, *, limit: int) -> list[dict[str, Any]]:
    return [store.take_slot_item(record.user_uuid, limit=limit), store.put_new_item(record)]


def new_device_writes(ctx: AppContext, record: DeviceRecord) -> list[GuardedWrite]:
    """The transaction entries that store a new device and count it against the device limit,
    for a caller's transaction: a refused count is DeviceLimitReached, a refused put (a device
    id already stored) a retry."""
    take_slot, put = _new_device_items(device_store(ctx), record, limit=ctx.settings.max_registered_devices)
    return [GuardedWrite(item=take_slot, refusal=DeviceLimitReached),
            GuardedWrite(item=put, refusal=StorageUnavailable)]


def certificate_response(ca: CertificateAuthority, issued: IssuedDevice, *, message: str) -> DeviceCertificateResponse:
    record = issued.record
    return DeviceCertificateResponse(
        uuid=record.user_uuid, device_id=record.device_id, device_name=record.device_name,
        client_cert=base64.b64encode(record.cert_pem.encode()).decode(), fingerprint=record.fingerprint,
        ca_cert=ca.certificate_pem(), cert_expires_at=record.cert_expires_at, private_key=issued.private_key_pem,
        message=message)


class CertificateMismatch(Unauthorized):
    code, detail = ErrorCode.CERTIFICATE_MISMATCH, "This certificate does not belong to this account."


class DeviceRevoked(Forbidden):
    code, detail = ErrorCode.DEVICE_REVOKED, "This device was removed from the account and cannot log in."


class CertificateExpired(Unauthorized):
    code = ErrorCode.CERTIFICATE_EXPIRED
    detail = "This device's certificate expired too long ago to be renewed; add the device again."


def _renewal_grace(settings: Settings) -> timedelta:
    return timedelta(days=settings.cert_renewal_grace_days)


def certificate_expired(record: DeviceRecord, *, now: datetime) -> bool:
    """Has the device's certificate passed its end? (Within the renewal grace it may still log in,
    with proof of possession only, to renew.)"""
    return parse_iso(record.cert_expires_at) <= now


def renewal_due(settings: Settings, record: DeviceRecord, *, now: datetime) -> bool:
    """True within CITYLOGIN_CERT_RENEW_BEFORE_DAYS of the certificate's end, and after it."""
    renew_before = timedelta(days=settings.cert_renew_before_days)
    return parse_iso(record.cert_expires_at) - renew_before <= now


def recheck_device(settings: Settings, record: DeviceRecord | None, *, fingerprint: str,
                   now: datetime) -> DeviceRecord:
    """`record` if it is active, holds the certificate `fingerprint`, and that has not expired
    beyond the renewal grace (at `now`)."""
    if record is None or not digests_equal(record.fingerprint, fingerprint):
        raise CertificateMismatch()
    if record.status != DEVICE_STATUS_ACTIVE:
        raise DeviceRevoked()
    if parse_iso(record.cert_expires_at) + _renewal_grace(settings) <= now:
        raise CertificateExpired()
    return record


def _check_issued_here(ctx: AppContext, cert: x509.Certificate) -> None:
    now = ctx.now()
    if certificate_issued_by(ctx.ca, cert, now=now, grace=_renewal_grace(ctx.settings)):
        return
    if now > cert.not_valid_after_utc and certificate_issued_by(ctx.ca, cert, now=cert.not_valid_after_utc):
        raise CertificateExpired()
    raise CertificateMismatch()


NIL_UUID = str(uuid.UUID(int=0))  # no user or device has it: a key that reads nothing


@dataclass(frozen=True)
class PresentedCertificate:
    """A client certificate as presented, parsed, and the user and device it names: claims to
    look up in one batch read, trusted only after device_for_presented has checked them."""

    cert: x509.Certificate | None  # None: not a certificate (`problem` says why)
    problem: str | None
    user_uuid: str                 # the subject's uuid, or NIL_UUID
    device_id: str                 # the SAN's device uuid, or NIL_UUID


def _uuid_or_nil(value: str | None) -> str:
    try:
        return str(uuid.UUID(value)) if value else NIL_UUID
    except ValueError:  # any text an attacker put in a certificate of their own
        return NIL_UUID


def presented_certificate(client_cert: str) -> PresentedCertificate:
    try:
        cert = load_client_certificate(client_cert)
    except CryptoInputError as exc:
        return PresentedCertificate(cert=None, problem=str(exc), user_uuid=NIL_UUID, device_id=NIL_UUID)
    return PresentedCertificate(cert=cert, problem=None, user_uuid=_uuid_or_nil(user_uuid_from_certificate(cert)),
                                device_id=_uuid_or_nil(device_id_from_certificate(cert)))


def device_read(tables: TableNames, *, user_uuid: str, device_id: str) -> KeyRead[DeviceRecord | None]:
    """The device's record, for a caller's batch read (common/database/batch_read.py)."""
    return KeyRead(tables.devices, DeviceStore.key(user_uuid, device_id), DeviceStore.record_from_item)


def device_for_presented(ctx: AppContext, presented: PresentedCertificate, *, user_uuid: str,
                         record: DeviceRecord | None) -> DeviceRecord:
    """The device the presented certificate was issued to, checked on a record read beforehand
    (device_read of the certificate's claims): issued here, to `user_uuid`, for that device,
    active, not expired."""
    if presented.cert is None:
        raise InvalidField("client_cert", presented.problem or "not a certificate")
    if presented.user_uuid != user_uuid or presented.device_id == NIL_UUID:
        raise CertificateMismatch()
    _check_issued_here(ctx, presented.cert)
    if record is not None and (record.user_uuid, record.device_id) != (user_uuid, presented.device_id):
        record = None
    return recheck_device(ctx.settings, record, fingerprint=certificate_fingerprint(presented.cert), now=ctx.now())


def device_for_fingerprint(ctx: AppContext, *, user_uuid: str, fingerprint: str) -> DeviceRecord:
    """The user's device with this certificate fingerprint, if still valid."""
    fingerprint = fingerprint.lower()
    matches = [d for d in device_store(ctx).list_for_user(user_uuid) if d.fingerprint == fingerprint]
    return recheck_device(ctx.settings, matches[0] if matches else None, fingerprint=fingerprint, now=ctx.now())


def device_signed(record: DeviceRecord, *, message: bytes, signature: bytes) -> bool:
    """Did the key certified for this device sign `message`?"""
    key = certificate_from_pem(record.cert_pem).public_key()
    # A key of another type signed nothing a device may sign with (verify_device_signature refuses it too).
    return isinstance(key, DeviceKey) and verify_device_signature(key, message=message, signature=signature)


def certified_thumbprint(record: DeviceRecord) -> str | None:
    """The RFC 7638 thumbprint of the key this device's certificate certifies: the one key whose
    DPoP proofs may bind its sessions (SPEC §12); None for a key no device may have."""
    key = certificate_from_pem(record.cert_pem).public_key()
    return key_thumbprint(key) if isinstance(key, DeviceKey) else None


LOGIN_PURPOSE = "citylogin-login:"  # a device signs this prefix + the challenge to log in


class InvalidProof(Unauthorized):
    code, detail = ErrorCode.INVALID_PROOF, "The device could not prove it holds its key."


def check_signed_challenge(record: DeviceRecord, *, purpose: str, challenge: str, signature: str,
                           challenge_was_valid: bool, refusal: type[Unauthorized] = InvalidProof) -> None:
    """Did this device's key sign `purpose` + `challenge`, a challenge still unused? Else `refusal`."""
    raw = signature_bytes(signature)
    if raw is None:
        raise refusal("The signature is not base64.")
    if not challenge_was_valid:
        raise refusal("The challenge is unknown, expired or already used.")
    if not device_signed(record, message=(purpose + challenge).encode(), signature=raw):
        raise refusal()


def login_proof(ctx: AppContext, record: DeviceRecord, *, certificate_verified: bool, challenge: str | None,
                signature: str | None, challenge_usable: bool) -> GuardedWrite | None:
    """How a login shows that the device holds its key: a trusted TLS proxy verified the
    certificate (`certificate_verified`), or the device signed a challenge, whose consumption goes
    into the login's transaction (of parallel logins with one challenge, one commits). A
    certificate past its end (within the renewal grace) always needs the signature (SPEC §4), and
    so does every login while CITYLOGIN_REQUIRE_PROOF_OF_POSSESSION is on."""
    if not certificate_expired(record, now=ctx.now()) and (certificate_verified
                                                 or not ctx.settings.require_proof_of_possession):
        return None
    if not (challenge and signature):
        raise MissingFields(["challenge", "signature"],
                            "This device's certificate has expired: sign a challenge to log in and renew it.")
    check_signed_challenge(record, purpose=LOGIN_PURPOSE, challenge=challenge, signature=signature,
                           challenge_was_valid=challenge_usable)
    return GuardedWrite(item=challenge_consumption(ctx, challenge),
                        refusal=lambda: InvalidProof("The challenge is unknown, expired or already used."))


class DeviceChangedMeanwhile(StoreRefusal):
    """The device's record changed between a login's read and its transaction: re-read it."""


def login_recorded_write(ctx: AppContext, record: DeviceRecord) -> GuardedWrite:
    """The transaction entry that stamps the device's last login; refused (DeviceChangedMeanwhile)
    if the device was revoked, renewed or relabelled meanwhile."""
    return GuardedWrite(item=device_store(ctx).last_login_update(record, at=iso(ctx.now())),
                        refusal=DeviceChangedMeanwhile)


def reread_device(ctx: AppContext, record: DeviceRecord) -> DeviceRecord:
    """The device as stored now, if it is still active with the same certificate; else DeviceRevoked."""
    fresh = device_store(ctx).get(user_uuid=record.user_uuid, device_id=record.device_id)
    if fresh is None or fresh.status != DEVICE_STATUS_ACTIVE or not digests_equal(fresh.fingerprint,
                                                                                  record.fingerprint):
        raise DeviceRevoked()
    return fresh


class DeviceLimitReached(Conflict):
    code, detail = ErrorCode.DEVICE_LIMIT_REACHED, "This account already has the maximum number of devices."


def store_new_device(ctx: AppContext, issued: IssuedDevice, *, extra_writes: Sequence[GuardedWrite] = (),
                     limit: int | None = None) -> None:
    """Store a further device within the device limit (or `limit`), with `extra_writes`, in one transaction;
    DeviceLimitReached, or the refusal of an extra entry that was refused."""
    store = device_store(ctx)
    writes = _new_device_items(store, issued.record, limit=limit or ctx.settings.max_registered_devices)
    extra = list(extra_writes)
    try:
        store.transact([*writes, *(w.item for w in extra)])
    except LimitReached:
        raise DeviceLimitReached() from None
    except WriteRefused as refused:
        raise extra[refused.index - len(writes)].refusal() from None


def store_device_replacing_others(ctx: AppContext, issued: IssuedDevice, *,
                                  extra_writes: Sequence[GuardedWrite] = ()) -> list[DeviceRecord]:
    """Store a device and revoke every other active device of its user, with `extra_writes`, in
    one transaction, then end the revoked devices' sessions (reason device_unbound). Returns them.
    The refusal of an extra entry if one was refused; DeviceLimitReached if devices were added or
    removed meanwhile (try again)."""
    user_uuid, store, extra = issued.record.user_uuid, device_store(ctx), list(extra_writes)
    others = [d for d in store.list_for_user(user_uuid) if d.status == DEVICE_STATUS_ACTIVE]
    now = ctx.now()
    writes = [store.recount_slots_item(user_uuid, expected=len(others), count=1), store.put_new_item(issued.record)]
    for device in others:
        writes += [store.revoke_item(user_uuid=user_uuid, device_id=device.device_id, at=iso(now),
                                     fingerprint=device.fingerprint),
                   store.revoked_certificate_put(revoked_entry(device, reason=REASON_UNBOUND, at=now))]
    try:
        store.transact([*writes, *(w.item for w in extra)])
    except LimitReached:
        raise DeviceLimitReached("The account's devices changed meanwhile; try again.") from None
    except WriteRefused as refused:
        if refused.index < len(writes):
            raise DeviceLimitReached("The account's devices changed meanwhile; try again.") from None
        raise extra[refused.index - len(writes)].refusal() from None
    forget_cached_crl(ctx)
    for device in others:  # revoked first, so a login racing this cannot outlive it
        sessions.end_device_session(ctx, user_uuid=user_uuid, device_id=device.device_id,
                                    reason=RevokeReason.DEVICE_UNBOUND, by_device=issued.record.device_id)
        audit(AuditEvent.DEVICE_UNBOUND, user_uuid=user_uuid, device_id=device.device_id,
              by_device=issued.record.device_id)
    return others


# --- managing one's own devices -----------------------------------------------------------

class DeviceNotFound(NotFound):
    code, detail = ErrorCode.DEVICE_NOT_FOUND, "No such device."


class LastDevice(Conflict):
    code = ErrorCode.LAST_DEVICE
    detail = ("This is the account's last device: once it is removed, nobody can log in to this "
              "account any more. Confirm to remove it anyway (confirm_last: true).")


def own_device(ctx: AppContext, *, user_uuid: str, device_id: str) -> DeviceRecord:
    """The caller's device, or 404 (never 403: another user's ids are not confirmed)."""
    try:
        uuid.UUID(device_id)
    except ValueError:
        raise DeviceNotFound() from None
    record = device_store(ctx).get(user_uuid=user_uuid, device_id=device_id)
    if record is None:
        raise DeviceNotFound()
    return record


def device_owner(ctx: AppContext, *, device_id: str) -> str | None:
    """The user_uuid of the device `device_id`, from the devices' id index (no Scan)."""
    return device_store(ctx).owner_of(device_id)


def list_devices(ctx: AppContext, *, user_uuid: str, current_device_id: str) -> DeviceList:
    return device_list(ctx, user_uuid=user_uuid, records=device_records(ctx, user_uuid=user_uuid),
                       current_device_id=current_device_id)


def device_records(ctx: AppContext, *, user_uuid: str) -> list[DeviceRecord]:
    """The user's devices as stored (one Query), for a caller that reads them beside other records and
    shows them with device_list."""
    return device_store(ctx).list_for_user(user_uuid)


def device_list(ctx: AppContext, *, user_uuid: str, records: list[DeviceRecord], current_device_id: str,
                presence: Presence | None = None) -> DeviceList:
    """The user's devices `records`, primary first, each with whether it is logged in now (from
    `presence` if the caller read it already)."""
    live = {e.device_id for e in sessions.live_devices(ctx, user_uuid=user_uuid, presence=presence)}
    records = sorted(records, key=lambda d: (not d.is_primary, d.registered_at, d.device_name))
    return DeviceList(devices=[DeviceView(
        device_id=d.device_id, device_name=d.device_name, is_primary=d.is_primary, fingerprint=d.fingerprint,
        key_type=d.key_type, registered_at=d.registered_at, last_login_at=d.last_login_at,
        active=d.device_id in live and d.status == DEVICE_STATUS_ACTIVE, current=d.device_id == current_device_id,
        status=d.status, cert_expires_at=d.cert_expires_at, device_class=d.device_class) for d in records])


def rename_device(ctx: AppContext, *, user_uuid: str, device_id: str, device_name: str,
                  device_class: str | None = None) -> RenamedDevice:
    """A new name, and a new class unless None. A logged-in device's session counts under the new
    class at once, so the change is refused (DeviceClassFull) if that class is full (SPEC §5)."""
    record = own_device(ctx, user_uuid=user_uuid, device_id=device_id)
    if device_class is None:
        if not device_store(ctx).rename(user_uuid=user_uuid, device_id=device_id, device_name=device_name):
            raise DeviceNotFound()
        return RenamedDevice(device_id=device_id, device_name=device_name, device_class=record.device_class)
    item = device_store(ctx).relabel_item(user_uuid=user_uuid, device_id=device_id, device_name=device_name,
                                          device_class=device_class)
    class_limits = ctx.settings.class_limits
    sessions.relabel_device(
        ctx, user_uuid=user_uuid, device_id=device_id, device_class=device_class,
        check_class=lambda others: concurrency_policy.check_relabel(device_class=device_class,
                                                                    class_limits=class_limits, others=others),
        extra_writes=[GuardedWrite(item=item, refusal=DeviceNotFound)])
    return RenamedDevice(device_id=device_id, device_name=device_name, device_class=device_class)


def force_logout(ctx: AppContext, *, user_uuid: str, device_id: str, by_device: str) -> bool:
    """End the device's session (reason remote_logout); True if it had one."""
    record = own_device(ctx, user_uuid=user_uuid, device_id=device_id)
    ended = sessions.end_device_session(ctx, user_uuid=user_uuid, device_id=device_id,
                                        reason=RevokeReason.REMOTE_LOGOUT, by_device=by_device)
    if ended:
        user = users.get_user(ctx, user_uuid=user_uuid)
        locale = user.locale if user else None
        ctx.notifier.notify(localized_message(
            "forced_logout", texts="forced_logout_remote", user_uuid=user_uuid, email=user.email if user else None,
            locale=locale, device=record.device_name,
            facts=device_facts(locale, device_name=record.device_name, device_class=record.device_class,
                               at=ctx.now())))
    return ended


# --- the CRL's entries ---------------------------------------------------------------------

UNBIND_ATTEMPTS = 5


def revoked_entry(record: DeviceRecord, *, reason: str, at: datetime) -> RevokedCertificateRecord:
    """The CRL entry of the device's current certificate, kept until that certificate expires."""
    cert = x509.load_pem_x509_certificate(record.cert_pem.encode())
    return RevokedCertificateRecord(serial=format(cert.serial_number, "x"), revoked_at=iso(at), reason=reason,
                                    user_uuid=record.user_uuid, device_id=record.device_id,
                                    expires_epoch=int(cert.not_valid_after_utc.timestamp()))


# This process's last built CRL: (built at, PEM).
CACHED_CRL: Slot[tuple[datetime, str]] = Slot("devices.crl")


def forget_cached_crl(ctx: AppContext) -> None:
    """This process shows its own revocations at once; others within their cache time."""
    ctx.slots.take(CACHED_CRL)


class DeviceBusy(Conflict):
    code, detail = ErrorCode.CERTIFICATE_SUPERSEDED, "The device's certificate keeps changing; try again."


def _revoke(ctx: AppContext, record: DeviceRecord | None, *, keep_at_least: int) -> None:
    for _ in range(UNBIND_ATTEMPTS):
        if record is None or record.status != DEVICE_STATUS_ACTIVE:
            return  # unbinding twice is harmless
        now = ctx.now()
        try:
            device_store(ctx).revoke(record=record, at=iso(now), keep_at_least=keep_at_least,
                                     revoked_certificate=revoked_entry(record, reason=REASON_UNBOUND, at=now))
            forget_cached_crl(ctx)
            return
        except LastDeviceRefused:
            raise LastDevice() from None
        except DeviceChanged:  # revoked, or renewed since read: the new certificate is the one to list
            record = device_store(ctx).get(user_uuid=record.user_uuid, device_id=record.device_id)
    raise DeviceBusy()


def unbind(ctx: AppContext, *, user_uuid: str, device_id: str, by_device: str | None, confirm_last: bool,
           ended_by: EndedBy = NOT_SAID) -> None:
    """Revoke the device's certificate for good (into the CRL) and end its session (reason
    device_unbound; `ended_by`: an operator's unbind). The device is revoked first, so a login racing
    this cannot outlive it."""
    record = own_device(ctx, user_uuid=user_uuid, device_id=device_id)
    _revoke(ctx, record, keep_at_least=0 if confirm_last else 1)  # still make sure no session survives
    sessions.end_device_session(ctx, user_uuid=user_uuid, device_id=device_id,
                                reason=RevokeReason.DEVICE_UNBOUND, by_device=by_device, ended_by=ended_by)
    audit(AuditEvent.DEVICE_UNBOUND, user_uuid=user_uuid, device_id=device_id, by_device=by_device)


# --- account deletion ----------------------------------------------------------------------

def remove_all_devices(ctx: AppContext, *, user_uuid: str) -> list[DeviceRecord]:
    """Revoke every active device's certificate into the CRL and delete all the user's devices
    (account deletion). Returns the devices that were active."""
    active = [d for d in device_store(ctx).list_for_user(user_uuid) if d.status == DEVICE_STATUS_ACTIVE]
    now = ctx.now()
    device_store(ctx).list_certificates_and_delete_user(
        user_uuid, [revoked_entry(d, reason=REASON_UNBOUND, at=now) for d in active])
    forget_cached_crl(ctx)
    return active
