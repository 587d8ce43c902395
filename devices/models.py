"""Device records and the request/response models of /device."""
from __future__ import annotations

from dataclasses import dataclass

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from accounts.models import normalize_username
from common.text import DisplayName, LoginName

DEVICE_STATUS_ACTIVE = "active"
DEVICE_STATUS_REVOKED = "revoked"
# SPEC §5: the kind of a device, which CITYLOGIN_DEVICE_CLASS_LIMITS may cap per class.
DeviceClass = Literal["mobile", "tablet", "desktop", "other"]
DEFAULT_DEVICE_CLASS: DeviceClass = "other"


@dataclass(frozen=True)
class DeviceRecord:
    user_uuid: str
    device_id: str
    device_name: str
    is_primary: bool
    fingerprint: str
    cert_pem: str
    key_type: str
    cert_expires_at: str
    registered_at: str
    status: str = DEVICE_STATUS_ACTIVE
    last_login_at: str | None = None
    revoked_at: str | None = None
    device_class: str = DEFAULT_DEVICE_CLASS


@dataclass(frozen=True)
class RevokedCertificateRecord:
    """A device certificate in the CRL until it expires: revoked by an unbind, or superseded by a renewal."""

    serial: str  # hex
    revoked_at: str
    reason: str  # REASON_UNBOUND or REASON_SUPERSEDED
    user_uuid: str
    device_id: str
    expires_epoch: int


REASON_UNBOUND = "unbound"
REASON_SUPERSEDED = "superseded"


@dataclass(frozen=True)
class IssuedDevice:
    """A device about to be stored, with what its owner must receive once."""

    record: DeviceRecord
    private_key_pem: str | None


class DeviceKeyFields(BaseModel):
    """How a new device supplies its key: a public key, a CSR, or neither (server-generated)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    device_name: DisplayName | None = None
    device_class: DeviceClass = Field(default=DEFAULT_DEVICE_CLASS,
                                      description="mobile, tablet, desktop or other (limits may differ per class)")
    public_key: str | None = Field(default=None, max_length=16384,
                                   description="PEM SubjectPublicKeyInfo: ECDSA P-256, Ed25519 or ML-DSA-87")
    csr: str | None = Field(default=None, max_length=16384, description="PEM PKCS#10 request")


class NewAccountFields(DeviceKeyFields):
    """A new account with its first device: what POST /registration/ and a sign-up with a provider's answer
    (POST /federation/signup) both take."""

    username: str = Field(max_length=256)
    locale: str | None = Field(default=None, max_length=35,
                               description="the account's language, en or ja; any other or none: from Accept-Language")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return normalize_username(value)


class DeviceCertificateResponse(BaseModel):
    """The 201 body of registration and device registration."""

    uuid: str
    device_id: str
    device_name: str
    client_cert: str = Field(description="base64 of the certificate PEM")
    fingerprint: str
    ca_cert: str
    cert_expires_at: str = Field(description="when the certificate ends (ISO 8601, UTC); renew before it")
    private_key: str | None = Field(default=None, description="only when the server generated the key")
    message: str


class RegistrationResponse(DeviceCertificateResponse):
    """The 201 of a new account: its first device, and its recovery codes, shown this once."""

    recovery_codes: list[str] | None = Field(default=None, description="ten single-use codes for POST /device/recover")


class EvictedDevice(BaseModel):
    device_id: str
    device_name: str


class LoginResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    session_id: str
    device_id: str
    user_uuid: str
    evicted: list[EvictedDevice]
    cert_expires_at: str
    renew_certificate: bool = Field(description="the certificate expires within CITYLOGIN_CERT_RENEW_BEFORE_DAYS "
                                                "(or has expired, within the grace): renew it with POST /device/renew")


class PairingCodeFields(DeviceKeyFields):
    """A further device and the pairing code it scanned; the account is proven beside it (its password,
    or a provider's answer: POST /federation/pair)."""

    qr_code: str = Field(min_length=1, max_length=4096, description="the pairing link or its payload")


class PairedDeviceRequest(PairingCodeFields):
    """POST /device/register (and POST /registration/ with `qr_code`): a further device."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)


class RecoveryCodeFields(DeviceKeyFields):
    """A new device for an account whose devices are all lost, and one of its recovery codes; the account is
    proven beside them (its password, or a provider's answer: POST /federation/recover)."""

    recovery_code: str = Field(min_length=1, max_length=64, description="one of the account's recovery codes")
    unbind_other_devices: StrictBool = Field(default=False, description="revoke every other device and end its session")


class RecoverRequest(RecoveryCodeFields):
    """POST /device/recover: a new device for an account whose devices are all lost."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)


class EnrolCodeRequest(BaseModel):
    """POST /device/enrol/code: a code mailed for the first device of the account named, if it has none."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    username: LoginName


class EnrolCodeAccepted(BaseModel):
    """The 202 body of POST /device/enrol/code: the same whatever the account."""

    message: str


class EnrolRequest(DeviceKeyFields):
    """POST /device/enrol: the first device of an account that has none (an imported one), with its
    password and the code mailed to its address."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)
    email_code: str = Field(min_length=1, max_length=32,
                            description="the 6-digit code mailed by POST /device/enrol/code")


class DeviceView(BaseModel):
    device_id: str
    device_name: str
    is_primary: bool
    fingerprint: str
    key_type: str
    registered_at: str
    last_login_at: str | None
    active: bool
    current: bool
    status: str
    cert_expires_at: str
    device_class: str


class DeviceList(BaseModel):
    devices: list[DeviceView]


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    device_name: DisplayName
    device_class: DeviceClass | None = Field(default=None, description="unchanged if left out")


class RenamedDevice(BaseModel):
    device_id: str
    device_name: str
    device_class: str


class DeviceIdRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    device_id: str = Field(min_length=1, max_length=64)


class UnbindRequest(DeviceIdRequest):
    confirm_last: StrictBool = Field(default=False, description="required to unbind the account's last device")


class RenewRequest(BaseModel):
    """POST /device/renew: `signature` by the device's current key over "citylogin-renew:" + challenge;
    with `public_key` or `csr` the device moves to that new key."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    challenge: str = Field(min_length=1, max_length=128, description="from POST /login/challenge")
    signature: str = Field(min_length=1, max_length=12000, description="base64 signature")
    public_key: str | None = Field(default=None, max_length=16384,
                                   description="PEM SubjectPublicKeyInfo of the new key")
    csr: str | None = Field(default=None, max_length=16384, description="PEM PKCS#10 request signed by the new key")


class RenewedCertificate(BaseModel):
    """The 201 body of POST /device/renew."""

    device_id: str
    client_cert: str = Field(description="base64 of the certificate PEM")
    fingerprint: str
    ca_cert: str
    cert_expires_at: str


class ForcedLogout(BaseModel):
    device_id: str
    logged_out: bool = Field(description="false when the device had no live session")


class UnboundDevice(BaseModel):
    device_id: str
    status: str = DEVICE_STATUS_REVOKED


