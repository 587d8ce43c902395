"""What the OpenID Provider keeps and answers (SPEC §14): the objects Authlib's grants ask for, the
records behind them, and the bodies of citylogin's own sign-in routes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from relying_parties.models import AppRecord
from oidc.core.redirects import redirect_uri_matches

DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
SCOPES = ("openid", "profile", "email", "offline_access")
ADMIN_SCOPE = "admin"  # the client-credentials grant's only scope: the admin API (SPEC §15)
REQUEST_ID_BYTES = 24


@dataclass(frozen=True)
class SignedIn:
    """The person an authorization is for: one live citylogin session on their device."""

    user_uuid: str
    session_id: str
    device_id: str
    auth_time: int
    amr: tuple[str, ...]
    jkt: str | None = None
    refresh_generation: int = 0  # the generation of the refresh token the app gets now; 0: none
    grant_id: str = ""           # the grant the app's refresh tokens are of
    # A refresh's successor pair, formed again within the reuse grace (SPEC §14 with §4): the moment
    # its access token was issued and the secret its refresh token is under (0, None: now, the newest).
    issued_epoch: int = 0
    refresh_kid: str | None = None
    refresh_jkt: str | None = None  # the key the grant's refresh tokens are bound to (the grant's jkt)
    # The scope the grant was given, which its refresh tokens carry: one refresh's answer may be narrower
    # (RFC 6749 §6), the grant never is.
    grant_scope: str = ""
    # The refresh token a refresh answers as it was presented, no new one made: a FAPI 2.0 app's (its
    # grant still moves on a generation, which names the new access token)
    kept_refresh: str | None = None
    # The person's claims of the grant's scope (oidc.core.claims), as the write that made these tokens found
    # the account (None: not known, read when the ID token needs them); the refresh token carries them.
    person: dict[str, Any] | None = None

    def get_user_id(self) -> str:  # Authlib's user protocol
        return self.user_uuid

    def grant(self, *, client_id: str, scope: str) -> Grant:
        return Grant(session_id=self.session_id, client_id=client_id, grant_id=self.grant_id,
                     user_uuid=self.user_uuid, device_id=self.device_id, scope=scope, auth_time=self.auth_time,
                     amr=list(self.amr), refresh_gen=self.refresh_generation, jkt=self.jkt)


@dataclass(frozen=True)
class Client:
    """An app as Authlib's ClientMixin sees it (authlib.oauth2.rfc6749.ClientMixin)."""

    app: AppRecord
    secret_ok: Callable[[str], bool] | None = field(default=None, compare=False)  # constant time

    @property
    def client_id(self) -> str:
        return self.app.client_id

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # redirect_uri is required in every request (RFC 9700 §2.1: no guessing)

    def get_allowed_scope(self, scope: str | None) -> str:
        asked = (scope or "").split()
        return " ".join(s for s in asked if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_matches(self.app.oidc().redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return not self.app.oidc().public and bool(self.secret_ok and self.secret_ok(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        registered = self.app.oidc().token_endpoint_auth_method()
        if registered in SECRET_METHODS:  # the secret, in the header or the body: libraries default to either
            return method in SECRET_METHODS
        return method == registered  # a public client's "none", or the app's key (private_key_jwt)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":  # RFC 6749 §4.4: confidential clients alone; its admin API
            # tokens are Bearer tokens, which a FAPI 2.0 app never gets (FAPI 2.0 SP §5.3.2.1-4)
            return bool(self.app.admin_role) and not self.app.oidc().public and not self.app.oidc().fapi2
        oidc = self.app.oidc()
        if oidc.grant_types and grant_type not in oidc.grant_types:
            return False  # an app that registered its grant types (RFC 7591 §2) uses those alone
        if grant_type == DEVICE_CODE_GRANT_TYPE:  # RFC 8628: an app allowed it (apps add --device-flow)
            return oidc.device_flow
        if grant_type == "refresh_token":
            return bool(oidc.redirect_uris) or oidc.device_flow
        return grant_type == "authorization_code" and bool(oidc.redirect_uris)


@dataclass(frozen=True)
class Code:
    """An issued authorization code's record (AuthorizationCodeMixin): bound to the client, the
    redirect URI, the PKCE challenge and the session (SPEC §14)."""

    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str         # "" (and the method ""): asked for without PKCE, so redeemed without
    code_challenge_method: str  # a code_verifier (SPEC §14, RFC 9700 §4.8.2)
    user_uuid: str
    session_id: str
    device_id: str
    auth_time: int
    amr: list[str]
    nonce: str | None = None
    jkt: str | None = None
    request_digest: str = ""  # its authorization request's item: the redemption marks it (single use)
    # The ID token's claims of the person by scope, as read when the code was given (None: a code of an
    # earlier release, whose redemption reads them), and the session's latest end (its grant's).
    person: dict[str, Any] | None = None
    session_expires_epoch: int = 0
    # When it was given (ms): a redemption is refused if the person or an operator ended the app's sign-in
    # after that (SPEC §14, oidc.token.redemption). A code of an earlier release: its end less CODE_TTL.
    issued_ms: int = 0
    # The app's live grant on the session when the code was given (None: none): the redemption's first try
    # replaces it. Only a guess: the redemption's write holds it to the grant row as it is then.
    replacing: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return ACR

    def get_amr(self) -> list[str]:
        return self.amr

    def signed_in(self, *, refresh_generation: int, grant_id: str) -> SignedIn:
        return SignedIn(user_uuid=self.user_uuid, session_id=self.session_id, device_id=self.device_id,
                        auth_time=self.auth_time, amr=tuple(self.amr), jkt=self.jkt,
                        refresh_generation=refresh_generation, grant_id=grant_id, grant_scope=self.scope)


@dataclass(frozen=True)
class Grant:
    """An app's grant on one citylogin session (oidc_grants): who signed in, what for, and which
    generation of its rotating refresh token is current (0: the app holds none)."""

    session_id: str
    client_id: str
    grant_id: str     # a new one for each code redeemed: refresh tokens of an earlier grant do not count
    user_uuid: str
    device_id: str
    scope: str
    auth_time: int
    amr: list[str]
    refresh_gen: int = 0
    jkt: str | None = None
    # The last rotation (0, None: none yet): the generation it issued, when, under which refresh
    # secret, bound to which key; a retry within the grace gets that same pair again.
    rotated_gen: int = 0
    rotated_epoch: int = 0
    refresh_kid: str | None = None
    rotated_jkt: str | None = None
    # Why and when the grant ended while its session went on (oidc.app_grants.ending); the row is kept so that
    # Back-Channel Logout knows whom it told. None: the grant holds.
    revoked: str | None = None
    revoked_epoch: int = 0

    @property
    def live(self) -> bool:
        return self.revoked is None

    def signed_in(self, *, refresh_generation: int) -> SignedIn:
        return SignedIn(user_uuid=self.user_uuid, session_id=self.session_id, device_id=self.device_id,
                        auth_time=self.auth_time, amr=tuple(self.amr), jkt=self.jkt,
                        refresh_generation=refresh_generation, grant_id=self.grant_id, refresh_jkt=self.jkt,
                        grant_scope=self.scope)


@dataclass(frozen=True)
class HeldGrant:
    """The grant a token an app holds is of (Authlib's token protocol at the revocation endpoint)."""

    session_id: str
    client_id: str
    grant_id: str | None = None  # None: an access token that names no grant (then the app's live one)

    def check_client(self, client: Any) -> bool:
        return bool(client.client_id == self.client_id)


@dataclass(frozen=True)
class AppRefresh:
    """A presented refresh token, checked and matched to its grant (Authlib's token protocol); `unread`:
    the grant as the token carries it, at the token's generation (the rotation's write checks it)."""

    grant: Grant
    generation: int
    unread: bool = False
    text: str = ""  # the token as presented (a FAPI 2.0 app's refresh answers it again)
    person: dict[str, Any] | None = None  # the claims of the grant's scope the token carries (None: none carried)

    def check_client(self, client: Any) -> bool:
        return bool(client.client_id == self.grant.client_id)

    def get_scope(self) -> str:
        return self.grant.scope


# The one assurance level: a device key held in this person's device and a password or passkey.
ACR = "urn:citylogin:acr:device-bound"


@dataclass(frozen=True)
class WaitingRequest:
    """An authorization request kept while the person signs in: its parameters, when it was made, and
    the digest of the cookie of the browser that started it (oidc.authorization.browser_binding; None for one kept
    before requests were bound)."""

    params: dict[str, str]
    asked_at: int
    browser_digest: str | None


class PendingRequest(BaseModel):
    """`POST /oidc/interaction` and `/oidc/authorize/cancel` name the authorization request."""

    model_config = ConfigDict(extra="ignore")
    request: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


