"""The device CA's certificate revocation list (RFC 5280 §5). Pure: entries and times come as
arguments."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from common.crypto.certificates import CertificateAuthority, authority_key_identifier

_BACKDATE = timedelta(minutes=1)  # tolerate a verifier whose clock runs slightly behind ours


@dataclass(frozen=True)
class RevokedCertificate:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def build_crl(ca: CertificateAuthority, revoked: list[RevokedCertificate], *, now: datetime,
              valid_for: timedelta) -> x509.CertificateRevocationList:
    """A CRL signed by the CA, valid from `now` for `valid_for` (its nextUpdate)."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.certificate.subject)
               .last_update(now - _BACKDATE)
               .next_update(now + valid_for)
               # RFC 5280 5.2.3: increasing numbers; the build time is that on every process.
               .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
               .add_extension(authority_key_identifier(ca), critical=False))
    for entry in sorted(revoked, key=lambda e: e.serial):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(entry.reason), critical=False).build())
    return builder.sign(ca.private_key, hashes.SHA256())


def crl_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode()
