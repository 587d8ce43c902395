"""OpenID Connect RP-Initiated Logout 1.0 (SPEC §14): an app sends the browser to /oidc/logout. Authlib's
end-session endpoint checks the request — an `id_token_hint` citylogin issued (its signature, its issuer;
an expired one still names its session, as §2 of the standard asks), a `client_id` that is an app and
the hint's audience, a `post_logout_redirect_uri` registered exactly (else an error page, never followed) — and the
request is kept behind a one-time handle for the browser's device. Nothing ends here: a hint proves
nothing (ID tokens sit in apps' logs and storage), and a request without a browser must end nothing.
The web UI (`/#oidc-logout=<handle>`) has the device prove its key (flows.app_sign_out); a hint that
does not check out is an error page, never a redirect."""
from __future__ import annotations

import secrets
from typing import Any, NoReturn

import jwt
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest

from relying_parties import service as apps
from common.errors import ApiError, ErrorCode
from common.crypto.tokens import token_digest
from common.database.batch_read import KeyRead
from common.database.one_time_tokens import OneTimeTokenStore
from common.keys.jwt_keys import one_spelling
from oidc.logout.store import LogoutRequestStore
from oidc.core.models import REQUEST_ID_BYTES, Client
from oidc.logout.models import LogoutInteraction, LogoutRequest
from common.runtime.context import AppContext

REQUEST_TTL = 600  # seconds the browser has to get to the sign-out page (as an authorization request)
REQUEST_PURPOSE = "oidc_logout"


class LogoutRequestUnknown(ApiError):
    status, code = 400, ErrorCode.OIDC_LOGOUT_UNKNOWN
    detail = "This sign-out request is unknown, finished or expired: sign out again from the app."


class EndSession(EndSessionEndpoint):
    """Authlib's endpoint with citylogin's keys and clients: it checks requests and ends nothing."""

    def get_server_jwks(self) -> dict[str, Any]:
        return self.server.ctx.jwt.jwks()

    def _validate_id_token_hint(self, id_token_hint: str) -> dict[str, Any]:
        # An ID token's header says JWT: never an access token (at+jwt) or a logout token of the same keys.
        if not one_spelling(id_token_hint):  # SPEC §14: one spelling per token
            raise InvalidRequestError("'id_token_hint' is not a JWT.")
        try:
            typ = jwt.get_unverified_header(id_token_hint).get("typ")
        except jwt.PyJWTError:
            raise InvalidRequestError("'id_token_hint' is not a JWT.") from None
        if typ != "JWT":
            raise InvalidRequestError("'id_token_hint' is not an ID token.")
        return super()._validate_id_token_hint(id_token_hint)

    def validate_request(self, request: Any) -> EndSessionRequest:
        validated = super().validate_request(request)
        claims = validated.id_token_claims
        if claims is not None and (claims.get("iss") != self.server.issuer or not isinstance(claims.get("sid"), str)
                                   or not isinstance(claims.get("sub"), str)):
            raise InvalidRequestError("'id_token_hint' is not an ID token of this issuer.")
        if request.payload.data.get("client_id") and validated.client is None:
            raise InvalidRequestError("'client_id' is not an app of this issuer.")
        asked_back = request.payload.data.get("post_logout_redirect_uri")
        if asked_back and (validated.client is None or
                           not self._is_valid_post_logout_redirect_uri(validated.client, asked_back)):
            # §3: never followed; an error page rather than a sign-out the app did not quite ask for.
            raise InvalidRequestError("'post_logout_redirect_uri' is not one the app registered.")
        return validated

    def _is_valid_post_logout_redirect_uri(self, client: Client, post_logout_redirect_uri: str) -> bool:
        return post_logout_redirect_uri in client.app.oidc().post_logout_redirect_uris

    def end_session(self, end_session_request: EndSessionRequest) -> NoReturn:
        # A hint alone ends nothing: only the device's proof does (flows.app_sign_out).
        raise NotImplementedError("RP-initiated logout ends a session through flows.app_sign_out only")


def _store(ctx: AppContext) -> LogoutRequestStore:
    return LogoutRequestStore(OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens))


def _digest(handle: str) -> str:
    return token_digest(handle, purpose=REQUEST_PURPOSE)


def keep(ctx: AppContext, validated: EndSessionRequest) -> str:
    """Keep a checked logout request for the browser's device, REQUEST_TTL seconds; its one-time handle."""
    claims = validated.id_token_claims or {}
    request = LogoutRequest(client_id=validated.client.client_id if validated.client else None,
                            session_id=claims.get("sid"), user_uuid=claims.get("sub"),
                            redirect_to=validated.redirect_uri)
    handle = secrets.token_urlsafe(REQUEST_ID_BYTES)
    _store(ctx).create(digest=_digest(handle), request=request, expires_epoch=ctx.epoch() + REQUEST_TTL)
    return handle


def request_read(ctx: AppContext, *, handle: str) -> KeyRead[LogoutRequest | None]:
    """The waiting request behind `handle` (None: unknown, finished or expired), for a batch read."""
    return _store(ctx).read(digest=_digest(handle), now=ctx.epoch())


def finish(ctx: AppContext, *, handle: str) -> None:
    """Use the request up once the session it was for has ended (a second answer finds nothing)."""
    _store(ctx).finish(digest=_digest(handle), now=ctx.epoch())


def interaction(ctx: AppContext, *, handle: str) -> LogoutInteraction:
    """What the sign-out page shows: the app that asks, and where the browser goes after."""
    request = _store(ctx).get(digest=_digest(handle), now=ctx.epoch())
    if request is None:
        raise LogoutRequestUnknown()
    return LogoutInteraction(client_id=request.client_id, client_name=app_name(ctx, client_id=request.client_id),
                             redirect_to=request.redirect_to)


def app_name(ctx: AppContext, *, client_id: str | None) -> str | None:
    """The name of the app that asked for a logout; None without one, or when it was removed since."""
    if client_id is None:
        return None
    try:
        return apps.show_app(ctx, client_id=client_id).name
    except apps.AppNotFound:
        return None  # removed since the request came
