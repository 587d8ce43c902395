"""Request and response models of the flows that span domains: /registration, /login and
/device/recover (the records they work on are each domain's own models)."""
from __future__ import annotations


from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool

from accounts.models import EmailAddress, NewPassword, PasskeyAssertion, Secret, one_secret
from common.errors import MissingFields
from common.fields import Displace, Omittable
from common.text import DisplayName, LoginName
from devices.models import NewAccountFields, PairedDeviceRequest
# Where a sign-in or a new account ends, also /federation's (below flows/): kept with the device they name.
from devices.models import EvictedDevice as EvictedDevice
from devices.models import LoginResponse as LoginResponse
from devices.models import RegistrationResponse as RegistrationResponse

# --- /registration ----------------------------------------------------------------------


class NewUserRequest(NewAccountFields):
    """POST /registration/ for a new account with its first device."""

    email: EmailAddress
    password: NewPassword


class RegistrationRequest(RootModel[NewUserRequest | PairedDeviceRequest]):
    """POST /registration/: a new user, or with `qr_code` a further device (seed-compatible)."""


class PairingCredentialsRequest(BaseModel):
    """The seed-compatible way for a registered device to ask for a pairing token."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)
    client_cert_fp: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class PairingTokenRequest(BaseModel):
    """The body of POST /registration/request_pairing_token as documented: with a Bearer token none
    is needed (an empty one, `{}` or these fields, checked if sent); without one, all three."""

    username: Omittable[LoginName] = None
    password: Omittable[str] = Field(default=None, min_length=1, max_length=1024)
    client_cert_fp: Omittable[str] = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


class PairingTokenResponse(BaseModel):
    qr_code: str = Field(description="the pairing link <public_url>/#pair=<payload>, what the QR code holds")
    qr_payload: str = Field(description="the bare payload base64url(JSON {v, uuid, token})")
    qr_png: str = Field(description="a data:image/png;base64 QR code of qr_code")
    expires_at: str
    expires_in: int


class RegistrationInfo(BaseModel):
    service: str
    description: str
    new_user_fields: dict[str, str]
    further_device_fields: dict[str, str]
    key_types: list[str]


# --- /login and /device/recover ----------------------------------------------------------


class LoginRequest(BaseModel):
    """POST /login/. Proof of possession: `signature` over "citylogin-login:" + challenge."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    username: Omittable[LoginName] = Field(default=None, description="required with a password; with a passkey "
                                                                    "the device's certificate names the account")
    password: Omittable[str] = Field(default=None, min_length=1, max_length=1024)
    passkey: Omittable[PasskeyAssertion] = Field(default=None, description="a passkey's assertion (toJSON()) to "
                                                                          "options from POST /login/passkey/options, "
                                                                          "in place of the password")
    client_cert: Omittable[str] = Field(default=None, max_length=32768, description="base64 of the certificate PEM")
    client_cert_fp: Omittable[str] = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    challenge: Omittable[str] = Field(default=None, max_length=128)
    signature: Omittable[str] = Field(default=None, max_length=12000, description="base64 signature")
    device_name: DisplayName | None = None
    force: StrictBool = False
    displace: Displace

    def secret(self) -> Secret:
        """The password or the passkey's assertion (400 missing_fields without either, and without
        the username that a password needs)."""
        if self.passkey is None and (self.username is None or self.password is None):
            raise MissingFields([f for f in ("username", "password") if getattr(self, f) is None])
        return one_secret(self.password, self.passkey, password_field="password")


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    confirm_token: str = Field(min_length=1, max_length=256)
    displace: Displace


class ChallengeResponse(BaseModel):
    challenge: str
    expires_in: int


# --- the readable copy of a data export (GET /account/export?format=readable) ----------------------

class ReadableField(BaseModel):
    label: str
    value: str
    about: str = Field(description="what the field is, in a phrase (empty for a field the copy has no words for)")


class ReadableEntry(BaseModel):
    heading: str
    fields: list[ReadableField]
    parts: list[ReadableEntry] = Field(default=[], description="what the item holds of other things (the devices "
                                                               "signed in), each as an entry")
    also_stored: list[str] = Field(default=[], description="the labels of the technical values (keys, certificates, "
                                                           "ids) that only the machine-readable document gives")


class ReadableSection(BaseModel):
    source: str = Field(description="the machine-readable document's section it shows")
    title: str
    about: str
    why: str
    kept: str
    described: bool = Field(description="false: a section the copy has no words for, its fields listed as stored")
    entries: list[ReadableEntry]


class ReadableExport(BaseModel):
    """The readable copy of a data export: each section named and explained in the person's language, why it
    is kept and for how long, times as dates in their time zone, no internal key, digest or epoch number."""

    format: str = Field(description="citylogin-readable/1")
    language: str
    title: str
    intro: str
    exported_at: str
    time_zone: str
    time_zone_note: str
    words: dict[str, str] = Field(description="the labels the page itself shows: why, kept, none, also_stored, "
                                              "contents, audit_copy, separator (of a list)")
    sections: list[ReadableSection]
