"""Request and response models of the admin API (SPEC §15): finding accounts, an account's page and
the operators' actions on it."""
from __future__ import annotations

import json
from typing import Annotated, Any, Callable, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt,
                      WithJsonSchema)
from pydantic.json_schema import SkipJsonSchema

from accounts.models import REAUTH_TOKEN_FIELD, PasskeyAssertion, Role
from relying_parties.models import DeviceFlowClass
from relying_parties.registration_tokens import DEFAULT_EXPIRES_IN, MAX_EXPIRES_IN, MAX_USES
from common.errors import FieldKind, field_refusal
from common.fields import Omittable
from oidc.registration.client_keys import public_jwks, public_jwks_problem
from oidc.registration.client_urls import endpoint_url_problem, fetched_url_problem, web_url_problem
from oidc.core.redirects import redirect_uri_problem
from oidc.registration.request_uris import MAX_REGISTERED as MAX_REQUEST_URIS
from oidc.registration.request_uris import request_uri_problem
from sessions.models import Cursor
from common.web.cors import origin_problem

REASON_MAX = 500
SEARCH_KEYS = ("username", "email", "user_uuid", "device_id", "session_id")


class AccountSearch(BaseModel):
    """GET /admin/accounts: exactly one of these, matched exactly."""

    model_config = ConfigDict(extra="ignore")
    username: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    user_uuid: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    session_id: str | None = Field(default=None, max_length=128)


class AccountSummary(BaseModel):
    user_uuid: str
    username: str
    email: str
    locked: bool
    roles: list[str]
    created_at: str


class AccountSearchResult(BaseModel):
    accounts: list[AccountSummary]


class OperatorDevice(BaseModel):
    device_id: str
    device_name: str
    device_class: str
    status: str = Field(description="active or revoked (the certificate's state)")
    cert_expires_at: str
    registered_at: str
    last_login_at: str | None
    logged_in: bool


class OperatorSession(BaseModel):
    session_id: str
    device_id: str
    device_name: str
    created_at: str
    last_seen_at: str
    status: str = Field(description="active, revoked or expired")
    revoked_reason: str | None
    ip: str | None
    user_agent: str | None


class OperatorPasskey(BaseModel):
    name: str
    created_at: str
    last_used_at: str | None


class OperatorAccount(AccountSummary):
    """GET /admin/accounts/<user_uuid>: the account as support sees it."""

    email_verified: bool
    locale: str
    password_locked_until: str | None = Field(description="wrong passwords paused its sign-ins until then")
    limit: int | None = Field(description="the operator's per-user device limit, None: the default")
    default_limit: int
    devices: list[OperatorDevice]
    sessions: list[OperatorSession] = Field(description="live and recent, newest first")
    passkeys: list[OperatorPasskey]
    imported_from: str | None = Field(default=None, description="keycloak, auth0 or csv: the account came by "
                                                                "`citylogin accounts import`; else None")
    imported_at: str | None = Field(default=None, description="when the import wrote it; None if not imported")
    password_upgraded: bool | None = Field(default=None, description="an imported account's password is "
                                           "citylogin's own by now (its first sign-in replaced the imported hash, or "
                                           "the person set one); false while the source's hash is kept; None if not "
                                           "imported")


class OperatorSelf(BaseModel):
    """GET /admin/me: the operator calling, and their re-authentication window."""

    username: str | None = Field(description="the operator's own username; None for an app's credential")
    client_id: str | None = Field(default=None, description="the app's client_id, for an app's credential")
    role: str = Field(description="the highest operator role held now")
    reauth_seconds: int = Field(description="CITYLOGIN_ADMIN_REAUTH_SECONDS: how long a sign-in or a "
                                            "re-authentication lets destructive actions go without a password")
    reauth_expires_at: str | None = Field(description="when this session's window ends (its sign-in or last "
                                                      "re-authentication plus reauth_seconds); None for an app")
    reauth_seconds_left: int | None = Field(description="seconds until then, 0 once it has ended: a destructive "
                                                        "action then needs the password or a passkey")


class OperatorPage(BaseModel):
    """GET /admin/accounts/<user_uuid>/history or /audit."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Cursor = None


class ActionRequest(BaseModel):
    """Every operator action: why (required, said in the audit trail), and for a destructive one the
    operator's own password, passkey or reauth token when their sign-in is older than
    CITYLOGIN_ADMIN_REAUTH_SECONDS."""

    model_config = ConfigDict(extra="ignore")
    reason: str | None = Field(default=None, max_length=REASON_MAX, description="required, not blank")
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    passkey: PasskeyAssertion | None = None
    reauth_token: str | None = REAUTH_TOKEN_FIELD


class LimitRequest(ActionRequest):
    # StrictInt: JSON true or "3" is not a number of devices (pydantic's lax mode would take them)
    limit: StrictInt | None = Field(ge=0, le=1000,
                                    description="devices logged in at once (0 = unlimited); null: the default")


class RoleRequest(ActionRequest):
    role: Role
    grant: StrictBool


# --- apps and OpenID Connect clients (SPEC §11, §14), role admin ----------------------------------

APP_NAME_MAX = 100


def _refusing(problem_of: Callable[[str], str | None], kind: FieldKind, reason: str) -> Callable[[str], str]:
    """A field validator of a `*_problem` check (the rule `apps add` and registration share): the value,
    or 400 invalid_field with the check's own words."""
    def check(value: str) -> str:
        problem = problem_of(value)
        if problem:
            raise field_refusal(kind, reason, "{field}: {problem}", problem=problem)
        return value
    return check


def _app_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > APP_NAME_MAX or not value.isprintable():
        raise field_refusal(FieldKind.INVALID_VALUE, "app_name", "{field}: use 1 to 100 printable characters.")
    return value


def _url(value: str) -> str:
    if endpoint_url_problem(value):
        raise field_refusal(FieldKind.INVALID_FORMAT, "url_format",
                            "{field}: an absolute http(s) URL without a fragment.")
    return value


_redirect_uri = _refusing(redirect_uri_problem, FieldKind.INVALID_VALUE, "redirect_uri")


def _jwks(value: Any) -> str:
    if not isinstance(value, dict):
        raise field_refusal(FieldKind.INVALID_VALUE, "jwks", "{field}: {problem}", problem="a JSON object")
    text = json.dumps(value)
    problem = public_jwks_problem(text)
    if problem:
        raise field_refusal(FieldKind.INVALID_VALUE, "jwks", "{field}: {problem}", problem=problem)
    return public_jwks(text)


AppName = Annotated[str, Field(max_length=400), AfterValidator(_app_name)]
Url = Annotated[str, Field(max_length=2048), AfterValidator(_url)]
RedirectUri = Annotated[str, Field(max_length=2048), AfterValidator(_redirect_uri)]
Uris = Annotated[list[RedirectUri], Field(max_length=20)]


_web_url = _refusing(web_url_problem, FieldKind.INVALID_FORMAT, "url_format")


_fetched_url = _refusing(fetched_url_problem, FieldKind.INVALID_FORMAT, "url_format")


def _contact(value: str) -> str:
    if not value or not value.isprintable():
        raise field_refusal(FieldKind.INVALID_VALUE, "contact", "{field}: 1 to 320 printable characters.")
    return value


# The registration metadata of RFC 7591 §2 (SPEC §14), by the rules POST /oidc/register holds them to
WebUrl = Annotated[str, Field(max_length=2048), AfterValidator(_web_url)]
FetchedUrl = Annotated[str, Field(max_length=2048), AfterValidator(_fetched_url)]
Contacts = Annotated[list[Annotated[str, Field(max_length=320), AfterValidator(_contact)]], Field(max_length=10)]
SigningAlg = Literal["RS256", "ES256", "EdDSA"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
GrantType = Literal["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]


_web_origin = _refusing(origin_problem, FieldKind.INVALID_FORMAT, "web_origin")


_request_uri = _refusing(request_uri_problem, FieldKind.INVALID_VALUE, "request_uri")


RequestUris = Annotated[list[Annotated[str, Field(max_length=600), AfterValidator(_request_uri)]],
                        Field(max_length=MAX_REQUEST_URIS)]
WebOrigins = Annotated[list[Annotated[str, Field(max_length=300), AfterValidator(_web_origin)]], Field(max_length=20)]


def _public_fixed(value: object) -> object:
    raise field_refusal(FieldKind.INVALID_VALUE, "public_fixed",
                        "Whether a client is public can not change: add a new app.")


class AppChange(BaseModel):
    """PATCH /admin/apps/<client_id>: the fields given change, the rest stay. Null removes an optional one
    (push_url, backchannel_logout_uri, jwks, admin_role, profile); a field every app has (its name, a list, a flag,
    the ID token's algorithm) may be left out but never null: 400 invalid_field, nothing written. Whether a
    client is public can not change: `public` is refused, as is any member the change does not know (a
    misspelt field would otherwise answer 200 having changed nothing). An app that cannot hold its profile
    (relying_parties.profiles) is refused naming the field to change."""

    model_config = ConfigDict(extra="forbid")
    # Named at all (even as it is), refused with its own reason; not in the change's schema.
    public: SkipJsonSchema[Annotated[object, BeforeValidator(_public_fixed)]] = None
    # Omittable: a null name was once written and failed every reader of the registry (the app list,
    # the pusher of every process), so a field the record must hold is refused before any write.
    name: Omittable[AppName] = None
    push_url: Url | None = Field(default=None, description="where session-revoked events are pushed (RFC 8935)")
    redirect_uris: Omittable[Uris] = Field(default=None, description="[] removes them all")
    post_logout_redirect_uris: Omittable[Uris] = Field(default=None, description="[] removes them all")
    backchannel_logout_uri: Url | None = None
    consent: Omittable[StrictBool] = None
    id_token_alg: Omittable[Literal["RS256", "ES256", "EdDSA"]] = None
    require_par: Omittable[StrictBool] = None
    require_dpop: Omittable[StrictBool] = None
    require_pkce: Omittable[StrictBool] = Field(
        default=None, description="PKCE on every sign-in, as of a public client (a confidential one may omit it)")
    jwks: Annotated[str, BeforeValidator(_jwks), WithJsonSchema({"type": "object"})] | None = Field(
        default=None, description="a JWK Set of the app's public keys (private_key_jwt)")
    web_origins: Omittable[WebOrigins] = Field(
        default=None, description="a public client's further origins allowed CORS at token, userinfo and revoke")
    device_flow: Omittable[StrictBool] = Field(
        default=None, description="screens without a browser sign in by the device authorization grant (RFC 8628)")
    device_class: Omittable[DeviceFlowClass] = Field(
        default=None, description="the class a device-flow app's screens count under in the device limits (tv)")
    admin_role: Role | None = Field(default=None, description="admin API tokens of this role by client credentials")
    request_uris: Omittable[RequestUris] = Field(
        default=None, description="request_uri values the app may send by reference (RFC 9101); [] removes them")
    request_object_signing_alg: Literal["RS256", "PS256", "ES256", "EdDSA", "none"] | None = Field(
        default=None, description="the one alg of the app's request objects (none: unsigned only); null: any signed")
    allow_unsigned_request_objects: Omittable[StrictBool] = Field(
        default=None, description="take unsigned request objects (alg none) from the app too")
    require_signed_request_object: Omittable[StrictBool] = Field(
        default=None, description="RFC 9101 section 10.5: every authorization request as a signed request object")
    profile: Literal["fapi2"] | None = Field(
        default=None, description="fapi2: held to the FAPI 2.0 Security Profile (final); null removes it")
    jwks_uri: FetchedUrl | None = Field(default=None, description="where the app's public keys are fetched, instead "
                                                                  "of jwks: https (http on the loopback host)")
    logo_uri: WebUrl | None = Field(default=None, description="shown on the sign-in and consent pages")
    client_uri: WebUrl | None = None
    policy_uri: WebUrl | None = None
    tos_uri: WebUrl | None = None
    contacts: Omittable[Contacts] = None
    userinfo_signed_response_alg: SigningAlg | None = Field(default=None, description="userinfo answers a signed JWT")
    token_endpoint_auth_method: AuthMethod | None = Field(
        default=None, description="the one method the app authenticates with; null: derived (public: none, with "
                                  "keys: private_key_jwt, else a secret in the header or the body)")
    grant_types: Omittable[Annotated[list[GrantType], Field(max_length=3)]] = Field(
        default=None, description="the grant types the app uses, alone; [] every one its other fields allow")
    verified: Omittable[StrictBool] = Field(
        default=None, description="an app that registered itself, vouched for: the person's approval and consent "
                                  "pages no longer say it registered itself")
    reason: str | None = Field(default=None, max_length=REASON_MAX, description="said in the audit stream")


class NewApp(AppChange):
    """POST /admin/apps: as `citylogin apps add`. A member it does not know is refused, as by the change (a
    misspelt `redirect_uri` or `consnet` would otherwise add an app without what was meant)."""

    model_config = ConfigDict(extra="forbid")
    name: AppName
    public: StrictBool = False


class AppList(BaseModel):
    apps: list[dict[str, Any]]


class AppCredentials(BaseModel):
    """An app as the registry shows it (never the secret's digest), and its secret when it is handed out."""

    model_config = ConfigDict(extra="allow")
    client_id: str
    name: str
    client_secret: str | None = Field(default=None, description="only when added or rotated: shown once")


class NewRegistrationToken(BaseModel):
    """POST /admin/registration-tokens: an initial access token for POST /oidc/register (RFC 7591)."""

    model_config = ConfigDict(extra="ignore")
    expires_in: StrictInt = Field(default=DEFAULT_EXPIRES_IN, ge=1, le=MAX_EXPIRES_IN,
                                  description="seconds it registers apps for (default a day)")
    uses: StrictInt = Field(default=1, ge=1, le=MAX_USES, description="how many apps it may register")
    reason: str | None = Field(default=None, max_length=REASON_MAX, description="said in the audit stream")


class RegistrationTokenView(BaseModel):
    """An initial access token as an operator sees it: never the token (shown once, when made) nor its digest."""

    id: str
    created_at: str
    expires_at: str
    uses: int
    uses_left: int
    created_by: str | None
    token: str | None = Field(default=None, description="only when made: shown once")


class RegistrationTokenList(BaseModel):
    tokens: list[RegistrationTokenView]


class UndeliveredMail(BaseModel):
    """A mail the outbox gave up on, as an operator sees it: never its address or contents (sealed)."""

    mail_id: str
    event: str = Field(description="new_sign_in, password_reset, ...")
    user_uuid: str
    written_at: str | None
    given_up_at: str | None
    attempts: int = Field(description="tries in its last run")
    last_error: str | None = Field(description="the failure's type and SMTP reply code, never the reply's text")


class WaitingMail(BaseModel):
    """A mail the outbox still tries, as an operator sees it: never its address or contents (sealed)."""

    mail_id: str
    event: str = Field(description="new_sign_in, password_reset, ...")
    user_uuid: str
    written_at: str | None
    since: str | None = Field(description="when its run of tries began: its writing, or an operator's re-send")
    attempts: int = Field(description="tries so far in this run (0: not tried yet)")
    next_try_at: str | None = Field(description="when a sender tries it next; null while one is trying it")
    trying: bool = Field(description="a sender holds it and is trying it now")
    last_error: str | None = Field(description="why its last try failed (type and SMTP reply code), null if none did")


class UndeliveredMailList(BaseModel):
    """The outbox as an operator sees it: the mail given up (`mails`), and the mail still waiting to go."""

    mails: list[UndeliveredMail] = Field(description="given up, oldest first (at most 1000)")
    waiting: list[WaitingMail] = Field(description="waiting to go, the longest waiting first (at most 1000)")


class MailActionDone(BaseModel):
    mail_id: str
    event: str
    user_uuid: str
