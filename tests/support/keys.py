"""Device keys as a real client would make them, for tests."""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa
from cryptography.x509.oid import NameOID

KEY_MAKERS = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ml-dsa-87": mldsa.MLDSA87PrivateKey.generate,
}


def new_key(kind: str = "ecdsa-p256"):
    return KEY_MAKERS[kind]()


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def csr_pem(private_key) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
    algorithm = hashes.SHA256() if isinstance(private_key, ec.EllipticCurvePrivateKey) else None
    return builder.sign(private_key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def tampered_csr_pem(private_key) -> str:
    """A CSR whose signature no longer matches its content (one byte of the signature flipped)."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem(private_key).encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    csr = x509.load_der_x509_csr(bytes(der))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def rsa_public_pem() -> str:
    return public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
