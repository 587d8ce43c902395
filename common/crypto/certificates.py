"""The device CA and the X.509 client certificates it issues (pure: values come as arguments; a CA
remembers which certificates it was checked to have signed)."""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.timefmt import aware_utc
from common.crypto.device_keys import CryptoInputError, DeviceKey, key_type_name

CA_COMMON_NAME = "citylogin device CA"
DEVICE_URI_PREFIX = "urn:citylogin:device:"
_CA_VALIDITY = timedelta(days=3650)
_BACKDATE = timedelta(minutes=1)  # tolerate a verifier whose clock runs slightly behind ours


SIGNATURE_MEMORY = 4096  # certificates per CA whose signature a process remembers having checked


Signed = tuple[bytes, bytes]  # SHA-256 of the CA certificate's DER, of the certificate's DER


class VerifiedSignatures:
    """(CA, certificate) pairs of SHA-256 fingerprints (of the whole DER: contents and signature)
    whose signature checked out, the most recently used kept: a device presents the same certificate
    at every login, and its signature stays valid for the same bytes and the same CA."""

    def __init__(self, size: int = SIGNATURE_MEMORY) -> None:
        self._size, self._lock = size, threading.Lock()
        self._seen: OrderedDict[Signed, None] = OrderedDict()

    def __contains__(self, signed: Signed) -> bool:
        with self._lock:
            if signed not in self._seen:
                return False
            self._seen.move_to_end(signed)
            return True

    def add(self, signed: Signed) -> None:
        with self._lock:
            self._seen[signed] = None
            self._seen.move_to_end(signed)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)


@dataclass(frozen=True)
class CertificateAuthority:
    """The service CA: its self-signed certificate and ECDSA P-256 private key."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    # Each CA object keeps its own memory (never copied by dataclasses.replace), and its entries name
    # the CA too: no other CA (a rotated one, a test's) accepts a certificate checked against this one.
    verified: VerifiedSignatures = field(default_factory=VerifiedSignatures, init=False, compare=False, repr=False)
    # SHA-256 of the CA certificate's DER, worked out once: what names this CA in `verified`.
    der_sha256: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "der_sha256", self.certificate.fingerprint(hashes.SHA256()))

    def certificate_pem(self) -> str:
        """The CA certificate as PEM."""
        return certificate_pem(self.certificate)


# --- the CA ---------------------------------------------------------------------------


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _self_signed_ca(key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        # path_length=0: this CA signs device certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def ca_from_pem(cert_pem: str, key_pem: str) -> CertificateAuthority:
    """The CA of a PEM certificate and its PEM ECDSA P-256 key; ValueError if they do not match."""
    certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    private_key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise ValueError("the CA private key must be ECDSA P-256")
    if certificate.public_key() != private_key.public_key():
        raise ValueError("the CA certificate does not belong to the CA private key")
    return CertificateAuthority(certificate=certificate, private_key=private_key)


def create_ca(now: datetime | None = None) -> CertificateAuthority:
    """A new CA: a fresh ECDSA P-256 key and its self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    return CertificateAuthority(certificate=_self_signed_ca(key, aware_utc(now)), private_key=key)


def ca_private_key_pem(ca: CertificateAuthority) -> bytes:
    return _private_key_pem(ca.private_key)


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- device certificates --------------------------------------------------------------


def authority_key_identifier(ca: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    # Reuse the CA's own SKI when it has one (RFC 5280 4.2.1.1); a CA given by config may not.
    try:
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def issue_device_certificate(
    ca: CertificateAuthority,
    *,
    public_key: DeviceKey,
    user_uuid: str,
    device_id: str,
    days: int,
    now: datetime | None = None,
) -> x509.Certificate:
    """A clientAuth certificate for one device: CN user_uuid, SAN urn:citylogin:device:<id>."""
    key_type_name(public_key)  # refuses key types the login cannot verify
    if days <= 0:
        raise ValueError("days must be positive")
    now = aware_utc(now)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_uuid)])
    device_uri = x509.UniformResourceIdentifier(DEVICE_URI_PREFIX + device_id)
    san = x509.SubjectAlternativeName([device_uri])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority_key_identifier(ca), critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )


def certificate_pem(cert: x509.Certificate) -> str:
    """The certificate as PEM text."""
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER bytes."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _client_cert_pem(value: str) -> bytes:
    # The API sends base64(PEM) so the certificate fits a JSON string without escapes;
    # plain PEM is accepted too.
    if "-----BEGIN" in value:
        return value.encode()
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoInputError("client_cert", "neither PEM nor base64 of PEM") from None
    if b"-----BEGIN" not in decoded:
        raise CryptoInputError("client_cert", "the base64 value does not hold a PEM certificate")
    return decoded


# Certificates a process keeps parsed, by their exact text: a device presents (and its record
# holds) the same certificate at every login. A certificate is immutable; what is checked of it
# (validity, revocation, its device) is checked at every use.
PARSED_MEMORY = 1024


def load_client_certificate(value: str) -> x509.Certificate:
    """Parse a PEM or base64(PEM) certificate, else CryptoInputError("client_cert")."""
    if not isinstance(value, str):
        raise CryptoInputError("client_cert", "must be a string")
    return _client_certificate(value)


@lru_cache(maxsize=PARSED_MEMORY)
def _client_certificate(value: str) -> x509.Certificate:
    pem = _client_cert_pem(value)
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CryptoInputError("client_cert", "not a valid X.509 certificate") from None


@lru_cache(maxsize=PARSED_MEMORY)
def certificate_from_pem(cert_pem: str) -> x509.Certificate:
    """A PEM certificate as stored (a device record's), parsed; ValueError if it is not one."""
    return x509.load_pem_x509_certificate(cert_pem.encode())


def _is_end_entity(cert: x509.Certificate) -> bool:
    try:
        return not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return True
    except ValueError:  # unparsable extensions: refuse rather than guess
        return False


def certificate_issued_by(
    ca: CertificateAuthority,
    cert: x509.Certificate,
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> bool:
    """True if the CA signed ``cert``, it is within its validity (extended by ``grace`` past its
    end, for renewal), and it is not a CA itself."""
    if not _signed_by(ca, cert):
        return False
    # The self-signed CA certificate also "verifies"; it must never pass as a device.
    if not _is_end_entity(cert):
        return False
    now = aware_utc(now)
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc + grace


def _signed_by(ca: CertificateAuthority, cert: x509.Certificate) -> bool:
    """Did the CA sign exactly these bytes? Checked once per certificate and CA (the signature check
    is most of a certificate's cost); only a success is remembered."""
    signed = (ca.der_sha256, cert.fingerprint(hashes.SHA256()))
    if signed in ca.verified:
        return True
    try:
        cert.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    ca.verified.add(signed)
    return True


def device_id_from_certificate(cert: x509.Certificate) -> str | None:
    """The <id> of the SAN URI urn:citylogin:device:<id>, or None if there is none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(DEVICE_URI_PREFIX) and len(uri) > len(DEVICE_URI_PREFIX):
            return uri[len(DEVICE_URI_PREFIX):]
    return None


def user_uuid_from_certificate(cert: x509.Certificate) -> str | None:
    """The subject's common name, which a device certificate sets to its user's uuid."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
