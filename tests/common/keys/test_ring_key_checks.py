"""An RSA signing key is checked where it enters: read from a key file (imported into a new ring) it is
checked, and a broken one refused; read back from the ring, whose entries open only under the
key-encryption key, it is the PEM that was checked, and is not checked again (about 25 ms of CPU a key)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common.keys.jwt_keys import ParsedSigningKeys, _read_key_file, signing_key_from_pem

CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def broken_rsa_pem() -> bytes:
    """A PKCS#8 RSA key whose private exponent is not the public one's inverse."""
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    broken = rsa.RSAPrivateNumbers(p=numbers.p, q=numbers.q, d=numbers.d + 2, dmp1=numbers.dmp1,
                                   dmq1=numbers.dmq1, iqmp=numbers.iqmp,
                                   public_numbers=numbers.public_numbers)
    key = broken.private_key(unsafe_skip_rsa_key_validation=True)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def test_a_broken_rsa_key_file_is_refused(tmp_path):
    path = tmp_path / "jwt.pem"
    path.write_bytes(broken_rsa_pem())
    with pytest.raises(ValueError):
        _read_key_file(path, kid="k1", created_at=CREATED)
    with pytest.raises(ValueError):
        signing_key_from_pem(path.read_bytes(), kid="k1", created_at=CREATED)


def test_a_rings_key_is_read_without_the_check():
    pem = broken_rsa_pem()  # stands for a checked key: only whether the check runs is told apart
    key = ParsedSigningKeys().keys([(pem, "k1", CREATED)])[0]
    assert key.kid == "k1" and isinstance(key.private_key, rsa.RSAPrivateKey)
    assert signing_key_from_pem(pem, kid="k1", created_at=CREATED, from_ring=True).kid == "k1"
