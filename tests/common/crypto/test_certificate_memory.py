"""What a process remembers of certificates (common/crypto/certificates.py): the parse by exact text, and
per CA the certificates whose signature by it checked out. Never more: another CA, other bytes,
an expired period or a CA certificate are refused whatever was remembered."""
from __future__ import annotations

import base64
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.crypto.certificates import (CertificateAuthority, VerifiedSignatures, ca_from_pem, ca_private_key_pem,
                                        certificate_from_pem, certificate_issued_by, certificate_pem, create_ca,
                                        issue_device_certificate, load_client_certificate)
from common.crypto.device_keys import CryptoInputError


def _device_certificate(ca: CertificateAuthority, *, days: int = 30) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return issue_device_certificate(ca, public_key=key.public_key(), user_uuid=str(uuid.uuid4()),
                                    device_id=str(uuid.uuid4()), days=days)


def test_a_certificate_remembered_for_one_ca_is_refused_by_another_of_the_same_name():
    first, second = create_ca(), create_ca()  # the same subject name: only the key tells them apart
    cert = _device_certificate(first)
    assert certificate_issued_by(first, cert) and certificate_issued_by(first, cert)
    assert not certificate_issued_by(second, cert)
    # Even were a memory shared (a copy made by hand), its entries name the CA they were checked against.
    object.__setattr__(second, "verified", first.verified)
    assert not certificate_issued_by(second, cert)


def test_a_copy_of_a_ca_starts_with_a_memory_of_its_own():
    ca = create_ca()
    assert certificate_issued_by(ca, _device_certificate(ca))
    assert dataclasses.replace(ca).verified is not ca.verified
    again = ca_from_pem(ca.certificate_pem(), ca_private_key_pem(ca).decode())
    assert again.verified is not ca.verified


def test_other_bytes_are_checked_afresh_after_the_genuine_certificate_was_remembered():
    ca = create_ca()
    cert = _device_certificate(ca)
    assert certificate_issued_by(ca, cert)
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature
    assert not certificate_issued_by(ca, x509.load_der_x509_certificate(bytes(der)))


def test_the_validity_period_and_the_ca_flag_are_checked_at_every_use():
    ca = create_ca()
    cert = _device_certificate(ca, days=1)
    now = datetime.now(timezone.utc)
    assert certificate_issued_by(ca, cert, now=now)
    assert not certificate_issued_by(ca, cert, now=now + timedelta(days=2))
    assert certificate_issued_by(ca, cert, now=now + timedelta(days=2), grace=timedelta(days=3))
    assert certificate_issued_by(ca, cert, now=now)
    # The CA's self-signed certificate verifies as its own issue; it never passes as a device's.
    assert not certificate_issued_by(ca, ca.certificate) and not certificate_issued_by(ca, ca.certificate)


def test_the_memory_keeps_the_most_recently_used():
    memory = VerifiedSignatures(size=2)
    a, b, c = (b"ca", b"a"), (b"ca", b"b"), (b"ca", b"c")
    memory.add(a)
    memory.add(b)
    assert a in memory  # used: b is now the oldest
    memory.add(c)
    assert a in memory and c in memory and b not in memory


def test_a_certificate_text_is_parsed_once_and_a_bad_one_refused_every_time():
    ca = create_ca()
    pem = certificate_pem(_device_certificate(ca))
    sent = base64.b64encode(pem.encode()).decode()
    assert load_client_certificate(sent) is load_client_certificate(sent)
    assert load_client_certificate(pem) == load_client_certificate(sent)
    assert certificate_from_pem(pem) is certificate_from_pem(pem)
    for _ in range(2):
        with pytest.raises(CryptoInputError):
            load_client_certificate(base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot one\n").decode())
