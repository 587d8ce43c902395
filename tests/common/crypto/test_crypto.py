"""Tests for common.crypto.tokens, common.crypto.device_keys, common.crypto.passwords, common.crypto.certificates
and common.keys.jwt_keys
(fast, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import string
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA87PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.crypto import tokens
from common.crypto.certificates import (ca_from_pem, certificate_fingerprint, certificate_issued_by, certificate_pem,
                                        create_ca, device_id_from_certificate, issue_device_certificate,
                                        load_client_certificate)
from common.crypto.device_keys import (CryptoInputError, generate_device_key, key_type_name, load_device_public_key,
                                       public_key_from_csr, public_key_pem, verify_device_signature)
from common.crypto.passwords import PasswordHasher
from common.crypto.tokens import digests_equal, new_token, token_digest
from common.keys.encryption import write_file_once
from common.keys.jwt_keys import JwtKeyRing, TokenError, new_signing_key
from tests.support.cpu_time import cpu_median

FAST_ARGON2 = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}
MESSAGE = b"citylogin-login:challenge-123"
ISSUER = "https://citylogin.test"
GARBAGE_CERT_PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
AUDIENCE = "citylogin"

KEY_GENERATORS = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ed25519": Ed25519PrivateKey.generate,
    "ml-dsa-87": MLDSA87PrivateKey.generate,
}


def _ecdsa_der(key, message):
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _ecdsa_raw(key, message):
    r, s = decode_dss_signature(_ecdsa_der(key, message))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # what WebCrypto returns


SIGNERS = {
    "ecdsa-der": ("ecdsa-p256", _ecdsa_der),
    "ecdsa-raw": ("ecdsa-p256", _ecdsa_raw),
    "ed25519": ("ed25519", lambda key, message: key.sign(message)),
    "ml-dsa-87": ("ml-dsa-87", lambda key, message: key.sign(message)),
}


def _csr_pem(private_key) -> str:
    # Ed25519, Ed448 and ML-DSA sign the message itself; the others need a hash.
    hashed = (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)
    algorithm = hashes.SHA256() if isinstance(private_key, hashed) else None
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")])
    )
    return builder.sign(private_key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_parts(header: dict, payload: dict) -> str:
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"


@pytest.fixture
def hasher():
    return PasswordHasher(**FAST_ARGON2)


@pytest.fixture(scope="module")
def ca():
    return create_ca()


@pytest.fixture
def jwt_keys():
    return [new_signing_key(datetime.now(timezone.utc) - timedelta(minutes=1))]


@pytest.fixture
def ring(jwt_keys):
    return JwtKeyRing(jwt_keys, issuer=ISSUER, audience=AUDIENCE)


# --- passwords ------------------------------------------------------------------------


def test_password_hash_verifies_only_the_right_password(hasher):
    stored = hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, "correct horse battery") is True
    assert hasher.verify(stored, "wrong horse battery") is False


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$argon2id$garbage", "$argon2id$v=19$m=ü"])
def test_password_verify_with_invalid_hash_is_false(hasher, stored):
    assert hasher.verify(stored, "whatever") is False


def test_needs_rehash_when_parameters_change(hasher):
    stored = hasher.hash("correct horse battery")
    assert hasher.needs_rehash(stored) is False
    assert PasswordHasher(**{**FAST_ARGON2, "time_cost": 2}).needs_rehash(stored) is True
    assert PasswordHasher(**{**FAST_ARGON2, "memory_cost": 16384}).needs_rehash(stored) is True
    assert hasher.needs_rehash("not-a-hash") is True


# --- tokens and digests ---------------------------------------------------------------


def test_new_token_is_unpadded_urlsafe_and_unique():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 43  # 32 bytes, unpadded base64
        assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert len(new_token(16)) == 22


def test_token_digest_separates_purposes():
    token = new_token()
    pairing = token_digest(token, purpose="pairing")
    refresh = token_digest(token, purpose="refresh")
    assert pairing != refresh
    assert pairing == hashlib.sha256(f"pairing:{token}".encode()).hexdigest()
    assert len(pairing) == 64 and pairing == pairing.lower()


@pytest.mark.parametrize("purpose", ["", "pairing:extra"])
def test_token_digest_refuses_ambiguous_purpose(purpose):
    with pytest.raises(ValueError):
        token_digest("token", purpose=purpose)


def test_digests_equal_uses_constant_time_compare(monkeypatch):
    calls = []
    real_compare = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    digest = token_digest("t", purpose="refresh")
    assert digests_equal(digest, token_digest("t", purpose="refresh")) is True
    assert digests_equal(digest, token_digest("u", purpose="refresh")) is False
    assert digests_equal(digest, "ü") is False  # non-ASCII input does not raise
    assert len(calls) == 3


# --- device keys ----------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(KEY_GENERATORS))
def test_load_device_public_key_round_trip(type_name):
    public_key = KEY_GENERATORS[type_name]().public_key()
    pem = public_key_pem(public_key)
    loaded = load_device_public_key(pem)
    assert key_type_name(loaded) == type_name
    assert public_key_pem(loaded) == pem


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        lambda: ec.generate_private_key(ec.SECP384R1()),
        Ed448PrivateKey.generate,
    ],
    ids=["rsa", "p-384", "ed448"],
)
def test_unsupported_key_types_are_refused(make_key):
    private_key = make_key()
    with pytest.raises(CryptoInputError) as raised:
        load_device_public_key(public_key_pem(private_key.public_key()))
    assert raised.value.field == "public_key"
    with pytest.raises(CryptoInputError) as raised:
        public_key_from_csr(_csr_pem(private_key))
    assert raised.value.field == "csr"


@pytest.mark.parametrize(
    "pem",
    ["", "not a pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"],
)
def test_garbage_public_key_pem_is_refused(pem):
    with pytest.raises(CryptoInputError) as raised:
        load_device_public_key(pem)
    assert raised.value.field == "public_key"
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("type_name", sorted(KEY_GENERATORS))
def test_public_key_from_valid_csr(type_name):
    private_key = KEY_GENERATORS[type_name]()
    key = public_key_from_csr(_csr_pem(private_key))
    assert public_key_pem(key) == public_key_pem(private_key.public_key())


def test_csr_with_tampered_signature_is_refused():
    pem = _csr_pem(ec.generate_private_key(ec.SECP256R1()))
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the DER ends inside the signature's s value
    body = base64.encodebytes(bytes(der)).decode()
    tampered = f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    x509.load_pem_x509_csr(tampered.encode())  # still parses: only the signature is wrong
    with pytest.raises(CryptoInputError) as raised:
        public_key_from_csr(tampered)
    assert raised.value.field == "csr"


@pytest.mark.parametrize(
    "pem",
    ["", "garbage", GARBAGE_CERT_PEM.replace("CERTIFICATE", "CERTIFICATE REQUEST")],
)
def test_garbage_csr_is_refused(pem):
    with pytest.raises(CryptoInputError) as raised:
        public_key_from_csr(pem)
    assert raised.value.field == "csr"


def test_generate_device_key_returns_matching_p256_pair():
    private_pem, public_key = generate_device_key()
    private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert "BEGIN PRIVATE KEY" in private_pem  # PKCS#8, unencrypted
    assert key_type_name(public_key) == "ecdsa-p256"
    signature = _ecdsa_der(private_key, MESSAGE)
    assert verify_device_signature(public_key, message=MESSAGE, signature=signature)


def test_key_type_name_refuses_other_keys():
    with pytest.raises(TypeError):
        key_type_name(ec.generate_private_key(ec.SECP384R1()).public_key())


@pytest.mark.parametrize("value", [None, 42, {"pem": "x"}])
def test_non_string_pem_is_refused(value):
    with pytest.raises(CryptoInputError) as raised:
        load_device_public_key(value)
    assert raised.value.field == "public_key"
    with pytest.raises(CryptoInputError) as raised:
        public_key_from_csr(value)
    assert raised.value.field == "csr"


# --- signatures -----------------------------------------------------------------------


@pytest.mark.parametrize("signer", sorted(SIGNERS))
def test_valid_signature_verifies(signer):
    type_name, sign = SIGNERS[signer]
    private_key = KEY_GENERATORS[type_name]()
    signature = sign(private_key, MESSAGE)
    assert verify_device_signature(private_key.public_key(), message=MESSAGE, signature=signature)


@pytest.mark.parametrize("signer", sorted(SIGNERS))
def test_signature_over_another_message_is_false(signer):
    type_name, sign = SIGNERS[signer]
    private_key = KEY_GENERATORS[type_name]()
    signature = sign(private_key, b"citylogin-login:another-challenge")
    public_key = private_key.public_key()
    assert verify_device_signature(public_key, message=MESSAGE, signature=signature) is False


@pytest.mark.parametrize("type_name", sorted(KEY_GENERATORS))
@pytest.mark.parametrize(
    "signature", [b"", b"garbage", b"\x00" * 64, b"\xff" * 64, b"\x30" * 4627]
)
def test_garbage_signature_is_false(type_name, signature):
    public_key = KEY_GENERATORS[type_name]().public_key()
    assert verify_device_signature(public_key, message=MESSAGE, signature=signature) is False


def test_signature_from_another_key_is_false():
    signature = _ecdsa_raw(ec.generate_private_key(ec.SECP256R1()), MESSAGE)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert verify_device_signature(other, message=MESSAGE, signature=signature) is False


def test_unsupported_key_never_verifies():
    private_key = ec.generate_private_key(ec.SECP384R1())
    signature = private_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    public_key = private_key.public_key()
    assert verify_device_signature(public_key, message=MESSAGE, signature=signature) is False


# --- certificates ---------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(KEY_GENERATORS))
def test_issued_certificate_chains_to_ca(ca, type_name):
    public_key = load_device_public_key(public_key_pem(KEY_GENERATORS[type_name]().public_key()))
    user_uuid = str(uuid.uuid4())
    cert = issue_device_certificate(
        ca, public_key=public_key, user_uuid=user_uuid, device_id="dev-1", days=365
    )

    assert certificate_issued_by(ca, cert) is True
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user_uuid
    assert cert.issuer == ca.certificate.subject
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["urn:citylogin:device:dev-1"]
    assert device_id_from_certificate(cert) == "dev-1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert public_key_pem(cert.public_key()) == public_key_pem(public_key)

    fingerprint = certificate_fingerprint(cert)
    assert len(fingerprint) == 64 and set(fingerprint) <= set("0123456789abcdef")
    assert fingerprint == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_certificate_validity_window(ca):
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    _, public_key = generate_device_key()
    cert = issue_device_certificate(
        ca, public_key=public_key, user_uuid="u", device_id="d", days=30, now=now
    )
    assert cert.not_valid_before_utc == now - timedelta(minutes=1)
    assert cert.not_valid_after_utc == now + timedelta(days=30)
    assert certificate_issued_by(ca, cert, now=now) is True
    assert certificate_issued_by(ca, cert, now=now + timedelta(days=31)) is False
    assert certificate_issued_by(ca, cert, now=now - timedelta(hours=1)) is False


def test_certificate_of_another_ca_or_the_ca_itself_is_not_issued_by(ca):
    other_ca = create_ca()
    _, public_key = generate_device_key()
    foreign = issue_device_certificate(
        other_ca, public_key=public_key, user_uuid="u", device_id="d", days=1
    )
    assert certificate_issued_by(ca, foreign) is False
    assert certificate_issued_by(ca, ca.certificate) is False
    assert device_id_from_certificate(ca.certificate) is None


def test_naive_datetime_is_refused(ca):
    _, public_key = generate_device_key()
    with pytest.raises(ValueError):
        issue_device_certificate(
            ca, public_key=public_key, user_uuid="u", device_id="d", days=1,
            now=datetime(2030, 1, 1),
        )


def test_load_client_certificate_accepts_pem_and_base64_pem(ca):
    _, public_key = generate_device_key()
    cert = issue_device_certificate(
        ca, public_key=public_key, user_uuid="u", device_id="d", days=1
    )
    pem = certificate_pem(cert)
    assert load_client_certificate(pem) == cert
    assert load_client_certificate(base64.b64encode(pem.encode()).decode()) == cert


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 !!",
        base64.b64encode(b"just some bytes").decode(),
        base64.b64encode(GARBAGE_CERT_PEM.encode()).decode(),
        GARBAGE_CERT_PEM,
        None,
    ],
)
def test_load_client_certificate_refuses_garbage(value):
    with pytest.raises(CryptoInputError) as raised:
        load_client_certificate(value)
    assert raised.value.field == "client_cert"


# --- the CA ---------------------------------------------------------------------------


def test_ca_certificate_profile(ca):
    cert = ca.certificate
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "citylogin device CA"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=3650)
    cert.verify_directly_issued_by(cert)
    assert ca.certificate_pem() == certificate_pem(cert)


def test_ca_from_given_pems(ca):
    key_pem = ca.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    loaded = ca_from_pem(ca.certificate_pem(), key_pem)
    assert loaded.certificate == ca.certificate

    other_key_pem, _ = generate_device_key()
    with pytest.raises(ValueError):
        ca_from_pem(ca.certificate_pem(), other_key_pem)


def test_write_file_once_never_overwrites(tmp_path):
    path = tmp_path / "secret"
    assert write_file_once(path, b"first", mode=0o600) is True
    assert write_file_once(path, b"second", mode=0o600) is False
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- JWT ------------------------------------------------------------------------------


def test_jwt_round_trip(ring, jwt_keys):
    keys = jwt_keys
    token = ring.sign({"sub": "user-1", "sid": "session-1"}, ttl_seconds=900)
    claims = ring.decode(token)
    assert claims["sub"] == "user-1" and claims["sid"] == "session-1"
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": keys[-1].kid, "typ": "at+jwt"}


def test_jwt_alg_none_is_rejected(ring, jwt_keys):
    kid = jwt_keys[0].kid
    now = int(datetime.now(timezone.utc).timestamp())
    payload = {"sub": "u", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    token = _unsigned_parts({"alg": "none", "typ": "at+jwt", "kid": kid}, payload) + "."
    with pytest.raises(TokenError) as raised:
        ring.decode(token)
    assert raised.value.code == "invalid_token"


@pytest.mark.parametrize("encoding", ["pem", "raw"])
def test_jwt_hs256_signed_with_public_key_is_rejected(ring, jwt_keys, encoding):
    key = jwt_keys[0]
    public_key = key.private_key.public_key()
    if encoding == "pem":
        secret = public_key_pem(public_key).encode()
    else:
        secret = public_key.public_bytes_raw()
    now = int(datetime.now(timezone.utc).timestamp())
    payload = {"sub": "u", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    signing_input = _unsigned_parts({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, payload)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(TokenError) as raised:
        ring.decode(f"{signing_input}.{_b64url(mac)}")
    assert raised.value.code == "invalid_token"


@pytest.mark.parametrize(
    "override", [{"audience": "someone-else"}, {"issuer": "https://evil.test"}]
)
def test_jwt_wrong_audience_or_issuer_is_rejected(ring, jwt_keys, override):
    settings = {"issuer": ISSUER, "audience": AUDIENCE, **override}
    other = JwtKeyRing(jwt_keys, **settings)
    token = other.sign({"sub": "u"}, ttl_seconds=60)
    with pytest.raises(TokenError) as raised:
        ring.decode(token)
    assert raised.value.code == "invalid_token"


def test_jwt_unknown_kid_is_rejected(ring, jwt_keys):
    stranger_keys = [new_signing_key(datetime.now(timezone.utc))]
    stranger = JwtKeyRing(stranger_keys, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(TokenError) as raised:
        ring.decode(stranger.sign({"sub": "u"}, ttl_seconds=60))
    assert raised.value.code == "invalid_token"

    # Our own key, but a kid the ring does not know: still refused.
    key = jwt_keys[0]
    now = int(datetime.now(timezone.utc).timestamp())
    payload = {"sub": "u", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    headers = {"kid": "nope", "typ": "at+jwt"}
    token = jwt.encode(payload, key.private_key, algorithm="EdDSA", headers=headers)
    with pytest.raises(TokenError) as raised:
        ring.decode(token)
    assert raised.value.code == "invalid_token"


def test_jwt_expired(ring):
    issued = datetime(2030, 1, 1, tzinfo=timezone.utc)
    token = ring.sign({"sub": "u"}, ttl_seconds=60, now=issued)
    assert ring.decode(token, now=issued + timedelta(seconds=59))["sub"] == "u"
    for now in (issued + timedelta(seconds=60), issued + timedelta(days=1)):
        with pytest.raises(TokenError) as raised:
            ring.decode(token, now=now)
        assert raised.value.code == "token_expired"

    old = ring.sign({"sub": "u"}, ttl_seconds=60, now=datetime(2020, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(TokenError) as raised:
        ring.decode(old)
    assert raised.value.code == "token_expired"


def test_jwt_not_yet_valid_is_rejected(ring):
    issued = datetime(2030, 1, 1, tzinfo=timezone.utc)
    token = ring.sign({"sub": "u"}, ttl_seconds=60, now=issued)
    with pytest.raises(TokenError) as raised:
        ring.decode(token, now=issued - timedelta(minutes=5))
    assert raised.value.code == "invalid_token"


def test_jwt_tampered_malformed_or_incomplete_is_rejected(ring, jwt_keys):
    token = ring.sign({"sub": "u"}, ttl_seconds=60)
    header, payload, signature = token.split(".")
    forged_payload = _b64url(json.dumps({**ring.decode(token), "sub": "admin"}).encode())
    key = jwt_keys[0]
    now = int(datetime.now(timezone.utc).timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    no_sub = jwt.encode(
        claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"}
    )
    wrong_typ = jwt.encode(
        {**claims, "sub": "u"}, key.private_key, algorithm="EdDSA", headers={"kid": key.kid}
    )
    forged = f"{header}.{forged_payload}.{signature}"
    for bad in (forged, token[:-4] + "AAAA", "abc", "", "a.b.c", no_sub, wrong_typ):
        with pytest.raises(TokenError) as raised:
            ring.decode(bad)
        assert raised.value.code == "invalid_token"


def test_jwt_rotation(ring, jwt_keys):
    old_token = ring.sign({"sub": "u"}, ttl_seconds=60)
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    new_key = new_signing_key(datetime.now(timezone.utc))
    keys = [*jwt_keys, new_key]
    assert [key.kid for key in keys] == [old_kid, new_key.kid]
    rotated = JwtKeyRing(keys, issuer=ISSUER, audience=AUDIENCE)

    assert rotated.decode(old_token)["sub"] == "u"
    new_token = rotated.sign({"sub": "u"}, ttl_seconds=60)
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert rotated.decode(new_token)["sub"] == "u"
    with pytest.raises(TokenError):
        ring.decode(new_token)  # a ring loaded before the rotation does not know the new key


def test_jwks_lists_every_public_key(jwt_keys):
    keys = [*jwt_keys, new_signing_key(datetime.now(timezone.utc))]
    jwks = JwtKeyRing(keys, issuer=ISSUER, audience=AUDIENCE).jwks()
    assert [entry["kid"] for entry in jwks["keys"]] == [key.kid for key in keys]
    for entry, key in zip(jwks["keys"], keys, strict=True):
        assert entry.keys() == {"kty", "crv", "x", "kid", "alg", "use"}
        fixed = (entry["kty"], entry["crv"], entry["alg"], entry["use"])
        assert fixed == ("OKP", "Ed25519", "EdDSA", "sig")
        raw = base64.urlsafe_b64decode(entry["x"] + "=" * (-len(entry["x"]) % 4))
        assert raw == key.private_key.public_key().public_bytes_raw()
        assert "d" not in entry


def test_key_ring_needs_keys():
    with pytest.raises(ValueError):
        JwtKeyRing([], issuer=ISSUER, audience=AUDIENCE)



# Hashes of earlier settings (issue 16 item 10): p=1 so that the CPU time is this process's alone.
LEGACY_ARGON2 = {"time_cost": 3, "memory_cost": 65536, "parallelism": 1}




def test_every_check_costs_the_same_whichever_parameters_made_the_hash():
    legacy = (LEGACY_ARGON2["time_cost"], LEGACY_ARGON2["memory_cost"], LEGACY_ARGON2["parallelism"])
    hasher = PasswordHasher(**FAST_ARGON2, legacy=[legacy])
    current, dormant = hasher.hash("correct horse"), PasswordHasher(**LEGACY_ARGON2).hash("correct horse")
    costs = {"unknown": cpu_median(lambda: hasher.check(None, "wrong")),
             "current": cpu_median(lambda: hasher.check(current, "wrong")),
             "dormant": cpu_median(lambda: hasher.check(dormant, "wrong"))}
    assert max(costs.values()) < 1.5 * min(costs.values()), costs
    assert hasher.check(dormant, "correct horse") and hasher.check(current, "correct horse")
    assert not hasher.check(None, "correct horse")


def test_an_undeclared_legacy_set_is_what_leaked():
    hasher = PasswordHasher(**FAST_ARGON2)  # the old parameters not declared: a dormant hash costs more
    dormant = PasswordHasher(**LEGACY_ARGON2).hash("correct horse")
    assert cpu_median(lambda: hasher.check(dormant, "wrong")) > 3 * cpu_median(lambda: hasher.check(None, "wrong"))


def test_an_undeclared_legacy_set_is_logged(caplog):
    hasher = PasswordHasher(**FAST_ARGON2)
    assert not hasher.check(PasswordHasher(**LEGACY_ARGON2).hash("correct horse"), "wrong")
    assert "t=3,m=65536,p=1" in caplog.text and "did not know" in caplog.text  # once learnt: test_password_parameters
