"""An app as the registry keeps it: its credential only as a digest."""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from common.errors import FieldKind, field_refusal
from common.timefmt import iso_from_epoch
from common.database.guarded_write import GuardedWrite

POLL_METHOD = "urn:ietf:rfc:8936"
SESSION_REVOKED_EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
# The app's stream item (app_streams) for OpenID Connect Back-Channel Logout: client_id + this.
BACKCHANNEL_STREAM_SUFFIX = "#backchannel"
# The classes a device-flow app's screens count under (SPEC §5, §14): a session's classes, of which a
# registered device takes all but "tv" (a TV seat is not a registered device).
DeviceFlowClass = Literal["tv", "mobile", "tablet", "desktop", "other"]
DEVICE_FLOW_CLASSES: tuple[str, ...] = get_args(DeviceFlowClass)  # ("tv", "mobile", "tablet", "desktop", "other")
DEFAULT_SCREEN_CLASS: DeviceFlowClass = "tv"
# A request object's `alg` when it is not signed (RFC 7519 §6): an app may allow those, or register it as
# its request_object_signing_alg (unsigned only)
UNSIGNED_ALG = "none"
# The profiles an app may be held to: the FAPI 2.0 Security Profile (final), relying_parties.profiles
FAPI2 = "fapi2"
PROFILES: tuple[str, ...] = (FAPI2,)
# The fields of an app that registered itself that are the operator's once an operator set them (SPEC §14):
# its profile, its PKCE, PAR, DPoP and signed-request rules, the grants it may use (the device flow among
# them), consent, its role, its browser origins and its screens' class. Its own update keeps them.
OPERATOR_FIELDS: tuple[str, ...] = ("profile", "require_pkce", "require_par", "require_dpop", "consent",
                                    "grant_types", "admin_role", "web_origins", "device_class",
                                    "require_signed_request_object", "allow_unsigned_request_objects")


@dataclass(frozen=True)
class OidcClient:
    """What makes an app an OpenID Connect client (SPEC §14); every field has the default of an app
    registered before the OpenID Provider (no redirect URI: it cannot sign anybody in)."""

    redirect_uris: tuple[str, ...] = ()
    public: bool = False                 # a SPA or native app: no secret, PKCE alone (token auth `none`)
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    consent: bool = False                # ask the person once before the first sign-in
    id_token_alg: str = "RS256"          # OpenID Connect Core §3.1.3.7's default
    require_par: bool = False
    require_dpop: bool = False
    require_pkce: bool = False           # PKCE of every sign-in, as of a public client (SPEC §14)
    jwks: str | None = None              # a JWK Set of public keys (JSON): the app signs its client assertions
                                         # with their private keys (private_key_jwt, RFC 7523) instead of a secret
    # A public client's further browser origins (serialized, common.web.cors.web_origin): with its redirect
    # URIs' own, the origins its pages call the token, userinfo and revocation endpoints from (CORS)
    web_origins: tuple[str, ...] = ()
    # The device authorization grant (RFC 8628): screens without a browser sign in with a code approved on
    # another device, each taking a seat of this class under the device limit
    device_flow: bool = False
    device_class: str = DEFAULT_SCREEN_CLASS
    # Registration metadata (RFC 7591 §2, OpenID Connect Dynamic Client Registration §2)
    jwks_uri: str | None = None          # where the app's public keys are fetched, instead of `jwks`
    logo_uri: str | None = None          # shown on the sign-in and consent pages
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    contacts: tuple[str, ...] = ()
    userinfo_signed_response_alg: str | None = None  # userinfo answers a signed JWT when set
    registered_auth_method: str | None = None  # token_endpoint_auth_method as registered; None: derived
    grant_types: tuple[str, ...] = ()    # as registered; () is every grant the app's other fields allow
    # Request objects (RFC 9101, OpenID Connect Core §6)
    request_uris: tuple[str, ...] = ()   # the request_uri values the app may send by reference
    request_object_signing_alg: str | None = None  # the one alg its objects must use; None: any signed one
    allow_unsigned_request_objects: bool = False   # with no alg named, `alg: none` objects are taken too
    require_signed_request_object: bool = False    # RFC 9101 §10.5: every request as a signed object
    # FAPI 2.0 Security Profile: "fapi2" holds the app to all of it
    profile: str | None = None

    def token_endpoint_auth_method(self) -> str:
        """How the app authenticates at the token, PAR and revocation endpoints (RFC 7591 §2)."""
        if self.registered_auth_method:
            return self.registered_auth_method
        if self.public:
            return "none"
        return "private_key_jwt" if self.jwks or self.jwks_uri else "client_secret_basic"

    @property
    def fapi2(self) -> bool:
        """Held to the FAPI 2.0 Security Profile (final): what it requires, it requires of every request."""
        return self.profile == FAPI2

    def par_required(self) -> bool:
        """Only pushed authorization requests (RFC 9126): --require-par, or FAPI 2.0 SP §5.3.2.2-3."""
        return self.require_par or self.fapi2

    def dpop_required(self) -> bool:
        """Only DPoP-bound access tokens (RFC 9449): --require-dpop, or FAPI 2.0 SP §5.3.2.1-4."""
        return self.require_dpop or self.fapi2

    def rotates_refresh_tokens(self) -> bool:
        """Whether each refresh answers a new refresh token (citylogin's default, SPEC §14); a FAPI 2.0
        app keeps its one (FAPI 2.0 SP §5.3.2.1-10: no rotation; the token is bound to the client by its
        private_key_jwt, RFC 9449 §5)."""
        return not self.fapi2

    def pkce_rule(self, *, required_of_every_app: bool) -> PkceRule:
        """Which rule of SPEC §14 the app signs in under: PKCE required of a public client, of a FAPI 2.0
        app, of an app added with --require-pkce, of every app by the operator's setting (CITYLOGIN_OIDC_REQUIRE_PKCE);
        else it is enforced when the app sends a challenge."""
        if self.public:
            return PkceRule.PUBLIC_CLIENT
        if self.fapi2:
            return PkceRule.FAPI2_PROFILE
        if self.require_pkce:
            return PkceRule.REQUIRE_PKCE
        return PkceRule.OPERATOR_SETTING if required_of_every_app else PkceRule.WHEN_SENT


class PkceRule(StrEnum):
    """Why an app must send PKCE, or that it need not (SPEC §14: as the certified providers do)."""

    PUBLIC_CLIENT = "public_client"
    FAPI2_PROFILE = "fapi2_profile"      # FAPI 2.0 SP §5.3.2.2-5
    REQUIRE_PKCE = "require_pkce"
    OPERATOR_SETTING = "operator_setting"
    WHEN_SENT = "when_sent"

    @property
    def required(self) -> bool:
        return self is not PkceRule.WHEN_SENT


@dataclass(frozen=True)
class AppRecord:
    client_id: str
    name: str
    secret_digest: str
    created_at: str
    created_epoch: int
    push_url: str | None = None
    secret_rotated_at: str | None = None
    created_ms: int | None = None  # absent on apps added before it was kept: their second is used
    # OpenID Connect client metadata (SPEC §14), absent on apps added before it
    redirect_uris: list[str] | None = None
    public_client: bool | None = None
    post_logout_redirect_uris: list[str] | None = None
    backchannel_logout_uri: str | None = None
    consent: bool | None = None
    id_token_alg: str | None = None
    require_par: bool | None = None
    require_dpop: bool | None = None
    require_pkce: bool | None = None
    jwks: str | None = None
    web_origins: list[str] | None = None
    device_flow: bool | None = None
    device_class: str | None = None
    jwks_uri: str | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    contacts: list[str] | None = None
    userinfo_signed_response_alg: str | None = None
    token_endpoint_auth_method: str | None = None
    grant_types: list[str] | None = None
    request_uris: list[str] | None = None
    request_object_signing_alg: str | None = None
    allow_unsigned_request_objects: bool | None = None
    require_signed_request_object: bool | None = None
    profile: str | None = None
    # Dynamic registration (RFC 7591/7592): the registration access token's digest (never shown), and how
    # the app was registered (the initial access token's id, or "open"); None for an app an operator added
    registration_token_digest: str | None = None
    registered_with: str | None = None
    # An operator role (SPEC §15): the app gets admin API tokens with it by the client-credentials grant
    admin_role: str | None = None
    # An app that registered itself an operator vouched for: the person's pages stop saying "registered itself"
    verified: bool | None = None
    # What an operator set on an app that registered itself (OPERATOR_FIELDS' names): its own RFC 7592
    # update keeps them (oidc.registration.update). None for every app an operator added.
    operator_fields: list[str] | None = None
    # Bumped by every change of the app: a change computed from a reading of the app is written only if
    # nothing changed it meanwhile (optimistic locking). None on a record never changed since it was added.
    revision: int | None = None

    def oidc(self) -> OidcClient:
        return self._oidc

    @cached_property
    def _oidc(self) -> OidcClient:  # made once per record: every OIDC request asks for it several times
        return OidcClient(redirect_uris=tuple(self.redirect_uris or ()), public=bool(self.public_client),
                          post_logout_redirect_uris=tuple(self.post_logout_redirect_uris or ()),
                          backchannel_logout_uri=self.backchannel_logout_uri, consent=bool(self.consent),
                          id_token_alg=self.id_token_alg or OidcClient.id_token_alg,
                          require_par=bool(self.require_par), require_dpop=bool(self.require_dpop),
                          require_pkce=bool(self.require_pkce), jwks=self.jwks,
                          web_origins=tuple(self.web_origins or ()), device_flow=bool(self.device_flow),
                          device_class=self.device_class or DEFAULT_SCREEN_CLASS, jwks_uri=self.jwks_uri,
                          logo_uri=self.logo_uri, client_uri=self.client_uri, policy_uri=self.policy_uri,
                          tos_uri=self.tos_uri, contacts=tuple(self.contacts or ()),
                          userinfo_signed_response_alg=self.userinfo_signed_response_alg,
                          registered_auth_method=self.token_endpoint_auth_method,
                          grant_types=tuple(self.grant_types or ()), request_uris=tuple(self.request_uris or ()),
                          request_object_signing_alg=self.request_object_signing_alg,
                          allow_unsigned_request_objects=bool(self.allow_unsigned_request_objects),
                          require_signed_request_object=bool(self.require_signed_request_object),
                          profile=self.profile)

    def registered_itself(self) -> bool:
        """Whether the person's approval and consent pages say the app registered itself (SPEC §14): it did, and
        no operator marked it verified."""
        return self.registered_with is not None and not self.verified

    def hears_from_ms(self) -> int:
        """The moment from which the app hears of session ends: when it was added."""
        return self.created_ms if self.created_ms is not None else self.created_epoch * 1000

    def public(self, *, pkce_required_of_every_app: bool = False) -> dict[str, Any]:
        """What an operator may see: everything but the digest; `pkce`, which PKCE rule the app signs in
        under (under the operator's CITYLOGIN_OIDC_REQUIRE_PKCE, given)."""
        oidc = self.oidc()
        return {"client_id": self.client_id, "name": self.name, "push_url": self.push_url,
                "created_at": self.created_at, "secret_rotated_at": self.secret_rotated_at,
                "redirect_uris": list(oidc.redirect_uris), "public": oidc.public,
                "token_endpoint_auth_method": oidc.token_endpoint_auth_method(),
                "post_logout_redirect_uris": list(oidc.post_logout_redirect_uris),
                "backchannel_logout_uri": oidc.backchannel_logout_uri, "consent": oidc.consent,
                "id_token_signed_response_alg": oidc.id_token_alg,
                # as enforced: by the app's own flag or by its profile
                "require_pushed_authorization_requests": oidc.par_required(),
                "dpop_bound_access_tokens": oidc.dpop_required(), "require_pkce": oidc.require_pkce,
                "pkce": oidc.pkce_rule(required_of_every_app=pkce_required_of_every_app).value,
                "web_origins": list(oidc.web_origins),
                "device_flow": oidc.device_flow, "device_class": oidc.device_class,
                "admin_role": self.admin_role, **_registration_metadata(oidc),
                "registered_with": self.registered_with, "verified": bool(self.verified),
                "operator_fields": sorted(self.operator_fields or ()),
                **({"jwks": json.loads(oidc.jwks)} if oidc.jwks else {})}


def _registration_metadata(oidc: OidcClient) -> dict[str, Any]:
    """The app's RFC 7591 / RFC 9101 / FAPI 2.0 members under their standard names."""
    return {"jwks_uri": oidc.jwks_uri, "logo_uri": oidc.logo_uri, "client_uri": oidc.client_uri,
            "policy_uri": oidc.policy_uri, "tos_uri": oidc.tos_uri, "contacts": list(oidc.contacts),
            "userinfo_signed_response_alg": oidc.userinfo_signed_response_alg,
            "grant_types": list(oidc.grant_types), "request_uris": list(oidc.request_uris),
            "request_object_signing_alg": oidc.request_object_signing_alg,
            "allow_unsigned_request_objects": oidc.allow_unsigned_request_objects,
            "require_signed_request_object": oidc.require_signed_request_object, "profile": oidc.profile}


@dataclass(frozen=True)
class SelfRegistration:
    """How an app registers itself (RFC 7591, oidc.registration.endpoint): what it was registered with (an initial
    access token's id, or "open"), its registration access token's digest, and the entries its creation's transaction
    carries along (the token's use, the address's count)."""

    registered_with: str
    token_digest: str
    along: tuple[GuardedWrite, ...] = ()


@dataclass(frozen=True)
class RegistrationToken:
    """An initial access token as kept: its id, its digest, when it expires and how many registrations
    it has left."""

    token_id: str
    digest: str
    created_at: str
    expires_epoch: int
    uses: int             # how many registrations it was made for
    uses_left: int
    created_by: str | None = None  # the operator who made it, as the audit stream names them

    def public(self) -> dict[str, Any]:
        """What an operator may see: everything but the digest (the token itself is not kept)."""
        return {"id": self.token_id, "created_at": self.created_at, "expires_at": iso_from_epoch(self.expires_epoch),
                "uses": self.uses, "uses_left": self.uses_left, "created_by": self.created_by}


@dataclass(frozen=True)
class NewCredentials:
    """An app's credentials as handed out once, at `apps add` or `apps rotate-secret`."""

    app: AppRecord
    client_secret: str


class PollRequest(BaseModel):
    """RFC 8936 §2.4 (`setErrs`, negative acknowledgements, is not supported and is ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    max_events: int = Field(default=100, ge=0, le=1000, alias="maxEvents")
    return_immediately: StrictBool = Field(default=False, alias="returnImmediately")
    ack: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=1000)


class StreamRequest(BaseModel):
    """SSF 1.0 §8.1.1.1: only poll delivery (RFC 8936) is created this way; push is the app's
    `--push-url`. Other members (events_requested, description) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    delivery: dict[str, Any] | None = None

    @field_validator("delivery")
    @classmethod
    def _poll_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("method", POLL_METHOD) != POLL_METHOD:
            raise field_refusal(FieldKind.INVALID_VALUE, "poll_only", "only urn:ietf:rfc:8936 (poll) streams")
        return value


class StreamConfiguration(BaseModel):
    stream_id: str
    iss: str
    aud: str
    delivery: dict[str, Any]
    events_supported: list[str]
    events_delivered: list[str]

    @classmethod
    def of(cls, stream_id: str, *, issuer: str, client_id: str, endpoint_url: str) -> "StreamConfiguration":
        events = [SESSION_REVOKED_EVENT]
        return cls(stream_id=stream_id, iss=issuer, aud=client_id, events_supported=events, events_delivered=events,
                   delivery={"method": POLL_METHOD, "endpoint_url": endpoint_url})


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    stream_id: str = Field(min_length=1, max_length=64)


class PollResponse(BaseModel):
    sets: dict[str, str]
    moreAvailable: bool  # noqa: N815 - RFC 8936's member name


class SsfConfiguration(BaseModel):
    spec_version: str
    issuer: str
    jwks_uri: str
    delivery_methods_supported: list[str]
    poll_endpoint: str
    configuration_endpoint: str
    default_subjects: str
    citylogin_access_token_ttl: int
