"""Apps that register themselves (RFC 7591) and manage their registration (RFC 7592; SPEC §14).

POST /oidc/register takes an initial access token an operator made (relying_parties.registration_tokens; none needed
with CITYLOGIN_OIDC_OPEN_REGISTRATION), checks the client metadata by the rules of `apps add`
(oidc.registration.client_metadata) and writes the app, the token's use and the address's count in one transaction: a
use is spent only with its app, and a registration DynamoDB refuses leaves neither. The app gets its
credentials and a registration access token (kept as a digest on its record) for GET, PUT and DELETE at
its registration_client_uri; without that token those answer 401 invalid_token, whether or not the app
exists. A registered app is an ordinary app: listed, audited, removable by operators."""
from __future__ import annotations

import json
from typing import Any

from authlib.oauth2 import OAuth2Error

from relying_parties import registration_tokens
from relying_parties import service as apps
from relying_parties.models import AppRecord, OidcClient, RegistrationToken, SelfRegistration
from common.errors import InvalidField
from common.crypto.tokens import digests_equal, new_token, token_digest
from oidc.core import request_limits
from oidc.registration.client_metadata import InvalidClientMetadata, parse_metadata
from oidc.core.context import issuer
from oidc.registration.document import registration_document
from oidc.registration.update import kept_by_operator
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

ACCESS_PURPOSE = "registration_access_token"
OPEN = "open"  # registered_with of an app registered without an initial access token
MAX_TOKEN_CHARS = 512
UPDATE_ATTEMPTS = 3  # an app's PUT read again after an operator's change meanwhile, this many times in all
# RFC 7592 §2.2: members of the answer a client sends back in its PUT; they change nothing.
ANSWER_MEMBERS = ("client_id", "client_secret", "registration_access_token", "registration_client_uri",
                  "client_secret_expires_at", "client_id_issued_at")


class InvalidToken(OAuth2Error):
    """RFC 6750 §3.1: the initial access token or the registration access token is missing or wrong (or the
    app is not there: the answer is the same)."""

    error, status_code = "invalid_token", 401
    challenge = 'Bearer error="invalid_token"'

    def __init__(self, description: str = "The access token is missing or invalid.") -> None:
        super().__init__(description)


def _digest(token: str) -> str:
    return token_digest(token, purpose=ACCESS_PURPOSE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS or " " in token:
        return None
    return token


def metadata_of(raw: bytes) -> Any:
    """The request body as JSON; InvalidClientMetadata if it is none."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidClientMetadata("request", "the body is a JSON object of client metadata") from None


def register(ctx: AppContext, *, authorization: str | None, raw: bytes, ip: str | None) -> dict[str, Any]:
    """POST /oidc/register: the app registered, and its registration as RFC 7591 §3.2.1 answers it."""
    initial = _initial_access(ctx, authorization)
    settings = ctx.settings
    metadata = parse_metadata(metadata_of(raw),
                              unsigned_by_default=settings.oidc_registered_apps_send_unsigned_request_objects,
                              private_addresses=settings.oidc_fetch_private_addresses)
    access_token = new_token(32)
    along = [registration_tokens.use(ctx, initial, refusal=InvalidToken)] if initial else []
    along.append(request_limits.counted(ctx, kind=request_limits.REGISTER, ip=ip))
    registration = SelfRegistration(registered_with=initial.token_id if initial else OPEN,
                                    token_digest=_digest(access_token), along=tuple(along))
    try:
        credentials = apps.add_app(ctx, name=metadata.name, push_url=None, oidc=metadata.oidc,
                                   registration=registration)
    except InvalidField as refused:  # a rule the registry holds every app to (relying_parties.service)
        raise InvalidClientMetadata(str(refused.extra.get("field")), refused.detail) from None
    if initial:
        audit(AuditEvent.REGISTRATION_TOKEN_USED, initial_access=initial.token_id,
              client_id=credentials.app.client_id)
    return registration_document(credentials.app, issuer=issuer(ctx), access_token=access_token,
                                 client_secret=credentials.client_secret or None)


def _initial_access(ctx: AppContext, authorization: str | None) -> RegistrationToken | None:
    """The initial access token the request carries, usable; None for an open registration (no token, and
    the operator's setting allows it); InvalidToken otherwise."""
    token = bearer_token(authorization)
    if token is None:
        if authorization is None and ctx.settings.oidc_open_registration:
            return None
        raise InvalidToken("An initial access token is required (Authorization: Bearer).")
    record = registration_tokens.usable(ctx, token)
    if record is None:
        raise InvalidToken("The initial access token is unknown, expired or used up.")
    return record


def read(ctx: AppContext, *, client_id: str, authorization: str | None) -> dict[str, Any]:
    """GET /oidc/register/<client_id> (RFC 7592 §2.1)."""
    app, token = _managed(ctx, client_id, authorization)
    return registration_document(app, issuer=issuer(ctx), access_token=token)


def replace(ctx: AppContext, *, client_id: str, authorization: str | None, raw: bytes) -> dict[str, Any]:
    """PUT /oidc/register/<client_id> (RFC 7592 §2.2): the metadata replaced by the body's, whole (a member left
    out takes its default), but for what an operator set on the app (oidc.registration.update); client_id must
    be the app's, and client_secret, if sent, its secret. Written only if nobody changed the app since it was
    read (an operator's change meanwhile: read again, up to UPDATE_ATTEMPTS times)."""
    body = metadata_of(raw)
    if not isinstance(body, dict):
        raise InvalidClientMetadata("request", "the body is a JSON object of client metadata")
    for _ in range(UPDATE_ATTEMPTS - 1):
        try:
            return _replaced(ctx, client_id=client_id, authorization=authorization, body=body)
        except apps.AppChangedMeanwhile:
            continue
    return _replaced(ctx, client_id=client_id, authorization=authorization, body=body)


def _replaced(ctx: AppContext, *, client_id: str, authorization: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """One try of the PUT: the app read, the body checked against it, the change written if the app is as read."""
    app, token = _managed(ctx, client_id, authorization)
    secret = _sent_credentials(app, body)
    metadata = parse_metadata({k: v for k, v in body.items() if k not in ANSWER_MEMBERS},
                              unsigned_by_default=ctx.settings.oidc_registered_apps_send_unsigned_request_objects,
                              private_addresses=ctx.settings.oidc_fetch_private_addresses)
    if metadata.oidc.public != app.oidc().public:
        raise InvalidClientMetadata("token_endpoint_auth_method", "whether the client is public (none) can not "
                                                                  "change: register a new app")
    oidc = kept_by_operator(app, metadata.oidc, named=body.keys())
    changed = _updated(ctx, app, name=metadata.name, oidc=oidc)
    return registration_document(changed, issuer=issuer(ctx), access_token=token, client_secret=secret)


def _updated(ctx: AppContext, app: AppRecord, *, name: str, oidc: OidcClient) -> AppRecord:
    try:
        return apps.update_app(ctx, client_id=app.client_id, name=name, oidc=oidc, changed=frozenset({"name"}),
                               revision=app.revision or 0)
    except InvalidField as refused:
        raise InvalidClientMetadata(str(refused.extra.get("field")), refused.detail) from None


def _sent_credentials(app: AppRecord, body: dict[str, Any]) -> str | None:
    """The client_secret the PUT sent back, if it did and it is the app's (RFC 7592 §2.2)."""
    if body.get("client_id") != app.client_id:
        raise InvalidClientMetadata("client_id", "the client_id of the registration_client_uri")
    secret = body.get("client_secret")
    if secret is None:
        return None
    if not isinstance(secret, str) or not apps.secret_matches(app, secret):
        raise InvalidClientMetadata("client_secret", "not this client's secret")
    return secret


def delete(ctx: AppContext, *, client_id: str, authorization: str | None) -> None:
    """DELETE /oidc/register/<client_id> (RFC 7592 §2.3): the app removed as `apps remove` removes it."""
    app, _ = _managed(ctx, client_id, authorization)
    apps.remove_app(ctx, client_id=app.client_id, by="registration")


def _managed(ctx: AppContext, client_id: str, authorization: str | None) -> tuple[AppRecord, str]:
    """The app and the registration access token the request carries, if it is the app's; InvalidToken
    otherwise, the same whether or not the app exists. The digests are compared in constant time."""
    token = bearer_token(authorization) or ""
    app = apps.find_app(ctx, client_id=client_id) if token else None
    known = app.registration_token_digest if app and app.registration_token_digest else _digest(new_token(16))
    if not digests_equal(_digest(token), known) or app is None or not app.registration_token_digest:
        raise InvalidToken()
    return app, token
