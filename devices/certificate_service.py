"""A device certificate's later life: renewal, and the CRL of revoked and superseded ones (SPEC §4).
No Flask here."""
from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime, timedelta

from cryptography import x509

from accounts import user_service as users
from common.errors import Conflict, ErrorCode, TooManyRequests, Unauthorized
from common.timefmt import iso, parse_iso
from common.crypto.certificates import certificate_fingerprint, certificate_pem, issue_device_certificate
from common.crypto.device_keys import DeviceKey, key_type_name
from common.crypto.dpop import key_thumbprint
from common.database.guarded_write import GuardedWrite
from devices.challenges import consume_challenge
from devices.crl import RevokedCertificate, build_crl, crl_pem
from devices.models import REASON_SUPERSEDED, REASON_UNBOUND, DeviceRecord, RenewedCertificate
from devices.service import (CACHED_CRL, DeviceRevoked, _device_key, check_signed_challenge, device_store,
                             forget_cached_crl, own_device, recheck_device, revoked_entry)
from devices.store import DeviceChanged, WriteRefused
from sessions import service as sessions
from sessions.models import SessionRecord
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore

RENEW_PURPOSE = "citylogin-renew:"  # the current key signs this prefix + the challenge
CRL_VALIDITY = timedelta(hours=24)  # its nextUpdate: at most 24 h ahead (SPEC §4)
CRL_CACHE_TIME = timedelta(seconds=15)  # crl-sync every 30 s: an unbind reaches nginx within a minute
RENEWAL_WINDOW_SECONDS = 86400
CRL_REASONS = {REASON_UNBOUND: x509.ReasonFlags.cessation_of_operation,
               REASON_SUPERSEDED: x509.ReasonFlags.superseded}


class InvalidRenewalProof(Unauthorized):
    code, detail = ErrorCode.INVALID_PROOF, "The device could not prove it holds its current key."


class CertificateSuperseded(Conflict):
    code, detail = ErrorCode.CERTIFICATE_SUPERSEDED, "This device's certificate was renewed meanwhile."


def _next_key(record: DeviceRecord, *, public_key: str | None, csr: str | None) -> DeviceKey:
    """The new key sent, else the device's current key certified again."""
    if public_key or csr:
        key, _ = _device_key(public_key=public_key, csr=csr)
        return key
    current = x509.load_pem_x509_certificate(record.cert_pem.encode()).public_key()
    if not isinstance(current, DeviceKey):  # _check_proof refused it already: device_signed verifies no other key
        raise InvalidRenewalProof()
    return current


def renew_certificate(ctx: AppContext, *, user_uuid: str, device_id: str, challenge: str, signature: str,
                      public_key: str | None, csr: str | None,
                      session: SessionRecord | None = None) -> RenewedCertificate:
    """A new certificate for the caller's own device (same device_id), on a new key if one is sent.
    The old certificate is superseded at once: it can no longer log in and goes into the CRL, so a
    device renews at most CITYLOGIN_RENEWALS_PER_DAY_PER_DEVICE times a day (429 too_many_attempts).
    The caller's `session`, if bound to the old key, moves to the new one in the same transaction: the
    device refreshes with a proof by its new key (SPEC §12)."""
    _take_renewal(ctx, user_uuid=user_uuid, device_id=device_id)
    challenge_was_valid = consume_challenge(ctx, challenge)  # single-use, whatever the outcome
    record = own_device(ctx, user_uuid=user_uuid, device_id=device_id)
    # revoked, or expired beyond the grace
    recheck_device(ctx.settings, record, fingerprint=record.fingerprint, now=ctx.now())
    check_signed_challenge(record, purpose=RENEW_PURPOSE, challenge=challenge, signature=signature,
                           challenge_was_valid=challenge_was_valid, refusal=InvalidRenewalProof)
    key = _next_key(record, public_key=public_key, csr=csr)
    now = ctx.now()
    cert = issue_device_certificate(ctx.ca, public_key=key, user_uuid=user_uuid, device_id=device_id,
                                    days=ctx.settings.cert_validity_days, now=now)
    renewed = replace(record, fingerprint=certificate_fingerprint(cert), cert_pem=certificate_pem(cert),
                      key_type=key_type_name(key), cert_expires_at=iso(cert.not_valid_after_utc))
    new_jkt = key_thumbprint(key)
    rebind = (sessions.rebinding(ctx, session, jkt=new_jkt)
              if session is not None and session.jkt and session.jkt != new_jkt else None)
    _store_renewal(ctx, record=record, renewed=renewed, now=now, rebind=rebind)
    audit(AuditEvent.CERTIFICATE_RENEWED, user_uuid=user_uuid, device_id=device_id,
          reason="new_key" if public_key or csr else "same_key")
    return RenewedCertificate(device_id=device_id, client_cert=base64.b64encode(renewed.cert_pem.encode()).decode(),
                              fingerprint=renewed.fingerprint, ca_cert=ctx.ca.certificate_pem(),
                              cert_expires_at=renewed.cert_expires_at)


def _take_renewal(ctx: AppContext, *, user_uuid: str, device_id: str) -> None:
    now = ctx.epoch()
    if RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
            f"renew#device:{device_id}", limit=ctx.settings.renewals_per_day_per_device,
            window_seconds=RENEWAL_WINDOW_SECONDS, now=now, user_uuid=user_uuid) is None:  # deletion finds it
        raise TooManyRequests("This device has renewed its certificate too often today; try again later.",
                              retry_after=RENEWAL_WINDOW_SECONDS - now % RENEWAL_WINDOW_SECONDS)


def _store_renewal(ctx: AppContext, *, record: DeviceRecord, renewed: DeviceRecord, now: datetime,
                   rebind: GuardedWrite | None) -> None:
    # No certificate is issued once the account's deletion has begun: its finisher would miss it.
    account_usable = users.not_deleting_write(ctx, user_uuid=record.user_uuid)
    extra = [account_usable, *([rebind] if rebind else [])]
    try:
        device_store(ctx).renew(record=record, renewed=renewed, extra_writes=[w.item for w in extra],
                                superseded=revoked_entry(record, reason=REASON_SUPERSEDED, at=now))
    except WriteRefused as refused:
        raise extra[refused.index].refusal() from None
    except DeviceChanged:  # unbound, or another renewal won: tell which
        current = device_store(ctx).get(user_uuid=record.user_uuid, device_id=record.device_id)
        if current is None or current.status != record.status:
            raise DeviceRevoked() from None
        raise CertificateSuperseded() from None
    forget_cached_crl(ctx)


def current_crl_pem(ctx: AppContext) -> str:
    """The CA-signed CRL (PEM) of every revoked or superseded device certificate not yet expired,
    rebuilt from one Query at most once a minute per process."""
    now = ctx.now()
    cached = ctx.slots.get(CACHED_CRL)
    if cached is not None and timedelta(0) <= now - cached[0] < CRL_CACHE_TIME:
        return cached[1]
    entries = device_store(ctx).revoked_certificates(now_epoch=int(now.timestamp()))
    revoked = [RevokedCertificate(serial=int(e.serial, 16), revoked_at=parse_iso(e.revoked_at),
                                  reason=CRL_REASONS[e.reason]) for e in entries]
    pem = crl_pem(build_crl(ctx.ca, revoked, now=now, valid_for=CRL_VALIDITY))
    ctx.slots.put(CACHED_CRL.given((now, pem)))
    return pem
