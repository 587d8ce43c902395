"""The user and account records, the username and password rules, and the request/response
models of /account."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Iterable, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StrictBool, ValidationError,
                      ValidatorFunctionWrapHandler, WrapValidator, field_validator)

from common.crypto.passwords import IMPORTED_PREFIX
from common.errors import FieldKind, InvalidField, MissingFields, field_refusal
from common.fields import Omittable
from common.text import DisplayName, LoginName
from common.timefmt import time_zone

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,32}")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships a frequency list of the 30,000 most used passwords.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS
    return frozenset(FREQUENCY_LISTS["passwords"])


def normalize_username(value: str) -> str:
    """NFKC, then 3-32 of [A-Za-z0-9_.-] (SPEC §4)."""
    name = unicodedata.normalize("NFKC", value).strip()
    if not USERNAME_PATTERN.fullmatch(name):
        raise field_refusal(FieldKind.INVALID_FORMAT, "username_format",
                            "username must be 3-32 characters of letters, digits, '_', '.' or '-'")
    return name


PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH = 8, 128


def check_password_strength(value: str) -> str:
    if not PASSWORD_MIN_LENGTH <= len(value) <= PASSWORD_MAX_LENGTH:
        kind = FieldKind.TOO_SHORT if len(value) < PASSWORD_MIN_LENGTH else FieldKind.TOO_LONG
        raise field_refusal(kind, "password_length", "password must be 8-128 characters")
    if value.lower() in _common_passwords():
        raise field_refusal(FieldKind.TOO_COMMON, "too_common", "password is too common; choose another")
    return value


def _email_rule(value: Any, handler: ValidatorFunctionWrapHandler) -> str:
    """EmailStr, its refusal of an address (pydantic's value_error) told as invalid_format."""
    try:
        return handler(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] != "value_error":
            raise
        raise field_refusal(FieldKind.INVALID_FORMAT, "email_format", "value is not a valid email address: {reason}",
                            reason=(error.get("ctx") or {}).get("reason", "")) from None


EmailAddress = Annotated[EmailStr, WrapValidator(_email_rule)]


class Role(StrEnum):
    """Operator roles, each able to do all the one below it can."""

    VIEWER = "viewer"
    SUPPORT = "support"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)


ROLE_ORDER = (Role.VIEWER, Role.SUPPORT, Role.ADMIN)
ROLE_NAMES = frozenset(r.value for r in Role)


def role_rank(role: "Role | None") -> int:
    """0 for no role, then viewer < support < admin."""
    return 0 if role is None else role.rank + 1


def highest_role(roles: Iterable[str]) -> Role | None:
    known = [Role(r) for r in roles if r in ROLE_NAMES]
    return max(known, key=role_rank, default=None)


@dataclass(frozen=True)
class UserRecord:
    user_uuid: str
    username: str
    # The address the account holds (its e-mail claim), verified or not: where its mail goes and
    # what a lookup by address finds. "" if it holds none (see unclaimed_email).
    email: str
    password_hash: str
    created_at: str
    locked: bool | None = None  # set by an operator (citylogin admin lock): no login, no session
    max_concurrent_devices: int | None = None  # an operator's per-user limit over the default (0 = unlimited)
    locale: str = "en"  # the language of the account's messages (PATCH /account)
    reset_generation: int = 0  # a reset link holds it; a reset or password change moves it on
    # Account deletion (SPEC §4): set by the one write that starts it; from then on the account
    # can do nothing. deletion_finished: everything of it is gone but this tombstone of the users
    # item (no username, e-mail or hash), kept for the sweeper's last pass.
    deleting_since: int | None = None
    deletion_finished: int | None = None
    roles: list[str] | None = None  # operator roles (SPEC §15), a string set on the item
    email_verified: bool = False
    email_link_generation: int = 0  # only a verification link made in it works (accounts/email_store.py)
    # Read only (the users item's `email` when it is marked unclaimed): an address given at
    # registration while another account held it (SPEC §4). /account shows it, unverified; it is
    # never mailed nor found by a lookup, and becomes the account's only through an address change.
    unclaimed_email: str | None = None
    # Upstream identities linked to the account (SPEC §16), {link_id: {provider, issuer, sub, email,
    # linked_at}}; None until the first link (federation/identities.py composes the writes).
    identities: dict[str, dict[str, Any]] | None = None
    # An account brought by `citylogin accounts import` (SPEC §17): from where ("keycloak", "auth0", "csv")
    # and when (ISO 8601). Its password_hash holds the source's hash (common.crypto.passwords.IMPORTED_PREFIX)
    # until its first successful password check replaces it with citylogin's Argon2id.
    imported_from: str | None = None
    imported_at: str | None = None

    @property
    def has_password(self) -> bool:
        """False for an account made with a provider's answer and no password yet (password_hash "")."""
        return bool(self.password_hash)

    @property
    def password_upgraded(self) -> bool | None:
        """For an imported account: whether its password is citylogin's own by now (a login replaced the
        imported hash, or the person set one); None for an account that was not imported."""
        if self.imported_from is None:
            return None
        return not self.password_hash.startswith(IMPORTED_PREFIX)

    @property
    def given_email(self) -> str:
        """The address on the users item, whether the account holds it or not."""
        return self.email or self.unclaimed_email or ""

    @property
    def role(self) -> "Role | None":
        """The highest of the account's operator roles, which is what it may do."""
        return highest_role(self.roles or ())

    @property
    def deleting(self) -> bool:
        return self.deleting_since is not None


@dataclass(frozen=True)
class AccountRecord:
    """What /account shows of the users item; counts instead of the code digests themselves."""

    user_uuid: str
    username: str
    email: str
    created_at: str
    recovery_codes_left: int
    recovery_generation: int
    email_verified: bool = False
    locale: str = "en"
    max_concurrent_devices: int | None = None
    email_link_generation: int = 0  # only a verification link made in it works
    roles: list[str] | None = None
    email_held: bool = True  # False: the address was given at registration while another account held it
    has_password: bool = True  # False: an account made with a provider's answer that has set none yet


class AccountView(BaseModel):
    """GET /account: the account as its holder sees it."""

    user_uuid: str
    username: str
    email: str
    email_verified: bool
    created_at: str
    locale: str
    recovery_codes_left: int
    max_concurrent_devices: int = Field(description="the per-user limit if an operator set one, else the default")
    roles: list[str] = Field(default_factory=list, description="the account's operator roles (viewer, support, admin)")
    has_password: bool = Field(default=True, description="false: an account made with a provider's answer that has "
                                                         "no password yet (it confirms actions with the provider, a "
                                                         "reauth_token, or a passkey)")


# --- passkeys (WebAuthn) and the re-authentication that takes a password or a passkey ------------

Base64Url = Annotated[str, Field(max_length=16384, pattern=r"^[A-Za-z0-9_-]*={0,2}$")]
# WebAuthn allows 1023 bytes; a DynamoDB sort key holds 1024, so ids up to 768 bytes are taken
CredentialId = Annotated[str, Field(min_length=16, max_length=1024, pattern=r"^[A-Za-z0-9_-]+$")]


class AssertionResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    clientDataJSON: Base64Url
    authenticatorData: Base64Url
    signature: Base64Url
    userHandle: Base64Url | None = None


class PublicKeyCredentialJSON(BaseModel):
    """What the browser's `PublicKeyCredential.toJSON()` gives beside its `response`."""

    model_config = ConfigDict(extra="ignore")
    id: CredentialId
    rawId: CredentialId
    type: Literal["public-key"]
    clientExtensionResults: dict[str, Any] = {}
    authenticatorAttachment: str | None = Field(default=None, max_length=32)


class PasskeyAssertion(PublicKeyCredentialJSON):
    """A WebAuthn assertion (`navigator.credentials.get()`), as toJSON() gives it."""

    response: AssertionResponse


class AttestationResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    clientDataJSON: Base64Url
    attestationObject: Base64Url
    transports: list[Annotated[str, Field(max_length=32)]] = Field(default=[], max_length=8)


class PasskeyCredential(PublicKeyCredentialJSON):
    """A new WebAuthn credential (`navigator.credentials.create()`), as toJSON() gives it."""

    response: AttestationResponse


@dataclass(frozen=True)
class ReauthToken:
    """What POST /federation/reauth gave after a fresh sign-in with one of the account's providers (SPEC §16):
    good once, for five minutes, for its own account, in the password's place (accounts.reauth_tokens)."""

    value: str = field(repr=False)


# What a signed-in person re-authenticates with: the password, a passkey's assertion, or a reauth token.
Secret = str | PasskeyAssertion | ReauthToken
REAUTH_TOKEN_FIELD = Field(default=None, min_length=1, max_length=256,
                           description="from POST /federation/reauth (a fresh sign-in with one of the account's "
                                       "providers), instead of the password; good once, for 5 minutes")


class ReauthFields(BaseModel):
    """`password`, or `passkey`: an assertion to options from POST /login/passkey/options, or `reauth_token`."""

    model_config = ConfigDict(extra="ignore")
    password: Omittable[str] = Field(default=None, min_length=1, max_length=1024)
    passkey: Omittable[PasskeyAssertion] = None
    reauth_token: Omittable[str] = REAUTH_TOKEN_FIELD

    def secret(self) -> Secret:
        return one_secret(self.password, self.passkey, password_field="password", reauth_token=self.reauth_token)


def one_secret(password: str | None, passkey: PasskeyAssertion | None, *, password_field: str,
               reauth_token: str | None = None) -> Secret:
    """The one that was sent: 400 missing_fields without any, invalid_field with more than one."""
    sent = [secret for secret in (password, passkey, reauth_token) if secret is not None]
    if len(sent) > 1:
        field_name = "reauth_token" if reauth_token is not None else "passkey"
        raise InvalidField(field_name, "Send one of the password, a passkey or a reauth token, not several.")
    if not sent:
        raise MissingFields([password_field])
    if reauth_token is not None:
        return ReauthToken(reauth_token)
    return passkey if passkey is not None else password  # type: ignore[return-value]


class PasswordRequest(ReauthFields):
    """A body that re-authenticates and asks nothing else (new recovery codes, deletion, passkeys)."""


class PasskeyRegistration(BaseModel):
    model_config = ConfigDict(extra="ignore")
    credential: PasskeyCredential
    name: DisplayName | None = None


class PasskeyRename(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: DisplayName


class PasskeyView(BaseModel):
    id: str = Field(description="the credential id, base64url")
    name: str
    created_at: str
    last_used_at: str | None
    backed_up: bool = Field(description="synced by its provider (a multi-device credential)")


class PasskeyAdded(BaseModel):
    id: str
    name: str


class PasskeyList(BaseModel):
    passkeys: list[PasskeyView]


class PasskeyOptions(BaseModel):
    """WebAuthn's PublicKeyCredentialCreationOptions or ...RequestOptions as JSON (binary members
    base64url), for PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON."""

    model_config = ConfigDict(extra="allow")
    challenge: str
    timeout: int


class PasskeyRequestOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: LoginName | None = None


@dataclass(frozen=True)
class PasskeyRecord:
    user_uuid: str
    credential_id: str
    public_key: bytes
    sign_count: int
    name: str
    created_at: str
    last_used_at: str | None
    backed_up: bool
    transports: tuple[str, ...] = ()


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="shown this once; only digests are stored")


# --- e-mail address and profile settings ------------------------------------------------------

class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field(min_length=1, max_length=256)


class EmailVerified(BaseModel):
    email_verified: bool


class EmailChangeRequest(ReauthFields):
    new_email: EmailAddress


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    locale: Literal["en", "ja"] = Field(description="the language of messages")


MAIL_DELAYED = ("true: mail is late now (a mail waited in the outbox over a minute, or this server's last try "
                "failed): the link will come, later than usual")


class EmailAccepted(BaseModel):
    message: str
    mail_delayed: bool = Field(default=False, description=MAIL_DELAYED)


# --- password change and reset (SPEC §4) ------------------------------------------------------

# The rule of every new password, the first one at registration too. The document states its
# length (the validator refuses it in its own words); "not a common password" no schema can say.
NewPassword = Annotated[str, Field(max_length=1024, json_schema_extra={
    "minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH}), AfterValidator(check_password_strength)]


class ChangePasswordRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    current_password: Omittable[str] = Field(default=None, min_length=1, max_length=1024)
    passkey: Omittable[PasskeyAssertion] = Field(default=None, description="instead of current_password")
    reauth_token: Omittable[str] = REAUTH_TOKEN_FIELD
    new_password: NewPassword
    logout_other_sessions: StrictBool = Field(default=True, description="end every other session of the account")

    def secret(self) -> Secret:
        return one_secret(self.current_password, self.passkey, password_field="current_password",
                          reauth_token=self.reauth_token)


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: EmailAddress


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field(min_length=1, max_length=256, description="from the /#reset= link")
    new_password: NewPassword


class AcceptedResponse(BaseModel):
    message: str
    # The outbox's health, never this address's mail: the answer is the same whether or not an account has it.
    mail_delayed: bool = Field(default=False, description=MAIL_DELAYED)


# --- "Wasn't you?" (POST /account/not_me) ------------------------------------------------------

class NotMeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    token: str = Field(min_length=1, max_length=256, description='from the "/#not-me=" link of a message')
    end_all_sessions: StrictBool = Field(default=False, description="also end every other session of the account")


class NotMeResult(BaseModel):
    device_id: str
    device_name: str
    device_removed: bool = Field(description="false if the device had already been removed")
    sessions_ended: int = Field(description="other sessions ended because end_all_sessions was asked")


# --- the apps the person allowed (GET /account/consents) ----------------------------------------------

class ConsentView(BaseModel):
    """An app the person allowed to use their account (an app added with `--consent`)."""

    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: str  # ISO 8601, UTC: the latest time the person allowed it


class ConsentList(BaseModel):
    """`GET /account/consents`."""

    consents: list[ConsentView]


# --- the person's data export (GET /account/export) --------------------------------------------------

Items = list[dict[str, Any]]


class DataExport(BaseModel):
    """GET /account/export, POST /admin/accounts/<user_uuid>/export: everything stored about a person, one
    list of items per table, named and laid out as docs/security/storage.md describes them, without a
    secret, hash or digest."""

    format: str = Field(description="citylogin-export/1")
    exported_at: str
    user_uuid: str
    users: Items = Field(description="the account (no password hash; recovery_codes_left, not the codes' digests)")
    claims: Items = Field(description="the unique names it holds: username#..., email#..., and identity#... (each "
                                      "linked upstream identity: provider, issuer, sub)")
    devices: Items = Field(description="its devices, their #registered counter, the CRL's entries of its certificates")
    sessions: Items = Field(description="live and ended sessions (no refresh-token digests)")
    presence: Items = Field(description="its logged-in devices, as the device limit counts them")
    login_history: Items = Field(description="sign-in attempts and operator actions, then the audit trail "
                                             "(partition audit#<user_uuid>)")
    one_time_tokens: Items = Field(description="links and requests waiting, without their digests (a provider round "
                                               "trip's state: its kind and expiry only)")
    pairing_tokens: Items = Field(description="pairing codes made, without their digests")
    rate_limits: Items = Field(description="counters of the account and of its username's failed logins")
    passkeys: Items = Field(description="passkeys (public keys) and their #count")
    oidc_grants: Items = Field(description="the apps signed in on its sessions")
    oidc_consents: Items = Field(description="the apps it allowed")
    mail_outbox: Items = Field(description="the mail written to the person: event, state, times, tries (no address "
                                           "or contents: they are sealed, and erased once sent)")
    app_names: Items = Field(description="{client_id, name} of each app the grants and consents name (name null: "
                                         "the app was removed since)")


class ExportQuery(BaseModel):
    """GET /account/export, POST /admin/accounts/<user_uuid>/export: which document, and the time zone of
    the readable one's dates."""

    model_config = ConfigDict(extra="ignore")
    format: Literal["json", "html", "readable"] | None = Field(
        default=None, description="json: the machine-readable document (the default; also for Accept other than "
        "text/html); html: the readable copy as a printable, self-contained HTML file; readable: the readable copy "
        "as JSON (what the web UI's page shows)")
    locale: Literal["en", "ja"] | None = Field(
        default=None, description="the readable copy's language (the page's, where it differs from the account's); "
        "without one, the account's language")
    time_zone: str | None = Field(default=None, max_length=64, description="an IANA time zone (Europe/Paris) for "
                                  "the readable copy's dates; UTC, and the copy says so, without one")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and time_zone(value) is None:
            raise field_refusal(FieldKind.INVALID_VALUE, "time_zone", "not an IANA time zone this server knows")
        return value
