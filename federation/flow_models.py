"""Request and response models of what a ticket lets the browser do (SPEC §16: sign in, sign up, link, pair
a further device, recover) and of the account's linked identities."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from common.fields import Displace, Omittable
from common.text import LoginName
from devices.models import DeviceKeyFields, NewAccountFields, PairingCodeFields, RecoveryCodeFields


class DeviceProof(BaseModel):
    """The device's proof, as at POST /login/: its certificate and its signature over
    "citylogin-login:" + challenge (or a certificate a trusted TLS proxy verified)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    # Each at least one character: an empty one is as good as none, which the flow tells as missing_fields.
    client_cert: Omittable[str] = Field(default=None, min_length=1, max_length=32768,
                                        description="base64 of the certificate PEM")
    challenge: Omittable[str] = Field(default=None, min_length=1, max_length=128)
    signature: Omittable[str] = Field(default=None, min_length=1, max_length=12000, description="base64 signature")
    force: StrictBool = False
    displace: Displace


class FederatedLoginRequest(DeviceProof):
    """POST /federation/login: the provider's answer (the ticket cookie) in the password's place."""


class FederatedLinkRequest(DeviceProof):
    """POST /federation/link: the account the ticket's identity is to be linked to, proven by its password
    and one of its registered devices."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)
    client_cert_fp: Omittable[str] = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$",
                                           description="the certificate's fingerprint, as a legacy /login sends it")


class FederatedSignupRequest(NewAccountFields):
    """POST /federation/signup: a new account for the ticket's identity, with its first device; no password."""


class FederatedPairRequest(PairingCodeFields):
    """POST /federation/pair: a further device of the account the ticket's identity is linked to, with the
    pairing code one of its devices shows; the provider's answer in the password's place."""


class FederatedRecoverRequest(RecoveryCodeFields):
    """POST /federation/recover: a new device of the account the ticket's identity is linked to, with one of
    its recovery codes; the provider's answer in the password's place."""


class FederatedEnrolRequest(DeviceKeyFields):
    """POST /federation/enrol: the first device of the account the ticket's identity is linked to, for an
    account that has none (an imported one); the provider's answer in the password's and the mailed code's place."""


class LinkMailAccepted(BaseModel):
    message: str


class LinkConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field(min_length=1, max_length=256)


class LinkedIdentityView(BaseModel):
    link_id: str
    provider: str
    display_name: str
    email: str | None = None
    linked_at: str


class IdentityList(BaseModel):
    identities: list[LinkedIdentityView]
